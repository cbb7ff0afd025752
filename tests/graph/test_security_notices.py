"""Notices to the user and new-device detection, delivered to a real SMTP server (aiosmtpd).

A "device" is the browser's ``authgraph_device`` cookie (HttpOnly, random, stored hashed);
the test client keeps cookies like a browser, and forgetting them is a new device. Absence
of a notice is read from the outbox table, where a notice is written in the same
transaction as its event: nothing there means nothing will ever be sent. The notice of a
linked identity needs the real OpenID provider: it is in tests/graph/test_oauth.py.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from db.engine import normalize_database_url
from tests.authenticator import SoftAuthenticator
from tests.conftest import MakeClient, mail_settings
from tests.factories import (
    CHANGE_PASSWORD,
    DEFAULT_PASSWORD,
    login,
    mutate,
    refresh,
    signup,
    unique_email,
)
from tests.graph.test_security_events import CHROME_LINUX, IPHONE, kinds, ua
from tests.mailbox import Mailbox, html_body, text_body
from tests.mfa import REMOVE_FACTOR, controlled_clock, enroll
from tests.passkeys import register

DEVICE_COOKIE = "authgraph_device"


def _query(database_url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(normalize_database_url(database_url))
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())
    finally:
        engine.dispose()


def queued_subjects(database_url: str, recipient: str) -> list[str]:
    rows = _query(
        database_url,
        "SELECT subject FROM outbox WHERE recipient = :r ORDER BY created_at",
        r=recipient,
    )
    return [r[0] for r in rows]


def test_sign_in_from_a_new_device_is_recorded_and_mailed(
    mail_client: TestClient, mailbox: Mailbox, database_url: str
) -> None:
    email = unique_email("device")
    signup(mail_client, email=email, headers=ua(CHROME_LINUX))
    cookie = mail_client.cookies.get(DEVICE_COOKIE)
    assert cookie
    # The same browser again: a known device, no notice (the first sign-in after signup).
    login(mail_client, email, headers=ua(CHROME_LINUX))
    # Another browser (no cookie yet).
    mail_client.cookies.clear()
    phone = login(mail_client, email, headers=ua(IPHONE))
    assert phone["__typename"] == "AuthPayload"
    assert mail_client.cookies.get(DEVICE_COOKIE) not in (None, cookie)
    # That browser once more: known now.
    again = login(mail_client, email, headers=ua(IPHONE))

    trail = kinds(mail_client, again["accessToken"])
    assert trail.count(("NEW_DEVICE_SIGN_IN", "password")) == 1
    # Recorded with the phone's first sign-in (the second and third entries, newest first).
    assert ("NEW_DEVICE_SIGN_IN", "password") in trail[1:3]
    (notice,) = mailbox.wait_for(email, subject="new sign-in")
    body = text_body(notice)
    assert "Mobile Safari 17 on iOS 17 (Apple iPhone)" in body
    assert "IP address: testclient" in body
    assert "https://app.example.com/forgot-password" in body
    assert 'href="https://app.example.com/forgot-password"' in html_body(notice)
    assert queued_subjects(database_url, email).count(notice["Subject"]) == 1


def _signup_cookie(client: TestClient, cookie: str | None = None) -> str:
    """Sign up a new account with a bare request; the device cookie the answer sets."""
    client.cookies.clear()
    response = client.post(
        "/graphql",
        json={
            "query": "mutation($e: String!, $p: String!) { signup(input: {email: $e, "
            "password: $p}) { __typename } }",
            "variables": {"e": unique_email("cookie"), "p": DEFAULT_PASSWORD},
        },
        headers={"Cookie": f"{DEVICE_COOKIE}={cookie}"} if cookie else {},
    )
    assert response.json()["data"]["signup"]["__typename"] == "AuthPayload"
    headers: list[str] = response.headers.get_list("set-cookie")
    return next(h for h in headers if h.startswith(f"{DEVICE_COOKIE}="))


def test_device_cookie_is_httponly_long_lived_and_stored_hashed(
    client: TestClient, database_url: str
) -> None:
    header = _signup_cookie(client)
    attributes = [a.strip().lower() for a in header.split(";")]
    assert "httponly" in attributes
    assert "path=/" in attributes
    assert "samesite=lax" in attributes
    assert f"max-age={400 * 24 * 3600}" in attributes
    value = header.split(";", 1)[0].split("=", 1)[1]
    assert len(value) == 43
    stored = [r[0] for r in _query(database_url, "SELECT device_hash FROM known_devices")]
    assert stored == [hashlib.sha256(value.encode()).hexdigest()]
    # A device cookie that is not one of ours is replaced, never stored as sent.
    forged = _signup_cookie(client, "x" * 10)
    assert not forged.startswith(f"{DEVICE_COOKIE}=xxxxxxxxxx;")
    stored = [r[0] for r in _query(database_url, "SELECT device_hash FROM known_devices")]
    assert hashlib.sha256(b"x" * 10).hexdigest() not in stored
    assert len(stored) == 2


def test_password_change_is_mailed_unless_switched_off(
    make_client: MakeClient, mailbox: Mailbox, database_url: str
) -> None:
    client = make_client(**mail_settings(mailbox.port))
    email = unique_email("pwd")
    session = signup(client, email=email)
    changed = mutate(
        client,
        CHANGE_PASSWORD,
        {"current": DEFAULT_PASSWORD, "new": "another fine password 42"},
        token=session["accessToken"],
    )
    assert changed["__typename"] == "AuthPayload"
    (notice,) = mailbox.wait_for(email, subject="password was changed")
    assert "the password of your account was changed" in text_body(notice)

    quiet = make_client(notify_password_changed=False, **mail_settings(mailbox.port))
    other = unique_email("quiet")
    session = signup(quiet, email=other)
    changed = mutate(
        quiet,
        CHANGE_PASSWORD,
        {"current": DEFAULT_PASSWORD, "new": "another fine password 42"},
        token=session["accessToken"],
    )
    # Recorded all the same; only the mail is off.
    assert kinds(quiet, changed["accessToken"])[0] == ("PASSWORD_CHANGED", None)
    assert not any("password" in s.lower() for s in queued_subjects(database_url, other))


def test_passkey_added_is_mailed_unless_switched_off(
    make_client: MakeClient, mailbox: Mailbox, database_url: str
) -> None:
    client = make_client(**mail_settings(mailbox.port))
    email = unique_email("passkey-mail")
    token = signup(client, email=email)["accessToken"]
    register(client, token, SoftAuthenticator(), name="Laptop")
    (notice,) = mailbox.wait_for(email, subject="a passkey was added")
    assert "a passkey was added to your account" in text_body(notice)
    assert "https://app.example.com/forgot-password" in text_body(notice)
    assert queued_subjects(database_url, email).count(notice["Subject"]) == 1

    quiet = make_client(notify_passkey_added=False, **mail_settings(mailbox.port))
    other = unique_email("quiet-passkey")
    token = signup(quiet, email=other)["accessToken"]
    register(quiet, token, SoftAuthenticator(), name="Laptop")
    # Recorded all the same; only the mail is off.
    assert "PASSKEY_ADDED" in [kind for kind, _ in kinds(quiet, token)]
    assert not any("passkey" in s.lower() for s in queued_subjects(database_url, other))


def test_refresh_token_reuse_is_mailed(make_client: MakeClient, mailbox: Mailbox) -> None:
    client = make_client(refresh_reuse_grace_seconds=0, **mail_settings(mailbox.port))
    clock = controlled_clock(client)
    email = unique_email("stolen")
    first = signup(client, email=email)
    assert refresh(client, first["refreshToken"])["__typename"] == "AuthPayload"
    clock.now += timedelta(seconds=5)
    assert refresh(client, first["refreshToken"])["__typename"] == "InvalidRefreshToken"
    (notice,) = mailbox.wait_for(email, subject="ended a session")
    assert "we ended that session" in text_body(notice)


def test_mfa_on_and_off_are_mailed(mail_client: TestClient, mailbox: Mailbox) -> None:
    clock = controlled_clock(mail_client)
    email = unique_email("mfa-mail")
    token = signup(mail_client, email=email)["accessToken"]
    # At the clock's own time: a notice queued in the future would wait for it.
    user = enroll(mail_client, email, token, clock.now)
    (on,) = mailbox.wait_for(email, subject="verification is on")
    assert "turned on" in text_body(on)
    removed = mutate(mail_client, REMOVE_FACTOR, {"id": user.factor_id}, token=user.access_token)
    assert removed["mfaEnabled"] is False
    (off,) = mailbox.wait_for(email, subject="verification is off")
    assert "turned off" in text_body(off)


def test_signup_and_sign_in_on_one_device_mail_nothing_but_the_verification(
    mail_client: TestClient, mailbox: Mailbox, database_url: str
) -> None:
    email = unique_email("calm")
    signup(mail_client, email=email)
    for _ in range(3):
        login(mail_client, email)
    assert [s.split(" (")[0] for s in queued_subjects(database_url, email)] == [
        "Confirm your email address"
    ]
