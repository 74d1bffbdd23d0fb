"""A provider's secret fields (an API key), for every provider alike: stored encrypted with the
server's vault under `<field>_encrypted`, write-only, shown only as `has_<field>`, and only ever
sent to the host they were saved with.

The binding to the host is the stored configuration itself: a secret is kept only while its
provider's address keeps the same scheme, host and port, so the URL stored beside a secret is
always the one it was saved with. Changing the host without giving the secret again drops it:
otherwise anyone who may edit a draft (an Editor) could send the team's key to a server of theirs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from portico.engines.providers import Provider, ProviderConfig
from portico.kit.crypto import Vault

DEFAULT_PORTS = {"http": 80, "https": 443}


def stored_name(secret: str) -> str:
    return f"{secret}_encrypted"


def origin(url: object) -> tuple[str, str, int | None] | None:
    """Scheme, host and port: what a secret is bound to (the path may change, the server may not)."""
    if not isinstance(url, str) or not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


def merge(provider: Provider, stored: dict[str, Any], given: ProviderConfig, vault: Vault) -> dict[str, Any]:
    """The configuration to store: the same provider changes only the fields given (secrets kept
    unless given, or unless the host changed); another provider starts from its defaults.
    A secret given as "" clears the stored one."""
    secrets = set(provider.secrets)
    same = stored.get("type") == given.type
    base = dict(stored) if same else given.model_dump(exclude=secrets)
    merged = {**base, **given.model_dump(exclude_unset=True, exclude=secrets), "type": given.type}
    moved = provider.address is not None and (
        not same or origin(stored.get(provider.address)) != origin(merged.get(provider.address))
    )
    for secret in provider.secrets:
        value = getattr(given, secret)
        if value is None and not moved:
            continue
        merged.pop(stored_name(secret), None)
        if value:
            merged[stored_name(secret)] = vault.encrypt(value)
    return merged


def changed_fields(providers: list[Provider], before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The fields a change touched (`providers`: the configuration's before and after), a secret
    by its name only: never its value, nor its ciphertext."""
    secrets = {secret for provider in providers for secret in provider.secrets}
    stored = {stored_name(secret) for secret in secrets}
    names = (set(before) | set(after)) - stored
    changed = [name for name in names if before.get(name) != after.get(name)]
    changed += [secret for secret in secrets if before.get(stored_name(secret)) != after.get(stored_name(secret))]
    return sorted(changed)


def public_view(provider: Provider, stored: dict[str, Any]) -> dict[str, Any]:
    hidden = {stored_name(secret) for secret in provider.secrets}
    view = {name: value for name, value in stored.items() if name not in hidden}
    view.update({f"has_{secret}": stored_name(secret) in stored for secret in provider.secrets})
    return view


def saved(provider: Provider, stored: dict[str, Any]) -> dict[str, bool]:
    """Which secrets are stored, for a form that says "a key is saved"."""
    return {secret: stored_name(secret) in stored for secret in provider.secrets}


def decrypted(provider: Provider, stored: dict[str, Any], vault: Vault) -> dict[str, str]:
    """The secrets, for one call to the provider: what an engine request carries."""
    return {
        secret: vault.decrypt(stored[stored_name(secret)])
        for secret in provider.secrets
        if stored_name(secret) in stored
    }
