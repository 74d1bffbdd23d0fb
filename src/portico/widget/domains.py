"""Allowed domains: which websites may frame an assistant's widget.

An entry is a host (`example.com`), a wildcard host (`*.example.com`) or an origin
(`https://example.com`, `http://localhost:8080`). The same list becomes the chat frame's CSP
`frame-ancestors` (which the browser enforces) and the check on widget session starts.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_DOMAINS = 50
_HOST = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def normalise(entry: str) -> str:
    """The canonical form of one entry, or ValueError with a sentence saying what is wrong."""
    value = entry.strip().lower().rstrip("/")
    if not value:
        raise ValueError("an empty line is not a domain")
    scheme, host, port = "", value, ""
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or parts.path or parts.query or parts.fragment or not parts.hostname:
            raise ValueError(f"'{entry.strip()}' is not a domain or an origin like https://example.com")
        scheme, host, port = parts.scheme, parts.hostname, str(parts.port or "")
    if ":" in host and not scheme:
        host, _, port = host.partition(":")
    if not _HOST.match(host) or (port and not port.isdigit()):
        raise ValueError(f"'{entry.strip()}' is not a domain or an origin like https://example.com")
    origin = f"{scheme}://{host}" if scheme else host
    return f"{origin}:{port}" if port else origin


def normalise_all(entries: list[str]) -> list[str]:
    cleaned: list[str] = []
    for entry in entries:
        if entry.strip():
            value = normalise(entry)
            if value not in cleaned:
                cleaned.append(value)
    if len(cleaned) > MAX_DOMAINS:
        raise ValueError(f"at most {MAX_DOMAINS} allowed domains")
    return cleaned


def allows(allowed: list[str], origin: str | None) -> bool:
    """Whether a page at `origin` (scheme://host[:port]) may use the widget. An empty list allows all."""
    if not allowed:
        return True
    if not origin:
        return False
    parts = urlsplit(origin.lower())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    default = 443 if parts.scheme == "https" else 80
    host, port = parts.hostname, parts.port or default
    for entry in allowed:
        scheme, _, rest = entry.rpartition("://")
        pattern, _, want_port = rest.partition(":")
        # As in CSP: no scheme means either; no port means the scheme's default port.
        if (scheme and scheme != parts.scheme) or port != (int(want_port) if want_port else default):
            continue
        if pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def frame_ancestors(allowed: list[str]) -> str:
    # CSP source expressions accept these forms as they are.
    return " ".join(["'self'", *allowed]) if allowed else "*"
