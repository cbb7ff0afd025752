"""Mail is never lost: an SMTP outage at signup delays the message, it does not fail the signup."""

from __future__ import annotations

import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from db.engine import normalize_database_url
from db.models import OutboxMessage
from tests.conftest import MakeClient, mail_settings
from tests.factories import VERIFY_EMAIL, mutate, signup, unique_email
from tests.mailbox import smtp_server, token_from
from tests.servers import free_port

WAIT_SECONDS = 15


def _outbox(database_url: str) -> list[OutboxMessage]:
    engine = create_engine(normalize_database_url(database_url))
    with Session(engine) as db:
        rows = list(db.scalars(select(OutboxMessage)))
    engine.dispose()
    return rows


def test_signup_during_smtp_outage_is_delivered_when_server_returns(
    make_client: MakeClient, database_url: str
) -> None:
    port = free_port()  # nothing listens here yet
    client = make_client(**mail_settings(port))
    email = unique_email()
    signup(client, email=email)

    deadline = time.monotonic() + WAIT_SECONDS
    while not any(row.attempts >= 2 for row in _outbox(database_url)):
        assert time.monotonic() < deadline, "the sender never tried"
        time.sleep(0.05)
    (row,) = _outbox(database_url)
    assert row.sent_at is None
    assert row.last_error

    with smtp_server(port) as mailbox:
        (message,) = mailbox.wait_for(email)
    assert mutate(client, VERIFY_EMAIL, {"token": token_from(message)})["__typename"] == (
        "EmailVerified"
    )
    (row,) = _outbox(database_url)
    assert row.sent_at is not None


def test_development_mail_goes_to_log_and_folder(
    client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="authgraph.mail")
    email = unique_email()
    signup(client, email=email)
    folder = tmp_path / "mail"
    deadline = time.monotonic() + WAIT_SECONDS
    while not list(folder.glob("*.eml")):
        assert time.monotonic() < deadline, "no .eml written"
        time.sleep(0.05)
    (saved,) = folder.glob("*.eml")
    message = message_from_bytes(saved.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == email
    assert token_from(message)
    assert "development mail" in caplog.text
    assert email in caplog.text
