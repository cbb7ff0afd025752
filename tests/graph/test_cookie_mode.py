from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from auth.config import Secret
from graph.cookies import CSRF_COOKIE, REFRESH_COOKIE
from tests.conftest import GRAPHQL_PATHS, TEST_SECRET, MakeClient
from tests.factories import LOGOUT, error_codes, gql, refresh, signup

# Through the lean path and through Strawberry's full pipeline (tests/conftest.py).
pytestmark = pytest.mark.parametrize("graphql_path", GRAPHQL_PATHS)

OWN_ORIGIN = "http://testserver"
SPA_ORIGIN = "http://localhost:5173"


def cookie_client(make_client: MakeClient, **overrides: object) -> TestClient:
    return make_client(refresh_token_transport="cookie", cors_origins=(SPA_ORIGIN,), **overrides)


def proof(client: TestClient, origin: str = OWN_ORIGIN) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies.get(CSRF_COOKIE) or "", "Origin": origin}


def test_signup_sets_httponly_cookie_and_hides_token(make_client: MakeClient) -> None:
    client = cookie_client(make_client)
    response = client.post(
        "/graphql",
        json={
            "query": 'mutation { signup(input: {email: "c@example.com", '
            'password: "correct horse battery staple"}) '
            "{ ... on AuthPayload { refreshToken csrfToken } } }"
        },
    )
    payload = response.json()["data"]["signup"]
    assert payload["refreshToken"] is None
    assert payload["csrfToken"]
    set_cookies = response.headers.get_list("set-cookie")
    refresh_cookie = next(c for c in set_cookies if c.startswith(REFRESH_COOKIE + "="))
    csrf_cookie = next(c for c in set_cookies if c.startswith(CSRF_COOKIE + "="))
    assert "HttpOnly" in refresh_cookie
    assert "SameSite=strict" in refresh_cookie
    assert "Path=/graphql" in refresh_cookie
    assert "Secure" not in refresh_cookie  # development: plain http://localhost works
    assert "HttpOnly" not in csrf_cookie
    assert response.headers["x-csrf-token"] == payload["csrfToken"]


def test_refresh_from_cookie_with_csrf_proof_rotates(make_client: MakeClient) -> None:
    client = cookie_client(make_client)
    first = signup(client)
    old_cookie = client.cookies.get(REFRESH_COOKIE)
    rotated = refresh(client, None, headers=proof(client))
    assert rotated["__typename"] == "AuthPayload"
    assert rotated["refreshToken"] is None
    assert rotated["csrfToken"] == first["csrfToken"]
    assert client.cookies.get(REFRESH_COOKIE) not in (None, old_cookie)


def test_refresh_from_listed_cross_origin_is_allowed(make_client: MakeClient) -> None:
    client = cookie_client(make_client)
    signup(client)
    assert refresh(client, None, headers=proof(client, SPA_ORIGIN))["__typename"] == "AuthPayload"


def test_refresh_from_cookie_without_proof_is_refused(make_client: MakeClient) -> None:
    client = cookie_client(make_client)
    signup(client)
    token = client.cookies.get(CSRF_COOKIE) or ""
    refusals = [
        {},  # no header, no origin
        {"Origin": OWN_ORIGIN},  # no CSRF header
        {"X-CSRF-Token": token},  # no Origin
        {"X-CSRF-Token": token, "Origin": "https://evil.example"},
        {"X-CSRF-Token": "forged", "Origin": OWN_ORIGIN},
    ]
    for headers in refusals:
        body = gql(client, "mutation { refreshToken { __typename } }", headers=headers)
        assert error_codes(body) == ["FORBIDDEN"], headers
    # The refused attempts spent nothing: the real client can still refresh.
    assert refresh(client, None, headers=proof(client))["__typename"] == "AuthPayload"


