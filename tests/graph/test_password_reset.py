"""Password reset over HTTP: no account enumeration, single-use tokens, sessions ended."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import (
    REQUEST_PASSWORD_RESET,
    RESET_PASSWORD,
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
from tests.mailbox import Mailbox, text_body, token_from

NEW_PASSWORD = "a different long passphrase"


def _reset_token(client: TestClient, mailbox: Mailbox, email: str, count: int = 1) -> str:
    mutate(client, REQUEST_PASSWORD_RESET, {"email": email})
    return token_from(mailbox.wait_for(email, count=count, subject="reset")[count - 1])


def test_request_password_reset_answers_alike_for_unknown_address(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    signup(mail_client, email=email)
    stranger = unique_email("nobody")
    unknown = mutate(mail_client, REQUEST_PASSWORD_RESET, {"email": stranger})
    known = mutate(mail_client, REQUEST_PASSWORD_RESET, {"email": email.upper()})
    assert unknown == known
    assert known["__typename"] == "PasswordResetRequested"
    (reset_mail,) = mailbox.wait_for(email, subject="reset")
    assert "https://app.example.com/reset-password?token=" in text_body(reset_mail)
    # The known address's message has arrived; the unknown one's request came first.
    assert mailbox.to(stranger) == []


def test_request_password_reset_refuses_malformed_address(mail_client: TestClient) -> None:
    result = mutate(mail_client, REQUEST_PASSWORD_RESET, {"email": "not an address"})
    assert result["__typename"] == "ValidationError"
    assert result["field"] == "email"


def test_reset_password_sets_password_and_ends_every_session(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    first = signup(mail_client, email=email)
    second = login(mail_client, email)
    token = _reset_token(mail_client, mailbox, email)

    done = mutate(mail_client, RESET_PASSWORD, {"token": token, "password": NEW_PASSWORD})
    assert done["__typename"] == "PasswordResetDone"

    for session in (first, second):
        body = gql(mail_client, VIEWER_PROFILE, token=session["accessToken"])
        assert error_codes(body) == ["UNAUTHENTICATED"]
        assert refresh(mail_client, session["refreshToken"])["__typename"] == "InvalidRefreshToken"
    assert login(mail_client, email)["__typename"] == "InvalidCredentials"
    fresh = login(mail_client, email, NEW_PASSWORD)
    assert fresh["__typename"] == "AuthPayload"
    # Opening the emailed link proved the address too.
    viewer = gql(mail_client, VIEWER_PROFILE, token=fresh["accessToken"])["data"]["viewer"]
    assert viewer["emailVerified"] is True

    reused = mutate(mail_client, RESET_PASSWORD, {"token": token, "password": "yet another one!"})
    assert reused["__typename"] == "InvalidToken"


def test_reset_password_applies_policy_and_keeps_token(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    signup(mail_client, email=email)
    token = _reset_token(mail_client, mailbox, email)
    weak = mutate(mail_client, RESET_PASSWORD, {"token": token, "password": "password1234"})
    assert weak["__typename"] == "ValidationError"
    assert weak["field"] == "newPassword"
    done = mutate(mail_client, RESET_PASSWORD, {"token": token, "password": NEW_PASSWORD})
    assert done["__typename"] == "PasswordResetDone"


def test_tokens_work_only_for_their_own_purpose(mail_client: TestClient, mailbox: Mailbox) -> None:
    email = unique_email()
    signup(mail_client, email=email)
    verification = token_from(mailbox.wait_for(email, subject="confirm")[0])
    reset = _reset_token(mail_client, mailbox, email)
    cross = mutate(mail_client, RESET_PASSWORD, {"token": verification, "password": NEW_PASSWORD})
    assert cross["__typename"] == "InvalidToken"
    assert mutate(mail_client, VERIFY_EMAIL, {"token": reset})["__typename"] == "InvalidToken"
    # Neither failed attempt spent the real tokens.
    assert mutate(mail_client, VERIFY_EMAIL, {"token": verification})["__typename"] == (
        "EmailVerified"
    )
    done = mutate(mail_client, RESET_PASSWORD, {"token": reset, "password": NEW_PASSWORD})
    assert done["__typename"] == "PasswordResetDone"


def test_newer_reset_request_supersedes_older_link(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    signup(mail_client, email=email)
    older = _reset_token(mail_client, mailbox, email)
    newer = _reset_token(mail_client, mailbox, email, count=2)
    stale = mutate(mail_client, RESET_PASSWORD, {"token": older, "password": NEW_PASSWORD})
    assert stale["__typename"] == "InvalidToken"
    done = mutate(mail_client, RESET_PASSWORD, {"token": newer, "password": NEW_PASSWORD})
    assert done["__typename"] == "PasswordResetDone"
