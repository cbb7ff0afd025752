"""Password guessing: aliases, many IPs, lock-out bounds, and the per-IP and per-route limits."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import MakeClient
from tests.factories import (
    DEFAULT_PASSWORD,
    REFRESH,
    SIGNUP,
    gql,
    login,
    signup,
    unique_email,
)
from tests.security.conftest import MakeClientFrom

LOGIN_FIELDS = "__typename ... on Error { message } ... on RateLimited { retryAfter }"


def aliased_logins(count: int, email: str, password: str) -> str:
    fields = " ".join(
        f'a{i}: login(input: {{email: "{email}", password: "{password}"}}) {{ {LOGIN_FIELDS} }}'
        for i in range(count)
    )
    return f"mutation {{ {fields} }}"


def typenames(body: dict[str, Any]) -> list[str]:
    return [result["__typename"] for result in body["data"].values()]


def test_alias_brute_force_past_the_root_field_cap_runs_nothing(make_client: MakeClient) -> None:
    client = make_client(login_rate_limit="3/15minutes")
    email = unique_email()
    signup(client, email=email)
    response = client.post("/graphql", json={"query": aliased_logins(12, email, "wrong guess")})
    assert response.status_code == 400
    # A request error: nothing ran, and (GraphQL over HTTP) the body has no "data" entry.
    assert "data" not in response.json()
    assert "at most 3 root fields" in response.json()["errors"][0]["message"]
    # Refused before any resolver ran: not one guess was spent.
    assert login(client, email)["__typename"] == "AuthPayload"


def test_alias_brute_force_counts_every_alias(make_client: MakeClient) -> None:
    client = make_client(login_rate_limit="3/15minutes", max_mutation_fields=10, max_aliases=10)
    email = unique_email()
    signup(client, email=email)
    body = gql(client, aliased_logins(8, email, "wrong password guess"))
    results = typenames(body)
    # Concurrent aliases must not slip under the limit: exactly 3 attempts were let through.
    assert results.count("InvalidCredentials") == 3
    assert results.count("RateLimited") == 5
    # The right password is now refused too, until the window has passed.
    assert login(client, email)["__typename"] == "RateLimited"


def test_slow_brute_force_from_many_ips_locks_the_account(client_from: MakeClientFrom) -> None:
    # A botnet: every guess from another address, all through a proxy we trust.
    client = client_from(
        peer="10.0.0.2", trusted_proxies=("10.0.0.0/8",), login_rate_limit="5/15minutes"
    )
    email = unique_email()
    signup(client, email=email)
    answers = [
        login(client, email, f"guess number {i}", headers={"X-Forwarded-For": f"198.51.100.{i}"})
        for i in range(1, 8)
    ]
    assert [a["__typename"] for a in answers] == ["InvalidCredentials"] * 5 + ["RateLimited"] * 2
    locked = login(client, email, headers={"X-Forwarded-For": "198.51.100.99"})
    assert locked["__typename"] == "RateLimited"
    assert locked["retryAfter"] > 0


def test_locked_account_answers_like_an_unknown_one(make_client: MakeClient) -> None:
    client = make_client(login_rate_limit="2/15minutes")
    known = unique_email()
    signup(client, email=known)
    unknown = unique_email("nobody")
    for email in (known, unknown):
        for _ in range(2):
            assert login(client, email, "wrong password")["__typename"] == "InvalidCredentials"
    locked_known = client.post(
        "/graphql", json={"query": LOGIN_RATE_LIMITED, "variables": {"e": known}}
    )
    locked_unknown = client.post(
        "/graphql", json={"query": LOGIN_RATE_LIMITED, "variables": {"e": unknown}}
    )
    assert locked_known.status_code == locked_unknown.status_code == 200
    known_body, unknown_body = locked_known.json(), locked_unknown.json()
    assert known_body["data"]["login"]["__typename"] == "RateLimited"
    # Same shape and message; retryAfter may differ only by the seconds between the two locks.
    assert (
        abs(
            known_body["data"]["login"].pop("retryAfter")
            - unknown_body["data"]["login"].pop("retryAfter")
        )
        <= 2
    )
    assert known_body == unknown_body


LOGIN_RATE_LIMITED = """
mutation($e: String!) { login(input: {email: $e, password: "wrong password"}) {
  __typename ... on Error { message } ... on RateLimited { retryAfter } } }
