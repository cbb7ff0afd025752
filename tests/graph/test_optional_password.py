"""Accounts without a password, over HTTP on SQLite and PostgreSQL.

Every place that checks a password handles an account that has none: the login answers
exactly as for a wrong password (after the same dummy verification), the owner's own
password checks explain how to set one, a recent sign-in stands in for the password where
there is nothing to type, and a reset link sets a first password.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from auth.passwords import PasswordHasher
from tests.conftest import MakeClient
from tests.factories import (
    CHANGE_PASSWORD,
    DEFAULT_PASSWORD,
    DELETE_ACCOUNT,
    REQUEST_EMAIL_CHANGE,
    REQUEST_PASSWORD_RESET,
    RESET_PASSWORD,
    gql,
    login,
    mutate,
    signup,
    unique_email,
)
from tests.mailbox import Mailbox, token_from
from tests.mfa import REAUTHENTICATE, controlled_clock
from tests.passwordless import drop_password

HAS_PASSWORD = "{ viewer { id hasPassword } }"
NEW_PASSWORD = "a first password for this account"


def _passwordless(client: TestClient, database_url: str) -> tuple[str, str]:
    """A signed-in account whose password is gone: its address and an access token."""
    email = unique_email("nopass")
    token = signup(client, email=email)["accessToken"]
    drop_password(database_url, email)
    return email, token


def test_viewer_has_password_tells_accounts_apart(client: TestClient, database_url: str) -> None:
    with_password = signup(client)["accessToken"]
    _, without = _passwordless(client, database_url)
    assert gql(client, HAS_PASSWORD, token=with_password)["data"]["viewer"]["hasPassword"] is True
    assert gql(client, HAS_PASSWORD, token=without)["data"]["viewer"]["hasPassword"] is False


def test_login_without_password_answers_like_wrong_password_after_dummy_work(
    client: TestClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    email, _ = _passwordless(client, database_url)
    known = unique_email()
    signup(client, email=known)
    hasher: PasswordHasher = client.app.state.authgraph.toolkit.hasher  # type: ignore[attr-defined]
    dummy_runs = 0
    real_dummy_verify = hasher.dummy_verify

    def counting_dummy_verify() -> None:
        nonlocal dummy_runs
        dummy_runs += 1
        real_dummy_verify()

    monkeypatch.setattr(hasher, "dummy_verify", counting_dummy_verify)
    no_password = login(client, email, DEFAULT_PASSWORD)
    # The one verification an account without a password costs is the dummy one.
    assert dummy_runs == 1
    wrong = login(client, known, "not the right password")
    assert no_password == wrong
    assert no_password == {
        "__typename": "InvalidCredentials",
        "message": "Invalid email or password.",
    }


def test_token_endpoint_without_password_answers_401(client: TestClient, database_url: str) -> None:
    email, _ = _passwordless(client, database_url)
    response = client.post("/token", data={"username": email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 401


def test_reset_password_sets_a_first_password(
    mail_client: TestClient, mailbox: Mailbox, database_url: str
) -> None:
    email, _ = _passwordless(mail_client, database_url)
    assert mutate(mail_client, REQUEST_PASSWORD_RESET, {"email": email})["__typename"] == (
        "PasswordResetRequested"
    )
    token = token_from(mailbox.wait_for(email, subject="reset")[0])
    done = mutate(mail_client, RESET_PASSWORD, {"token": token, "password": NEW_PASSWORD})
    assert done["__typename"] == "PasswordResetDone"
    fresh = login(mail_client, email, NEW_PASSWORD)
    assert fresh["__typename"] == "AuthPayload"
    viewer = gql(mail_client, HAS_PASSWORD, token=fresh["accessToken"])["data"]["viewer"]
    assert viewer["hasPassword"] is True


def test_change_password_without_password_sets_one_after_recent_sign_in(
    client: TestClient, database_url: str
) -> None:
    email, token = _passwordless(client, database_url)
    changed = mutate(client, CHANGE_PASSWORD, {"current": "", "new": NEW_PASSWORD}, token=token)
    assert changed["__typename"] == "AuthPayload", changed
    assert login(client, email, NEW_PASSWORD)["__typename"] == "AuthPayload"


def test_change_password_without_password_needs_recent_sign_in(
    client: TestClient, database_url: str
) -> None:
    clock = controlled_clock(client)
    email, token = _passwordless(client, database_url)
    clock.now += timedelta(minutes=10)
    refused = mutate(client, CHANGE_PASSWORD, {"current": "", "new": NEW_PASSWORD}, token=token)
    assert refused["__typename"] == "ReauthenticationRequired"
    assert login(client, email, NEW_PASSWORD)["__typename"] == "InvalidCredentials"


def test_reauthenticate_without_password_says_there_is_none(
    client: TestClient, database_url: str
) -> None:
    _, token = _passwordless(client, database_url)
    for variables in ({}, {"password": DEFAULT_PASSWORD}):
        answer = mutate(client, REAUTHENTICATE, variables, token=token)
        assert answer["__typename"] == "InvalidCredentials"
        assert "no password" in answer["message"]


def test_delete_account_without_password_needs_recent_sign_in(
    client: TestClient, database_url: str
) -> None:
    clock = controlled_clock(client)
    _, stale = _passwordless(client, database_url)
    clock.now += timedelta(minutes=10)
    refused = mutate(client, DELETE_ACCOUNT, {"password": ""}, token=stale)
    assert refused["__typename"] == "ReauthenticationRequired"
    assert gql(client, HAS_PASSWORD, token=stale)["data"]["viewer"] is not None


def test_delete_account_without_password_after_recent_sign_in_deletes(
    client: TestClient, database_url: str
) -> None:
    _, token = _passwordless(client, database_url)
    deleted = mutate(client, DELETE_ACCOUNT, {"password": "anything"}, token=token)
    assert deleted["__typename"] == "AccountDeleted"
    assert gql(client, HAS_PASSWORD, token=token)["data"]["viewer"] is None


def test_request_email_change_without_password_after_recent_sign_in(
    mail_client: TestClient, mailbox: Mailbox, database_url: str
) -> None:
    _, token = _passwordless(mail_client, database_url)
    new_email = unique_email("moved")
    asked = mutate(
        mail_client, REQUEST_EMAIL_CHANGE, {"email": new_email, "password": ""}, token=token
    )
    assert asked == {"__typename": "EmailChangeRequested", "newEmail": new_email}


def test_change_password_with_password_still_checks_it(make_client: MakeClient) -> None:
    client = make_client()
    token = signup(client)["accessToken"]
    wrong = mutate(client, CHANGE_PASSWORD, {"current": "", "new": NEW_PASSWORD}, token=token)
    assert wrong["__typename"] == "InvalidCredentials"
