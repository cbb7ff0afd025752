"""The mail lease through real ``authgraph serve`` processes and a real (stalled) SMTP server.

A sender renews its short lease while it works: a live one keeps its claim however slow the
mail server, and the mail of one killed mid-delivery is sent by another once the lease ends.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from sqlalchemy import select

from db.engine import create_db_engine, create_session_factory
from db.models import OutboxMessage
from tests.factories import signup, unique_email
from tests.mailbox import Mailbox
from tests.servers import authgraph_env, serve, serve_process

SECRET = "lease-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
LEASE_SECONDS = 2
# Longer than the lease, far shorter than the SMTP timeout: slow, not dead.
SLOW_SMTP_SECONDS = 2.5 * LEASE_SECONDS


def _env(database_url: str, smtp_port: int) -> dict[str, str]:
    # database_url is migrated already (the fixture's template or the suite's upgrade).
    return authgraph_env(
        DATABASE_URL=database_url,
        JWT_SECRET=SECRET,
        SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        APP_URL="https://app.example.com",
        MAIL_LEASE_SECONDS=str(LEASE_SECONDS),
        SMTP_TIMEOUT_SECONDS="30",
        OUTBOX_POLL_INTERVAL_SECONDS="0.2",
    )


def _sent_row(database_url: str, recipient: str) -> OutboxMessage:
    """The recipient's one outbox row, once it is recorded as sent (waiting, bounded)."""
    engine = create_db_engine(database_url)
    factory = create_session_factory(engine)
    try:
        deadline = time.monotonic() + 10
        while True:
            with factory() as db:
                (row,) = db.scalars(
                    select(OutboxMessage).where(OutboxMessage.recipient == recipient)
                )
            if row.sent_at is not None or time.monotonic() > deadline:
                return row
            time.sleep(0.1)
    finally:
        engine.dispose()


def test_mail_of_a_killed_sender_is_sent_by_another_after_the_lease(
    database_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    env = _env(database_url, mailbox.port)
    mailbox.stall(seconds=60)  # hung: the first delivery never gets past RCPT
    email = unique_email("killed")
    with serve_process(env, tmp_path) as first:
        with httpx.Client(base_url=first.base) as client:
            signup(client, email=email)
        assert mailbox.stalled.wait(10), "the first process never tried to deliver"
        first.process.kill()
        first.process.wait(timeout=10)
    killed_at = time.monotonic()
    with serve(env, tmp_path):
        (message,) = mailbox.wait_for(email)
        # Loose liveness bound (a server start on a loaded machine is most of it): the lease
        # of 2 s and a poll, where a fixed lease of batch x SMTP timeout x 2 took 11 minutes.
        assert time.monotonic() - killed_at < 30
        row = _sent_row(database_url, email)
    assert row.sent_at is not None
    assert row.attempts == 2  # the killed claim, then the takeover
    assert message["Message-ID"].startswith(f"<{row.id}@")
    # Exactly once: the killed process got no further than RCPT, the second sent it.
    assert mailbox.recipients_tried.count(email) == 2
    assert len(mailbox.to(email)) == 1


def test_slow_smtp_sender_keeps_its_claim_past_the_lease(
    database_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    env = _env(database_url, mailbox.port)
    mailbox.stall(seconds=SLOW_SMTP_SECONDS)
    email = unique_email("slow")
    # Two processes on one database, both polling every 0.2 s: whichever claims the message
    # is stalled for longer than the lease, and the other must not take it over meanwhile.
    with serve(env, tmp_path) as base, serve(env, tmp_path):
        with httpx.Client(base_url=base) as client:
            signup(client, email=email)
        assert mailbox.stalled.wait(10), "no process tried to deliver"
        (message,) = mailbox.wait_for(email)
        row = _sent_row(database_url, email)
    assert row.sent_at is not None
    assert row.attempts == 1
    assert message["Message-ID"].startswith(f"<{row.id}@")
    assert mailbox.recipients_tried.count(email) == 1
    assert len(mailbox.to(email)) == 1
