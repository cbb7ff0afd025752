"""Forged and broken access tokens over HTTP: each gets ``viewer: null`` and UNAUTHENTICATED.

Every forgery starts from the claims of a real, live session, so the only thing wrong with
it is the forgery itself (RFC 8725 §2.1, §3.1, §3.2, §3.5, §3.8-3.11; ASVS 9.1.1-9.2.3).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from jose import jwt

from auth.tokens import key_id
from tests.conftest import TEST_SECRET
from tests.factories import VIEWER, error_codes, gql, signup

OTHER_SECRET = "another-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
HEADER = {"kid": key_id(TEST_SECRET), "typ": "at+jwt"}


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sign(
    claims: dict[str, Any], *, key: str = TEST_SECRET, alg: str = "HS256", **header: Any
) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={**HEADER, **header})


def _alg_none(claims: dict[str, Any]) -> str:
    return f"{_b64({'alg': 'none', **HEADER})}.{_b64(claims)}."


def _without(name: str) -> Callable[[dict[str, Any]], str]:
    return lambda claims: _sign({k: v for k, v in claims.items() if k != name})


def _tampered(claims: dict[str, Any]) -> str:
    header, _, signature = _sign(claims).split(".")
    return f"{header}.{_b64({**claims, 'sub': 'someone-else'})}.{signature}"


FORGERIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "alg none": _alg_none,
    "alg none, no typ": lambda c: f"{_b64({'alg': 'none'})}.{_b64(c)}.",
    "HS512 with the real key": lambda c: _sign(c, alg="HS512"),
    "HS384 with the real key": lambda c: _sign(c, alg="HS384"),
    "another key": lambda c: _sign(c, key=OTHER_SECRET),
    "another key, its own kid": lambda c: _sign(c, key=OTHER_SECRET, kid=key_id(OTHER_SECRET)),
    "weak key 'secret'": lambda c: _sign(c, key="secret", kid=key_id("secret")),
    "expired": lambda c: _sign({**c, "iat": c["iat"] - 7200, "exp": int(time.time()) - 3600}),
    "not yet valid": lambda c: _sign({**c, "nbf": int(time.time()) + 600}),
    "tampered payload": _tampered,
    "signature stripped": lambda c: _sign(c).rsplit(".", 1)[0] + ".",
    "wrong audience": lambda c: _sign({**c, "aud": "another-api"}),
    "wrong issuer": lambda c: _sign({**c, "iss": "https://evil.example"}),
    "wrong typ": lambda c: _sign(c, typ="JWT"),
    "unknown kid": lambda c: _sign(c, kid="0123456789abcdef"),
    "kid path injection": lambda c: _sign(c, kid="../../../../dev/null"),
    "jku header": lambda c: _sign(c, kid=None, jku="https://evil.example/jwks.json"),
    "missing exp": _without("exp"),
    "missing iat": _without("iat"),
    "missing sub": _without("sub"),
    "missing sid": _without("sid"),
    "missing jti": _without("jti"),
    "missing iss": _without("iss"),
    "missing aud": _without("aud"),
    "sub of another type": lambda c: _sign({**c, "sub": 12345}),
    "garbage": lambda c: "not.a.jwt",
}


@pytest.fixture
def live_claims(client: httpx.Client) -> dict[str, Any]:
    token = signup(client)["accessToken"]
    claims: dict[str, Any] = jwt.get_unverified_claims(token)
    # The genuine token works, so a refusal below is the forgery's doing.
    assert gql(client, VIEWER, token=token)["data"]["viewer"] is not None
    return claims


@pytest.mark.parametrize("forgery", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_token_is_unauthenticated(
    client: httpx.Client, live_claims: dict[str, Any], forgery: Callable[[dict[str, Any]], str]
) -> None:
    response = client.post(
        "/graphql",
        json={"query": VIEWER},
        headers={"Authorization": f"Bearer {forgery(live_claims)}"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"viewer": None}
    assert error_codes(body) == ["UNAUTHENTICATED"]
