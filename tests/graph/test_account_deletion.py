"""Deleting an account and editing the profile, over HTTP."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import MakeClient
from tests.factories import (
    DEFAULT_PASSWORD,
    DELETE_ACCOUNT,
    REQUEST_PASSWORD_RESET,
    UPDATE_PROFILE,
    VERIFY_EMAIL,
    VIEWER_PROFILE,
    error_codes,
    gql,
    login,
    mutate,
    refresh,
    signup,
    unique_email,
)
from tests.mailbox import Mailbox, token_from


def test_delete_account_removes_user_sessions_and_tokens(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    first = signup(mail_client, email=email)
    second = login(mail_client, email)
    verification = token_from(mailbox.wait_for(email)[0])

    wrong = mutate(
        mail_client, DELETE_ACCOUNT, {"password": "not the password"}, token=first["accessToken"]
    )
    assert wrong["__typename"] == "InvalidCredentials"
    deleted = mutate(
        mail_client, DELETE_ACCOUNT, {"password": DEFAULT_PASSWORD}, token=first["accessToken"]
    )
    assert deleted == {"__typename": "AccountDeleted", "deletedUserId": first["user"]["id"]}

    for session in (first, second):
        body = gql(mail_client, VIEWER_PROFILE, token=session["accessToken"])
        assert error_codes(body) == ["UNAUTHENTICATED"]
        assert refresh(mail_client, session["refreshToken"])["__typename"] == "InvalidRefreshToken"
    assert login(mail_client, email)["__typename"] == "InvalidCredentials"
    assert mutate(mail_client, VERIFY_EMAIL, {"token": verification})["__typename"] == (
        "InvalidToken"
    )
    again = signup(mail_client, email=email)
    assert again["user"]["id"] != first["user"]["id"]


def test_delete_account_needs_a_login(client: TestClient) -> None:
    body = gql(client, DELETE_ACCOUNT, {"password": DEFAULT_PASSWORD})
    assert error_codes(body) == ["UNAUTHENTICATED"]


def test_delete_account_in_cookie_mode_clears_cookies(make_client: MakeClient) -> None:
    client = make_client(refresh_token_transport="cookie")
    session = signup(client)
    response = client.post(
        "/graphql",
        json={"query": DELETE_ACCOUNT, "variables": {"password": DEFAULT_PASSWORD}},
        headers={"Authorization": f"Bearer {session['accessToken']}"},
    )
    assert response.json()["data"]["deleteAccount"]["__typename"] == "AccountDeleted"
    cleared = response.headers.get_list("set-cookie")
    assert any(c.startswith("authgraph_refresh=") and "Max-Age=0" in c for c in cleared)


def test_deleted_account_gets_no_reset_mail(mail_client: TestClient, mailbox: Mailbox) -> None:
    email = unique_email()
    session = signup(mail_client, email=email)
    mutate(
        mail_client, DELETE_ACCOUNT, {"password": DEFAULT_PASSWORD}, token=session["accessToken"]
    )
    mutate(mail_client, REQUEST_PASSWORD_RESET, {"email": email})
    other = unique_email()
    signup(mail_client, email=other)
    mutate(mail_client, REQUEST_PASSWORD_RESET, {"email": other})
    mailbox.wait_for(other, subject="reset")
    assert mailbox.to(email, subject="reset") == []


@pytest.mark.parametrize(
    ("name", "saved"),
    [("  Ada   Lovelace ", "Ada Lovelace"), ("", None), (None, None)],
)
def test_update_profile_sets_display_name(
    client: TestClient, name: str | None, saved: str | None
) -> None:
    session = signup(client)
    updated = mutate(client, UPDATE_PROFILE, {"name": name}, token=session["accessToken"])
    assert updated["user"] == {"id": session["user"]["id"], "displayName": saved}
    viewer = gql(client, VIEWER_PROFILE, token=session["accessToken"])["data"]["viewer"]
    assert viewer["displayName"] == saved


def test_update_profile_refuses_long_name(client: TestClient) -> None:
    session = signup(client)
    result = mutate(client, UPDATE_PROFILE, {"name": "x" * 101}, token=session["accessToken"])
    assert (result["__typename"], result["field"]) == ("ValidationError", "displayName")