def test_refresh_with_planted_csrf_pair_is_refused(make_client: MakeClient) -> None:
    client = cookie_client(make_client)
    signup(client)
    refresh_cookie = client.cookies.get(REFRESH_COOKIE)
    client.cookies.clear()
    # A sibling subdomain can plant a matching cookie and header; the session binding stops it.
    planted = {
        "Cookie": f"{REFRESH_COOKIE}={refresh_cookie}; {CSRF_COOKIE}=planted",
        "X-CSRF-Token": "planted",
        "Origin": OWN_ORIGIN,
    }
    body = gql(client, "mutation { refreshToken { __typename } }", headers=planted)
    assert error_codes(body) == ["FORBIDDEN"]


def test_logout_with_cookie_only_ends_session(make_client: MakeClient) -> None:
    client = cookie_client(make_client)
    first = signup(client)
    headers = proof(client)
    response = client.post(
        "/graphql", json={"query": LOGOUT, "variables": {"scope": "CURRENT"}}, headers=headers
    )
    assert response.json()["data"]["logout"]["revokedSessions"] == 1
    cleared = [c for c in response.headers.get_list("set-cookie") if "Max-Age=0" in c]
    assert len(cleared) == 2
    assert error_codes(gql(client, "{ viewer { id } }", token=first["accessToken"])) == [
        "UNAUTHENTICATED"
    ]


def test_logout_with_cookie_without_proof_is_refused(make_client: MakeClient) -> None:
    client = cookie_client(make_client)
    first = signup(client)
    body = gql(client, LOGOUT, {"scope": "CURRENT"}, headers={"Origin": OWN_ORIGIN})
    assert error_codes(body) == ["FORBIDDEN"]
    assert gql(client, "{ viewer { id } }", token=first["accessToken"])["data"]["viewer"]


def test_production_cookie_is_secure(make_client: MakeClient) -> None:
    client = cookie_client(make_client, env="production")
    response = client.post(
        "/graphql",
        json={
            "query": 'mutation { signup(input: {email: "p@example.com", '
            'password: "correct horse battery staple"}) { __typename } }'
        },
    )
    assert all("Secure" in c for c in response.headers.get_list("set-cookie"))


def test_cors_preflight_only_for_listed_origin(make_client: MakeClient) -> None:
    client = cookie_client(make_client)
    request = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-csrf-token",
    }
    allowed = client.options("/graphql", headers={"Origin": SPA_ORIGIN, **request})
    refused = client.options("/graphql", headers={"Origin": "https://evil.example", **request})
    assert allowed.headers["access-control-allow-origin"] == SPA_ORIGIN
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in refused.headers


def test_refresh_after_key_rotation_keeps_cookie_session(make_client: MakeClient) -> None:
    before = cookie_client(make_client)
    first = signup(before)
    # JWT_SECRET rotated, the old key kept in JWT_PREVIOUS_SECRETS; the browser keeps its cookies.
    after = cookie_client(
        make_client,
        jwt_secret=Secret("rotated-secret-0123456789-abcdefghijklmnopqrstuvwxyz"),
        jwt_previous_secrets=(Secret(TEST_SECRET),),
    )
    for cookie in before.cookies.jar:
        after.cookies.jar.set_cookie(cookie)
    rotated = refresh(after, None, headers=proof(after))
    assert rotated["__typename"] == "AuthPayload"
    # The CSRF token moves to the new key, and the new one works from then on.
    assert rotated["csrfToken"] not in (None, first["csrfToken"])
    assert after.cookies.get(CSRF_COOKIE) == rotated["csrfToken"]
    assert refresh(after, None, headers=proof(after))["__typename"] == "AuthPayload"


def test_logout_with_cookie_after_key_rotation_ends_session(make_client: MakeClient) -> None:
    before = cookie_client(make_client)
    first = signup(before)
    after = cookie_client(
        make_client,
        jwt_secret=Secret("rotated-secret-0123456789-abcdefghijklmnopqrstuvwxyz"),
        jwt_previous_secrets=(Secret(TEST_SECRET),),
    )
    for cookie in before.cookies.jar:
        after.cookies.jar.set_cookie(cookie)
    body = gql(after, LOGOUT, {"scope": "CURRENT"}, headers=proof(after))
    assert body["data"]["logout"]["revokedSessions"] == 1
    assert error_codes(gql(after, "{ viewer { id } }", token=first["accessToken"])) == [
        "UNAUTHENTICATED"
    ]
