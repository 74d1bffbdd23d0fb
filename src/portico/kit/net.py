"""Network addresses: who is asking (the client behind any trusted proxy), and where an engine may
connect (never to link-local or cloud-metadata addresses, where a stored API key would leak)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Iterable
from functools import lru_cache

from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Link-local (where every cloud puts its instance metadata: 169.254.169.254, fd00:ec2::254 is
# AWS's IPv6 one, 100.100.100.200 Alibaba's). Loopback and private networks stay allowed: a
# self-hosted model on localhost or the office network is what most owners run.
FORBIDDEN_ENGINE_NETWORKS: tuple[Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),
)
# IPv6 forms that carry an IPv4 address the host may reach: IPv4-compatible and NAT64.
_EMBEDDING_IPV4 = (ipaddress.ip_network("::/96"), ipaddress.ip_network("64:ff9b::/96"))


@lru_cache(maxsize=16)
def parse_networks(text: str) -> tuple[Network, ...]:
    """A comma list of addresses and CIDR blocks ("10.0.0.0/8, 127.0.0.1"); ValueError names the bad one."""
    networks = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an IP address or CIDR block") from None
    return tuple(networks)


def parse_hosts(text: str) -> frozenset[str]:
    return frozenset(part.strip().lower().rstrip(".") for part in text.split(",") if part.strip())


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _within(address: Address | None, networks: Iterable[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(request: Request, trusted: tuple[Network, ...]) -> str:
    """The socket's peer; `X-Forwarded-For` only when that peer is a trusted proxy.

    The header is read from the right: each trusted proxy appended the address it saw, so the
    first hop that is not a trusted proxy is the client; anything left of it the client wrote.
    """
    peer = request.client.host if request.client else "unknown"
    if not _within(_address(peer), trusted):
        return peer
    hops = [hop.strip() for value in request.headers.getlist("x-forwarded-for") for hop in value.split(",")]
    nearest = peer
    for hop in reversed([hop for hop in hops if hop]):
        address = _address(hop)
        if address is None:
            # Garbage from a trusted proxy: count everyone behind that proxy together.
            return nearest
        if not _within(address, trusted):
            return str(address)
        nearest = str(address)
    return nearest


def forwarded_by_untrusted_proxy(request: Request, trusted: tuple[Network, ...]) -> bool:
    """`X-Forwarded-For` from a loopback or private peer that is not a trusted proxy: most likely
    a reverse proxy that `PORTICO_TRUSTED_PROXIES` does not name (a client on the internet may
    write the header too, but its peer is public)."""
    if "x-forwarded-for" not in request.headers:
        return False
    peer = _address(request.client.host) if request.client else None
    return peer is not None and (peer.is_loopback or peer.is_private) and not _within(peer, trusted)


def pseudonym(address: str, secret: str) -> str:
    """A keyed digest of a client address (64 hex characters): comparable, not reversible by
    trying all four billion IPv4 addresses, so the database never holds who signed in from where."""
    return hmac.new(secret.encode(), b"address:" + address.encode(), hashlib.sha256).hexdigest()


class EngineAddressRefused(Exception):
    """The engine's server is, or resolves to, an address engines may not reach."""


def forbidden_engine_address(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif _within(address, _EMBEDDING_IPV4) and int(address) > 1:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return _within(address, FORBIDDEN_ENGINE_NETWORKS)


def check_engine_host(host: str, allowed_hosts: frozenset[str]) -> None:
    """What can be known without DNS: the allow-list, and an address written as the host itself."""
    host = host.strip("[]").lower().rstrip(".")
    if allowed_hosts and host not in allowed_hosts:
        raise EngineAddressRefused(f"{host} is not one of the engine hosts this Portico allows")
    address = _address(host)
    if address is not None and forbidden_engine_address(address):
        raise EngineAddressRefused(f"{host} is a link-local or cloud-metadata address, which engines may not use")


async def resolve_engine_host(host: str, port: int, allowed_hosts: frozenset[str]) -> list[str]:
    """The addresses to connect to, checked now: DNS may answer differently than when the owner
    saved the draft. Every address the name has must be allowed, not only the first. A name
    that does not resolve raises OSError, as connecting would."""
    check_engine_host(host, allowed_hosts)
    found = await asyncio.get_running_loop().getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))
    for text in addresses:
        address = _address(text)
        if address is None or forbidden_engine_address(address):
            raise EngineAddressRefused(f"{host} resolves to a link-local or cloud-metadata address")
    if not addresses:
        raise OSError(f"{host} has no address")
    return addresses
