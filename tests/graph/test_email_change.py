"""Changing the account's address over HTTP: confirmation to the new one, notice to the old."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.factories import (
    CONFIRM_EMAIL_CHANGE,
    DEFAULT_PASSWORD,
    REQUEST_EMAIL_CHANGE,
    VERIFY_EMAIL,
    VIEWER_PROFILE,
    gql,
    login,
    mutate,
    signup,
    unique_email,
)
from tests.mailbox import Mailbox, text_body, token_from


def _request(
    client: TestClient, token: str, new_email: str, password: str = DEFAULT_PASSWORD
) -> dict[str, Any]:
    return mutate(
        client, REQUEST_EMAIL_CHANGE, {"email": new_email, "password": password}, token=token
    )


def test_email_change_switches_address_after_confirmation(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    old, new = unique_email("old"), unique_email("new")
    session = signup(mail_client, email=old)
    requested = _request(mail_client, session["accessToken"], new.upper())
    assert requested == {"__typename": "EmailChangeRequested", "newEmail": new}
    (notice,) = mailbox.wait_for(old, subject="changing")
    assert new in text_body(notice)
    assert "token=" not in text_body(notice)
    (confirmation,) = mailbox.wait_for(new)
    token = token_from(confirmation)
    assert "https://app.example.com/confirm-email-change?token=" in text_body(confirmation)
    # Nothing changes before the link is opened.
    assert login(mail_client, old)["__typename"] == "AuthPayload"

    changed = mutate(mail_client, CONFIRM_EMAIL_CHANGE, {"token": token})
    assert changed == {"__typename": "EmailChanged", "email": new}
    viewer = gql(mail_client, VIEWER_PROFILE, token=session["accessToken"])["data"]["viewer"]
    assert (viewer["email"], viewer["emailVerified"]) == (new, True)
    assert login(mail_client, new)["__typename"] == "AuthPayload"
    assert login(mail_client, old)["__typename"] == "InvalidCredentials"
    again = mutate(mail_client, CONFIRM_EMAIL_CHANGE, {"token": token})
    assert again["__typename"] == "InvalidToken"


def test_request_email_change_checks_password_and_address(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    taken = unique_email("taken")
    signup(mail_client, email=taken)
    email = unique_email()
    session = signup(mail_client, email=email)
    token = session["accessToken"]
    wrong = _request(mail_client, token, unique_email(), password="not my password at all")
    assert wrong["__typename"] == "InvalidCredentials"
    assert _request(mail_client, token, taken.upper())["__typename"] == "EmailTaken"
    same = _request(mail_client, token, email)
    assert (same["__typename"], same["field"]) == ("ValidationError", "newEmail")
    bad = _request(mail_client, token, "nope")
    assert (bad["__typename"], bad["field"]) == ("ValidationError", "newEmail")
    mailbox.wait_for(email)  # the signup's verification message
    assert mailbox.to(email, subject="changing") == []


def test_confirm_email_change_fails_if_address_was_taken_meanwhile(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    email, wanted = unique_email(), unique_email("wanted")
    session = signup(mail_client, email=email)
    _request(mail_client, session["accessToken"], wanted)
    token = token_from(mailbox.wait_for(wanted)[0])
    signup(mail_client, email=wanted)
    taken = mutate(mail_client, CONFIRM_EMAIL_CHANGE, {"token": token})
    assert taken["__typename"] == "EmailTaken"
    viewer = gql(mail_client, VIEWER_PROFILE, token=session["accessToken"])["data"]["viewer"]
    assert viewer["email"] == email


def test_old_verification_link_does_not_verify_the_new_address(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    old, new = unique_email("old"), unique_email("new")
    session = signup(mail_client, email=old)
    verification = token_from(mailbox.wait_for(old, subject="confirm your email")[0])
    _request(mail_client, session["accessToken"], new)
    change = token_from(mailbox.wait_for(new)[0])
    assert mutate(mail_client, VERIFY_EMAIL, {"token": change})["__typename"] == "InvalidToken"
    assert mutate(mail_client, CONFIRM_EMAIL_CHANGE, {"token": change})["__typename"] == (
        "EmailChanged"
    )
    # Sent to the old address: it proves nothing about the new one.
    assert mutate(mail_client, VERIFY_EMAIL, {"token": verification})["__typename"] == (
        "InvalidToken"
    )
