from __future__ import annotations

import re
import threading
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from db.engine import normalize_database_url
from tests.factories import DEFAULT_PASSWORD, SIGNUP, VIEWER, gql, signup, unique_email


def test_signup_returns_tokens_and_user(client: TestClient) -> None:
    result = signup(client, email="  Alice@Example.COM ")
    assert result["tokenType"] == "Bearer"
    assert result["user"]["email"] == "alice@example.com"
    assert uuid.UUID(result["user"]["id"]).version == 4
    assert result["refreshToken"]
    assert result["refreshTokenExpiresAt"]
    assert result["csrfToken"] is None
    viewer = gql(client, VIEWER, token=result["accessToken"])["data"]["viewer"]
    assert viewer == {"id": result["user"]["id"], "email": "alice@example.com"}


def test_signup_with_taken_email_ignores_case(client: TestClient) -> None:
    signup(client, email="bob@example.com")
    body = gql(client, SIGNUP, {"email": "BOB@Example.com", "password": DEFAULT_PASSWORD})
    assert body["data"]["signup"] == {
        "__typename": "EmailTaken",
        "message": "An account with this email already exists.",
    }


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [
        ("not-an-email", DEFAULT_PASSWORD, "email"),
        ("", DEFAULT_PASSWORD, "email"),
        ("carol@example.com", "short", "password"),
        ("carol@example.com", "password1234", "password"),
        ("carol@example.com", "carol@example.com", "password"),
        ("carol@example.com", "x" * 10_000, "password"),
    ],
)
def test_signup_with_bad_input_names_the_field(
    client: TestClient, email: str, password: str, field: str
) -> None:
    body = gql(client, SIGNUP, {"email": email, "password": password})
    result = body["data"]["signup"]
    assert result["__typename"] == "ValidationError"
    assert result["field"] == field
    assert result["message"]


def test_signup_accepts_unicode_passphrase(client: TestClient) -> None:
    result = signup(client, password="ünïcødé pässwörd 🔑")
    assert result["user"]["id"]


def test_signup_stores_only_a_bcrypt_sha256_hash(client: TestClient, database_url: str) -> None:
    email = unique_email()
    signup(client, email=email)
    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT password_hash FROM users WHERE email = :e"), {"e": email}
        ).scalar_one()
    engine.dispose()
    assert DEFAULT_PASSWORD not in stored
    assert re.match(r"^\$bcrypt-sha256\$v=2,t=2b,r=4\$", stored)


def test_signup_twice_at_once_gives_one_account(client: TestClient) -> None:
    email = unique_email("race")
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(4)

    def attempt() -> None:
        barrier.wait()
        body = gql(client, SIGNUP, {"email": email, "password": DEFAULT_PASSWORD})
        results.append(body)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kinds = sorted(r["data"]["signup"]["__typename"] for r in results)
    assert all("errors" not in r for r in results)
    assert kinds == ["AuthPayload", "EmailTaken", "EmailTaken", "EmailTaken"]
