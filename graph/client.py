"""Who is on the other end of a request: address and user agent."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from starlette.requests import HTTPConnection

from auth.ports import ClientInfo
from auth.tokens import new_opaque_token

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEVICE_COOKIE = "authgraph_device"
DEVICE_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


@lru_cache(maxsize=64)
def _networks(
    trusted: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def client_ip(connection: HTTPConnection, trusted_proxies: tuple[str, ...]) -> str | None:
    """The socket's peer, or behind trusted proxies the right-most untrusted forwarded hop.

    The header is ignored unless the peer itself is a trusted proxy: anyone can write it.
    """
    peer = connection.client.host if connection.client else None
    if peer is None or not trusted_proxies or not _is_trusted(peer, trusted_proxies):
        return peer
    hops = [
        h.strip() for h in connection.headers.get("x-forwarded-for", "").split(",") if h.strip()
    ]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted_proxies):
            return hop if _valid_ip(hop) else peer
    return hops[0] if hops and _valid_ip(hops[0]) else peer


def request_scheme(connection: HTTPConnection, trusted_proxies: tuple[str, ...]) -> str:
    """``http`` or ``https`` as the client used it: behind a trusted proxy that terminates TLS,
    its ``X-Forwarded-Proto``; otherwise (or when the header is absent or odd) the socket's."""
    peer = connection.client.host if connection.client else None
    if peer is not None and trusted_proxies and _is_trusted(peer, trusted_proxies):
        # Where proxies append, the last value is the one the trusted proxy itself wrote.
        forwarded = connection.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
        if forwarded in ("http", "https"):
            return forwarded
    return connection.url.scheme


def client_info(connection: HTTPConnection, trusted_proxies: tuple[str, ...]) -> ClientInfo:
    return ClientInfo(
        user_agent=connection.headers.get("user-agent"),
        ip_address=client_ip(connection, trusted_proxies),
        # A browser without the cookie gets a new one with its next sign-in (graph.cookies).
        device_token=presented_device(connection) or new_opaque_token(),
    )


def presented_device(connection: HTTPConnection) -> str | None:
    """The request's device cookie, if it is one of ours (43 URL-safe characters)."""
    value = connection.cookies.get(DEVICE_COOKIE)
    return value if value is not None and DEVICE_TOKEN.fullmatch(value) else None


def _is_trusted(address: str, trusted: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(trusted))


def _valid_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True
