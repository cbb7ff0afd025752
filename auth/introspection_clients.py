"""Introspection clients (``INTROSPECTION_CLIENTS``): secrets held as hashes, checked in
constant time."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass


def hash_client_secret(secret: str) -> str:
    """How an introspection client's secret is held: SHA-256 (secrets are long and random)."""
    return hashlib.sha256(b"authgraph-introspection:" + secret.encode()).hexdigest()


@dataclass(frozen=True)
class IntrospectionClient:
    """One ``client_id:client_secret`` pair of ``INTROSPECTION_CLIENTS``, the secret hashed."""

    client_id: str
    secret_hash: str

    def __repr__(self) -> str:
        return f"IntrospectionClient({self.client_id!r}, secret=**********)"


# Compared against when the client_id is unknown, so that timing does not tell ids apart.
_NO_CLIENT = IntrospectionClient("", hash_client_secret("no such client"))


def authenticate_client(
    clients: tuple[IntrospectionClient, ...], client_id: str, secret: str
) -> bool:
    """Whether ``client_id`` and ``secret`` are one of the configured pairs."""
    match = next((c for c in clients if hmac.compare_digest(c.client_id, client_id)), None)
    candidate = match or _NO_CLIENT
    good = hmac.compare_digest(candidate.secret_hash, hash_client_secret(secret))
    return good and match is not None
