from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from auth.passwords import PasswordHasher
from db.engine import normalize_database_url
from graph.app import create_app
from graph.settings import Settings
from tests.conftest import GRAPHQL_PATHS, MakeClient
from tests.factories import VIEWER, gql, login, signup, unique_email

# Through the lean path and through Strawberry's full pipeline (tests/conftest.py).
pytestmark = pytest.mark.parametrize("graphql_path", GRAPHQL_PATHS)


def test_login_with_any_case_returns_same_user(client: TestClient) -> None:
    created = signup(client, email="dana@example.com")
    result = login(client, "  DANA@example.com")
    assert result["__typename"] == "AuthPayload"
    assert result["user"]["id"] == created["user"]["id"]
    viewer = gql(client, VIEWER, token=result["accessToken"])["data"]["viewer"]
    assert viewer["id"] == created["user"]["id"]


def test_login_wrong_password_and_unknown_email_answer_alike(client: TestClient) -> None:
    email = unique_email()
    signup(client, email=email)
    wrong = login(client, email, "not the right password")
    unknown = login(client, unique_email("nobody"), "not the right password")
    malformed = login(client, "not an email", "not the right password")
    assert wrong == unknown == malformed
    assert wrong == {"__typename": "InvalidCredentials", "message": "Invalid email or password."}


def test_login_with_long_passwords_never_errors(client: TestClient) -> None:
    email = unique_email()
    signup(client, email=email, password="a" * 72 + "X")
    assert login(client, email, "a" * 72 + "Y")["__typename"] == "InvalidCredentials"
    assert login(client, email, "a" * 72 + "X")["__typename"] == "AuthPayload"
    assert login(client, email, "é" * 5000)["__typename"] == "InvalidCredentials"


def test_login_rehashes_outdated_hash(
    make_client: MakeClient, settings: Settings, database_url: str
) -> None:
    email = unique_email()
    signup(make_client(), email=email)
    engine = create_engine(normalize_database_url(database_url))
    # An account imported from a plain-bcrypt system, at a lower cost than configured.
    legacy = (
        PasswordHasher(4)
        ._context.handler("bcrypt")
        .using(rounds=4)
        .hash("correct horse battery staple")
    )
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE users SET password_hash = :h WHERE email = :e"), {"h": legacy, "e": email}
        )
    stronger = TestClient(create_app(settings.with_values(bcrypt_rounds=5)))
    with stronger:
        assert login(stronger, email)["__typename"] == "AuthPayload"
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT password_hash FROM users WHERE email = :e"), {"e": email}
        ).scalar_one()
    engine.dispose()
    assert stored.startswith("$bcrypt-sha256$v=2,t=2b,r=5$")
