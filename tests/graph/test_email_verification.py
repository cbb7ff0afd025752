"""Email verification over HTTP, with the token read from a real SMTP server's mailbox."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from db.engine import normalize_database_url
from tests.factories import (
    RESEND_VERIFICATION,
    VERIFY_EMAIL,
    VIEWER_PROFILE,
    error_codes,
    gql,
    mutate,
    signup,
    unique_email,
)
from tests.mailbox import Mailbox, html_body, text_body, token_from


def test_signup_sends_verification_link_to_app_url(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    session = signup(mail_client, email=email)
    (message,) = mailbox.wait_for(email)
    token = token_from(message)
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    assert f"https://app.example.com/verify-email?token={token}" in text_body(message)
    assert "<a href=" in html_body(message)
    assert message["Message-ID"]
    viewer = gql(mail_client, VIEWER_PROFILE, token=session["accessToken"])["data"]["viewer"]
    assert viewer["emailVerified"] is False


def test_verify_email_marks_address_verified_once(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    session = signup(mail_client, email=email)
    token = token_from(mailbox.wait_for(email)[0])
    verified = mutate(mail_client, VERIFY_EMAIL, {"token": token})
    assert verified == {"__typename": "EmailVerified", "email": email}
    viewer = gql(mail_client, VIEWER_PROFILE, token=session["accessToken"])["data"]["viewer"]
    assert viewer["emailVerified"] is True
    again = mutate(mail_client, VERIFY_EMAIL, {"token": token})
    assert again["__typename"] == "InvalidToken"


def test_verify_email_with_unknown_or_expired_token_is_invalid(
    mail_client: TestClient, mailbox: Mailbox, database_url: str
) -> None:
    email = unique_email()
    signup(mail_client, email=email)
    token = token_from(mailbox.wait_for(email)[0])
    assert mutate(mail_client, VERIFY_EMAIL, {"token": "x" * 43})["__typename"] == "InvalidToken"
    assert mutate(mail_client, VERIFY_EMAIL, {"token": ""})["__typename"] == "InvalidToken"
    engine = create_engine(normalize_database_url(database_url))
    with engine.begin() as connection:
        connection.execute(text("UPDATE email_tokens SET expires_at = created_at"))
    engine.dispose()
    assert mutate(mail_client, VERIFY_EMAIL, {"token": token})["__typename"] == "InvalidToken"


def test_resend_verification_supersedes_the_older_link(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    session = signup(mail_client, email=email)
    first = token_from(mailbox.wait_for(email)[0])
    sent = mutate(mail_client, RESEND_VERIFICATION, token=session["accessToken"])
    assert sent == {"__typename": "VerificationEmailSent", "email": email}
    second = token_from(mailbox.wait_for(email, count=2)[1])
    assert second != first
    assert mutate(mail_client, VERIFY_EMAIL, {"token": first})["__typename"] == "InvalidToken"
    assert mutate(mail_client, VERIFY_EMAIL, {"token": second})["__typename"] == "EmailVerified"
    done = mutate(mail_client, RESEND_VERIFICATION, token=session["accessToken"])
    assert done["__typename"] == "EmailAlreadyVerified"


def test_resend_verification_needs_a_login(client: TestClient) -> None:
    body = gql(client, RESEND_VERIFICATION)
    assert error_codes(body) == ["UNAUTHENTICATED"]
