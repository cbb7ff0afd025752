"""JWKS, discovery metadata and forged ES256 tokens, over HTTP on both databases."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from jose import jwt

from tests.conftest import TEST_SECRET, MakeClient
from tests.factories import VIEWER, error_codes, gql, signup


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return (json.loads(_unb64(header)), json.loads(_unb64(payload)), signature)


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_jwks_publishes_the_current_public_key_with_cache_headers(client: TestClient) -> None:
    token = signup(client)["accessToken"]
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    assert response.headers["cache-control"] == "public, max-age=60"
    keys = response.json()["keys"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert [k["kid"] for k in keys] == [header["kid"]]
    (key,) = keys
    assert {key["kty"], key["crv"], key["alg"], key["use"]} == {"EC", "P-256", "ES256", "sig"}
    # Never a private or symmetric part.
    assert not {"d", "k"} & set(key)
    again = client.get(
        "/.well-known/jwks.json", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""


def test_token_verifies_with_pyjwt_from_the_jwks_alone(client: TestClient) -> None:
    token = signup(client)["accessToken"]
    jwks = pyjwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
    kid = pyjwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims = pyjwt.decode(
        token,
        key,
        algorithms=["ES256"],
        audience="authgraph",
        issuer="authgraph",
        options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
    )
    assert {"sub", "sid", "jti", "iss", "aud", "iat", "exp"} <= set(claims)


def test_hs256_mode_publishes_no_key(make_client: MakeClient) -> None:
    client = make_client(jwt_algorithm="HS256")
    token = signup(client)["accessToken"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert client.get("/.well-known/jwks.json").json() == {"keys": []}
    assert gql(client, VIEWER, token=token)["data"]["viewer"] is not None


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
)
def test_server_metadata_names_the_endpoints(make_client: MakeClient, path: str) -> None:
    client = make_client(jwt_issuer="https://id.example.com")
    metadata = client.get(path).json()
    assert metadata["issuer"] == "https://id.example.com"
    assert metadata["jwks_uri"] == "https://id.example.com/.well-known/jwks.json"
    assert metadata["token_endpoint"] == "https://id.example.com/token"
    assert metadata["grant_types_supported"] == ["password"]
    assert metadata["access_token_signing_alg_values_supported"] == ["ES256"]


def test_token_endpoint_issues_rfc9068_claims(client: TestClient) -> None:
    account = signup(client)
    response = client.post(
        "/token",
        data={
            "username": account["user"]["email"],
            "password": "correct horse battery staple",
            "client_id": "reports-service",
        },
    )
    assert response.status_code == 200, response.text
    header, claims, _ = _parts(response.json()["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["kid"]
    assert claims["client_id"] == "reports-service"
    assert claims["sub"] == account["user"]["id"]
    assert {"iss", "aud", "exp", "iat", "jti"} <= set(claims)


# -- forged tokens against a server signing with ES256 -------------------------------------


def _forgeries(token: str, public_jwk: dict[str, Any]) -> dict[str, str]:
    header, claims, signature = _parts(token)
    other = ec.generate_private_key(ec.SECP256R1())
    forged: dict[str, Callable[[], str]] = {
        "alg none": lambda: f"{_b64({**header, 'alg': 'none'})}.{_b64(claims)}.",
        # Algorithm confusion: the public key (as PEM and as JSON) used as an HMAC secret.
        "HS256 with the public key as secret": lambda: jwt.encode(
            claims, json.dumps(public_jwk), algorithm="HS256", headers={**header}
        ),
        "HS256 with the public key's PEM as secret": lambda: _hmac_signed(
            {**header, "alg": "HS256"}, claims, _pem(public_jwk)
        ),
        "HS256 with the shared secret and the ES256 kid": lambda: jwt.encode(
            claims, TEST_SECRET, algorithm="HS256", headers={**header}
        ),
        "unknown kid": lambda: pyjwt.encode(
            claims, other, algorithm="ES256", headers={**header, "kid": "not-a-kid"}
        ),
        "another key, the real kid": lambda: pyjwt.encode(
            claims, other, algorithm="ES256", headers={**header}
        ),
        "embedded jwk": lambda: pyjwt.encode(
            claims,
            other,
            algorithm="ES256",
            headers={
                **header,
                "jwk": json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(other.public_key())),
            },
        ),
        "jku and x5u": lambda: pyjwt.encode(
            claims,
            other,
            algorithm="ES256",
            headers={
                **header,
                "jku": "https://evil.example/jwks.json",
                "x5u": "https://evil.example/cert.pem",
            },
        ),
        "tampered payload": lambda: (
            f"{token.split('.')[0]}.{_b64({**claims, 'sub': 'someone-else'})}.{signature}"
        ),
        "wrong typ": lambda: pyjwt.encode(
            claims, other, algorithm="ES256", headers={**header, "typ": "JWT"}
        ),
        "real signature, typ changed": lambda: (
            f"{_b64({**header, 'typ': 'JWT'})}.{token.split('.')[1]}.{signature}"
        ),
        "expired": lambda: f"{token.split('.')[0]}.{_b64({**claims, 'exp': 1})}.{signature}",
    }
    return {name: make() for name, make in forged.items()}


def _pem(public_jwk: dict[str, Any]) -> bytes:
    key = pyjwt.algorithms.ECAlgorithm.from_jwk(json.dumps(public_jwk))
    return key.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _hmac_signed(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    # By hand: both JWT libraries refuse an asymmetric key as an HMAC secret.
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_forged_es256_tokens_are_unauthenticated(client: TestClient) -> None:
    token = signup(client)["accessToken"]
    (public,) = client.get("/.well-known/jwks.json").json()["keys"]
    assert gql(client, VIEWER, token=token)["data"]["viewer"] is not None
    for name, forged in _forgeries(token, public).items():
        body = gql(client, VIEWER, token=forged)
        assert body["data"] == {"viewer": None}, name
        assert error_codes(body) == ["UNAUTHENTICATED"], name


def test_forged_unknown_kids_do_not_hammer_the_database(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = signup(client)["accessToken"]
    state = client.app.state.authgraph  # type: ignore[attr-defined]
    store = state.toolkit.keys.store
    reads: list[int] = []
    original = store.all

    def counted() -> Any:
        reads.append(1)
        return original()

    monkeypatch.setattr(store, "all", counted)
    header, claims, _ = _parts(token)
    other = ec.generate_private_key(ec.SECP256R1())
    started = time.monotonic()
    for i in range(30):
        forged = pyjwt.encode(claims, other, algorithm="ES256", headers={**header, "kid": f"k{i}"})
        assert error_codes(gql(client, VIEWER, token=forged)) == ["UNAUTHENTICATED"]
    elapsed = time.monotonic() - started
    # At most one read a second, plus one.
    assert len(reads) <= int(elapsed) + 1
