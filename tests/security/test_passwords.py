"""Passwords at and past bcrypt's 72-byte edge, and far past any sane length."""

from __future__ import annotations

import httpx

from tests.conftest import MakeClient
from tests.factories import SIGNUP, gql, login, signup, unique_email


def test_passwords_differing_after_72_bytes_are_different(client: httpx.Client) -> None:
    # Plain bcrypt would truncate both to the same 72 bytes and let the wrong one in.
    email = unique_email()
    signup(client, email=email, password="a" * 72 + "X")
    assert login(client, email, "a" * 72 + "Y")["__typename"] == "InvalidCredentials"
    assert login(client, email, "a" * 72)["__typename"] == "InvalidCredentials"
    assert login(client, email, "a" * 72 + "X")["__typename"] == "AuthPayload"


def test_multibyte_password_over_72_bytes_works(client: httpx.Client) -> None:
    # 37 characters, 74 bytes in UTF-8: raw bcrypt 5 would raise on it.
    email = unique_email()
    password = "é" * 36 + "ü"
    signup(client, email=email, password=password)
    assert login(client, email, "é" * 37)["__typename"] == "InvalidCredentials"
    assert login(client, email, password)["__typename"] == "AuthPayload"


def test_very_long_password_is_refused_fast_at_signup(client: httpx.Client) -> None:
    body = gql(client, SIGNUP, {"email": unique_email(), "password": "p" * 10_000})
    result = body["data"]["signup"]
    assert result["__typename"] == "ValidationError"
    assert result["field"] == "password"
    assert "256" in result["message"]


def test_very_long_password_at_login_is_a_plain_failure(client: httpx.Client) -> None:
    email = unique_email()
    signup(client, email=email)
    for password in ("p" * 10_000, "é" * 10_000):
        assert login(client, email, password) == {
            "__typename": "InvalidCredentials",
            "message": "Invalid email or password.",
        }


def test_password_bigger_than_the_body_limit_is_413(make_client: MakeClient) -> None:
    client = make_client()
    response = client.post(
        "/graphql",
        json={"query": SIGNUP, "variables": {"email": unique_email(), "password": "p" * 70_000}},
    )
    assert response.status_code == 413
