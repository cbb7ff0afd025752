"""The client address: the socket peer, or X-Forwarded-For only behind a trusted proxy."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from graph.client import client_info, client_ip, request_scheme


def _request(peer: str | None, forwarded: str | None = None, agent: str | None = None) -> Request:
    headers = []
    if forwarded is not None:
        headers.append((b"x-forwarded-for", forwarded.encode()))
    if agent is not None:
        headers.append((b"user-agent", agent.encode()))
    return Request(
        {
            "type": "http",
            "scheme": "http",
            "server": ("testserver", 80),
            "method": "GET",
            "path": "/",
            "headers": headers,
            "client": (peer, 5000) if peer else None,
        }
    )


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        # No trusted proxies: the header is anyone's writing.
        ("203.0.113.5", "198.51.100.1", (), "203.0.113.5"),
        # A peer outside the trusted list cannot speak for others either.
        ("203.0.113.5", "198.51.100.1", ("10.0.0.0/8",), "203.0.113.5"),
        # Behind a trusted proxy: the hop it saw.
        ("10.0.0.2", "198.51.100.1", ("10.0.0.0/8",), "198.51.100.1"),
        # The client can prepend anything; the right-most untrusted hop is the one that counts.
        ("10.0.0.2", "1.1.1.1, 198.51.100.1", ("10.0.0.0/8",), "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, 10.0.0.7", ("10.0.0.0/8",), "198.51.100.1"),
        # Only proxies in the chain: the first (furthest) hop.
        ("10.0.0.2", "10.0.0.9, 10.0.0.7", ("10.0.0.0/8",), "10.0.0.9"),
        # Garbage in the header falls back to the peer.
        ("10.0.0.2", "not-an-ip", ("10.0.0.0/8",), "10.0.0.2"),
        ("10.0.0.2", "", ("10.0.0.0/8",), "10.0.0.2"),
        ("10.0.0.2", None, ("10.0.0.0/8",), "10.0.0.2"),
        # IPv6 proxies and clients.
        ("::1", "2001:db8::1", ("::1",), "2001:db8::1"),
        # A single trusted address, not a network.
        ("127.0.0.1", "198.51.100.1", ("127.0.0.1",), "198.51.100.1"),
    ],
)
def test_client_ip_believes_forwarded_for_only_from_trusted_proxies(
    peer: str, forwarded: str | None, trusted: tuple[str, ...], expected: str
) -> None:
    assert client_ip(_request(peer, forwarded), trusted) == expected


def test_client_ip_without_a_socket_peer_is_none() -> None:
    assert client_ip(_request(None, "198.51.100.1"), ("10.0.0.0/8",)) is None


def test_client_info_carries_the_user_agent() -> None:
    info = client_info(_request("203.0.113.5", agent="curl/8"), ())
    assert info.ip_address == "203.0.113.5"
    assert info.user_agent == "curl/8"


@pytest.mark.parametrize(
    ("peer", "proto", "trusted", "expected"),
    [
        # A proxy that terminated TLS says so; the socket itself was plain HTTP.
        ("127.0.0.1", "https", ("127.0.0.1",), "https"),
        ("127.0.0.1", "http, https", ("127.0.0.1",), "https"),
        # From anyone else, or with no trusted proxies, the header is not believed.
        ("203.0.113.5", "https", ("127.0.0.1",), "http"),
        ("127.0.0.1", "https", (), "http"),
        # Nonsense falls back to the socket's scheme.
        ("127.0.0.1", "gopher", ("127.0.0.1",), "http"),
        ("127.0.0.1", None, ("127.0.0.1",), "http"),
    ],
)
def test_request_scheme_believes_forwarded_proto_only_from_trusted_proxies(
    peer: str, proto: str | None, trusted: tuple[str, ...], expected: str
) -> None:
    request = _request(peer)
    if proto is not None:
        request.scope["headers"].append((b"x-forwarded-proto", proto.encode()))
    assert request_scheme(request, trusted) == expected