"""


def test_account_lock_ends_after_its_window(make_client: MakeClient) -> None:
    # ASVS 6.3.1: an attacker must not be able to lock a user out for good.
    client = make_client(login_rate_limit="2/2seconds")
    email = unique_email()
    signup(client, email=email)
    for _ in range(2):
        login(client, email, "wrong password")
    locked = login(client, email)
    assert locked["__typename"] == "RateLimited"
    assert 1 <= locked["retryAfter"] <= 2
    # Refused attempts during the lock do not extend it.
    login(client, email, "wrong password")
    time.sleep(locked["retryAfter"] + 0.2)
    assert login(client, email)["__typename"] == "AuthPayload"


def test_successful_login_clears_the_failure_count(make_client: MakeClient) -> None:
    client = make_client(login_rate_limit="3/15minutes")
    email = unique_email()
    signup(client, email=email)
    for _ in range(3):
        for _ in range(2):
            assert login(client, email, "wrong password")["__typename"] == "InvalidCredentials"
        # Two failures and a success, three times over: only failures count.
        assert login(client, email)["__typename"] == "AuthPayload"


def test_credential_stuffing_from_one_ip_hits_the_ip_limit(make_client: MakeClient) -> None:
    client = make_client(login_ip_rate_limit="5/15minutes")
    answers = [
        login(client, unique_email("victim"), "password guess")["__typename"] for _ in range(7)
    ]
    assert answers == ["InvalidCredentials"] * 5 + ["RateLimited"] * 2


def test_forged_forwarded_for_from_an_untrusted_peer_is_ignored(
    client_from: MakeClientFrom,
) -> None:
    # No TRUSTED_PROXIES: X-Forwarded-For is the attacker's own writing and changes nothing.
    client = client_from(peer="203.0.113.9", login_ip_rate_limit="3/15minutes")
    answers = [
        login(
            client,
            unique_email("victim"),
            "password guess",
            headers={"X-Forwarded-For": f"192.0.2.{i}"},
        )["__typename"]
        for i in range(5)
    ]
    assert answers == ["InvalidCredentials"] * 3 + ["RateLimited"] * 2


def test_mass_signup_from_one_ip_is_rate_limited(make_client: MakeClient) -> None:
    client = make_client(signup_rate_limit="3/hour")
    results = [
        gql(client, SIGNUP, {"email": unique_email(), "password": DEFAULT_PASSWORD})["data"][
            "signup"
        ]["__typename"]
        for _ in range(4)
    ]
    assert results == ["AuthPayload"] * 3 + ["RateLimited"]


def test_refresh_token_flood_is_rate_limited(make_client: MakeClient) -> None:
    client = make_client(refresh_rate_limit="3/minute")
    results = [
        gql(client, REFRESH, {"token": f"guess-{i}"})["data"]["refreshToken"]["__typename"]
        for i in range(4)
    ]
    assert results == ["InvalidRefreshToken"] * 3 + ["RateLimited"]


def test_token_endpoint_answers_429_with_retry_after(make_client: MakeClient) -> None:
    client = make_client(login_rate_limit="2/15minutes")
    email = unique_email()
    signup(client, email=email)
    for _ in range(2):
        assert client.post("/token", data={"username": email, "password": "x"}).status_code == 401
    response = client.post("/token", data={"username": email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert "access_token" not in response.json()


def test_change_password_guesses_count_against_the_account(make_client: MakeClient) -> None:
    # A stolen access token must not turn changePassword into a password oracle.
    client: TestClient = make_client(login_rate_limit="2/15minutes")
    session = signup(client)
    query = """mutation($c: String!) { changePassword(input: {currentPassword: $c,
      newPassword: "another long passphrase"}) { __typename } }"""
    results = [
        gql(client, query, {"c": f"guess {i}"}, token=session["accessToken"])["data"][
            "changePassword"
        ]["__typename"]
        for i in range(3)
    ]
    assert results == ["InvalidCredentials", "InvalidCredentials", "RateLimited"]
