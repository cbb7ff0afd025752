"""POST /introspect (RFC 7662): client authentication, the answers, the rate limit."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from jose import jwt

from auth.introspection_clients import IntrospectionClient, hash_client_secret
from graph.settings import Settings
from tests.conftest import MakeClient
from tests.factories import LOGOUT, gql, signup

SECRET = "reports-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
CLIENTS = (IntrospectionClient("reports", hash_client_secret(SECRET)),)


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _introspect(
    client: TestClient, token: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    response: httpx.Response = client.post(
        "/introspect", data={"token": token}, headers=headers or _basic("reports", SECRET)
    )
    return response


@pytest.fixture
def api(make_client: MakeClient) -> TestClient:
    return make_client(introspection_clients=CLIENTS)


def test_active_token_answers_its_claims(api: TestClient) -> None:
    account = signup(api)
    response = _introspect(api, account["accessToken"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["active"] is True
    assert body["sub"] == account["user"]["id"]
    assert body["token_type"] == "Bearer"
    assert {"exp", "iat", "iss", "aud", "jti", "sid"} <= set(body)


def test_revoked_session_is_inactive_at_once(api: TestClient) -> None:
    token = signup(api)["accessToken"]
    assert _introspect(api, token).json()["active"] is True
    gql(api, LOGOUT, {"scope": "CURRENT"}, token=token)
    assert _introspect(api, token).json() == {"active": False}


def _signed_by_server(api: TestClient, claims: dict[str, Any]) -> str:
    signer = api.app.state.authgraph.toolkit.keys.signer()  # type: ignore[attr-defined]
    return jwt.encode(
        claims, signer.key, algorithm=signer.algorithm, headers={"kid": signer.kid, "typ": "at+jwt"}
    )


def test_expired_and_forged_tokens_are_inactive_with_no_reason(api: TestClient) -> None:
    token = signup(api)["accessToken"]
    claims = jwt.get_unverified_claims(token)
    expired = _signed_by_server(api, {**claims, "iat": 1000, "exp": int(time.time()) - 3600})
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (expired, forged, "not-a-token"):
        response = _introspect(api, bad)
        assert response.status_code == 200, response.text
        assert response.json() == {"active": False}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param(_basic("reports", "wrong-" + SECRET), id="wrong-secret"),
        pytest.param(_basic("nobody", SECRET), id="unknown-client"),
        pytest.param({"Authorization": "Basic !!!"}, id="malformed"),
        pytest.param({"Authorization": f"Bearer {SECRET}"}, id="other-scheme"),
    ],
)
def test_bad_client_credentials_are_401(api: TestClient, headers: dict[str, str]) -> None:
    token = signup(api)["accessToken"]
    response = api.post("/introspect", data={"token": token}, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}
    assert response.headers["www-authenticate"].startswith("Basic")


def test_introspection_off_without_clients(client: TestClient) -> None:
    token = signup(client)["accessToken"]
    assert _introspect(client, token).status_code == 401


def test_introspection_is_rate_limited(make_client: MakeClient) -> None:
    api = make_client(introspection_clients=CLIENTS, introspection_rate_limit="3/minute")
    token = signup(api)["accessToken"]
    answers = [_introspect(api, token).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    limited = _introspect(api, token)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    # Counted before the credentials: guessing secrets is limited too.
    assert _introspect(api, token, _basic("reports", "guess")).status_code == 429


def test_settings_hold_only_hashes() -> None:
    settings = Settings.from_env(
        {"INTROSPECTION_CLIENTS": f"reports:{SECRET}", "AUTHGRAPH_DEV_SECRET_FILE": "/dev/null"}
        | {"JWT_SECRET": SECRET, "KEY_ENCRYPTION_KEY": SECRET}
    )
    assert SECRET not in repr(settings)
    assert SECRET not in repr(settings.auth.introspection_clients)
    (held,) = settings.auth.introspection_clients
    assert held.secret_hash == hash_client_secret(SECRET)
