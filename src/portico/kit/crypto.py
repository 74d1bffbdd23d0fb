"""Prefixed random secrets, looked up by digest and never logged.

Owner API tokens (`pto_`), private link keys (`ptk_`), session tokens (`pts_`) and team
invitations (`pti_`) are all 32 random bytes, URL-safe, behind a prefix that says what they are.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken

TOKEN_BYTES = 32
# token_urlsafe(32) is always 43 characters.
TOKEN_BODY_LENGTH = 43
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_well_formed(token: str, prefix: str) -> bool:
    """True when `token` could have come from `new_token(prefix)`; cheap, before any lookup."""
    if not token.startswith(prefix):
        return False
    body = token[len(prefix) :]
    return len(body) == TOKEN_BODY_LENGTH and all(c in _URLSAFE for c in body)


def new_public_id() -> str:
    # 16 URL-safe characters (96 bits): unguessable, and short enough to read in a link. Never
    # starting with "-", which a command line would take for an option (`portico status -x... live`).
    while True:
        public_id = secrets.token_urlsafe(12)
        if not public_id.startswith("-"):
            return public_id


class Vault:
    """Encrypts secrets that must be shown again later (private link keys, engine API keys)."""

    def __init__(self, secret_key: str) -> None:
        derived = hashlib.sha256(b"portico-vault:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            # The secret key changed since this was stored: the value cannot be recovered.
            raise ValueError("stored secret cannot be decrypted with the current PORTICO_SECRET_KEY") from None
