"""The outbox sender against a real database and a real SMTP server (or none)."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from auth.ports import OutgoingMail
from db.engine import create_db_engine, create_session_factory
from db.models import OutboxMessage
from db.outbox import SqlOutbox, SqlOutboxStore
from graph.settings import Settings
from mail.sender import OutboxSender, retry_delay
from mail.settings import smtp_endpoint
from mail.transport import transport_for
from tests.conftest import mail_settings
from tests.factories import Clock
from tests.mailbox import Mailbox, smtp_server
from tests.servers import free_port

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on a fresh loop in its own thread (sync Playwright may hold this thread's loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return create_session_factory(engine)


def _enqueue(factory: sessionmaker[Session], count: int, now: datetime) -> None:
    with factory() as db:
        outbox = SqlOutbox(db)
        for n in range(count):
            outbox.enqueue(
                OutgoingMail(f"to{n}@example.com", f"message {n}", f"text {n}", f"<p>{n}</p>"),
                now=now,
            )
        db.commit()


def _rows(factory: sessionmaker[Session]) -> list[OutboxMessage]:
    with factory() as db:
        return list(db.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)))


def _sender(
    settings: Settings, factory: sessionmaker[Session], port: int, clock: Clock, **overrides: object
) -> OutboxSender:
    configured = settings.with_values(**{**mail_settings(port), **overrides}).mail
    return OutboxSender(SqlOutboxStore(factory), transport_for(configured), configured, clock)


def test_two_senders_never_send_one_message_twice(
    settings: Settings, factory: sessionmaker[Session], database_url: str, mailbox: Mailbox
) -> None:
    clock = Clock()
    _enqueue(factory, 25, clock.now)
    # Two processes: separate engines and pools, one database.
    other_engine = create_db_engine(database_url)
    first = _sender(settings, factory, mailbox.port, clock)
    second = _sender(settings, create_session_factory(other_engine), mailbox.port, clock)

    async def drain() -> None:
        for _ in range(10):
            sent = await asyncio.gather(first.run_once(), second.run_once())
            if sum(sent) == 0:
                return

    run(drain())
    other_engine.dispose()
    ids = [str(m["Message-ID"]) for m in mailbox.messages]
    assert len(ids) == 25
    assert len(set(ids)) == 25
    assert all(row.sent_at is not None and row.attempts == 1 for row in _rows(factory))


def test_sender_gives_up_after_max_attempts(
    settings: Settings, factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    _enqueue(factory, 1, clock.now)
    sender = _sender(settings, factory, free_port(), clock, outbox_max_attempts=3)

    async def attempt_until_failed() -> list[int]:
        attempts = []
        for _ in range(5):
            await sender.run_once()
            (row,) = _rows(factory)
            attempts.append(row.attempts)
            clock.now += timedelta(seconds=10)  # past any backoff
        return attempts

    assert run(attempt_until_failed()) == [1, 2, 3, 3, 3]
    (row,) = _rows(factory)
    assert row.failed_at is not None
    assert row.sent_at is None
    assert row.last_error
    assert "giving up on mail" in caplog.text


def test_sender_backs_off_between_attempts(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    clock = Clock()
    _enqueue(factory, 1, clock.now)
    sender = _sender(
        settings,
        factory,
        free_port(),
        clock,
        outbox_retry_base_seconds=2.0,
        outbox_retry_max_seconds=60.0,
    )

    run(sender.run_once())
    (row,) = _rows(factory)
    assert row.next_attempt_at == clock.now + timedelta(seconds=2)
    assert run(sender.run_once()) == 0
    assert _rows(factory)[0].attempts == 1  # not due yet: untouched
    assert retry_delay(1, 2.0, 60.0) == 2.0
    assert retry_delay(4, 2.0, 60.0) == 16.0
    assert retry_delay(20, 2.0, 60.0) == 60.0


def test_permanent_refusal_fails_at_once(
    settings: Settings, factory: sessionmaker[Session], mailbox: Mailbox
) -> None:
    clock = Clock()
    _enqueue(factory, 1, clock.now)
    mailbox.refuse_code = "550 5.1.1 No such user here"
    run(_sender(settings, factory, mailbox.port, clock).run_once())
    (row,) = _rows(factory)
    assert (row.attempts, row.sent_at) == (1, None)
    assert row.failed_at is not None
    assert "550" in (row.last_error or "")


def test_lease_of_a_crashed_sender_expires(
    settings: Settings, factory: sessionmaker[Session], mailbox: Mailbox
) -> None:
    clock = Clock()
    _enqueue(factory, 1, clock.now)
    store = SqlOutboxStore(factory)
    # A sender claims the message and dies before recording anything.
    crashed = store.claim_due(
        now=clock.now, lease_until=clock.now + timedelta(minutes=5), claim_id="dead", limit=10
    )
    assert len(crashed) == 1
    sender = _sender(settings, factory, mailbox.port, clock)
    assert run(sender.run_once()) == 0
    clock.now += timedelta(minutes=5, seconds=1)
    assert run(sender.run_once()) == 1
    assert len(mailbox.messages) == 1
    # The dead sender's late report changes nothing: the lease is no longer its own.
    store.mark_failed(crashed[0].id, claim_id="dead", now=clock.now, error="late")
    (row,) = _rows(factory)
    assert (row.sent_at is not None, row.failed_at, row.attempts) == (True, None, 2)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_credentials_are_sent_after_starttls(
    settings: Settings,
    factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    # The client trusts our test certificate through the standard OpenSSL variable.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    seen: list[tuple[bytes, bytes]] = []

    def authenticator(
        server: object, session: object, envelope: object, mechanism: str, data: object
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        seen.append((data.login, data.password))
        return AuthResult(success=data.password == b"p@ss word")

    clock = Clock()
    _enqueue(factory, 1, clock.now)
    port = free_port()
    # The server refuses everything before STARTTLS and AUTH over plain text.
    with smtp_server(
        port, authenticator=authenticator, tls_context=server_tls, require_starttls=True
    ) as box:
        sender = _sender(
            settings,
            factory,
            port,
            clock,
            smtp=smtp_endpoint(f"smtp://mailer:p%40ss%20word@127.0.0.1:{port}"),
        )
        assert run(sender.run_once()) == 1
        assert len(box.messages) == 1
    assert seen == [(b"mailer", b"p@ss word")]


def test_stop_ends_run_forever_while_mail_is_failing(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    clock = Clock()
    _enqueue(factory, 3, clock.now)
    sender = _sender(settings, factory, free_port(), clock, outbox_poll_interval_seconds=0.05)

    async def run_then_stop() -> bool:
        task = asyncio.create_task(sender.run_forever())
        for _ in range(5):
            sender.wake()
            await asyncio.sleep(0.02)
        sender.stop()
        done, _ = await asyncio.wait({task}, timeout=5)
        return task in done

    assert run(run_then_stop())
    assert all(row.attempts >= 1 and row.sent_at is None for row in _rows(factory))


def test_extend_lease_only_for_the_claim_holder(factory: sessionmaker[Session]) -> None:
    clock = Clock()
    _enqueue(factory, 1, clock.now)
    store = SqlOutboxStore(factory)
    lease_until = clock.now + timedelta(seconds=30)
    (record,) = store.claim_due(now=clock.now, lease_until=lease_until, claim_id="mine", limit=10)
    later = clock.now + timedelta(minutes=5)
    assert store.extend_lease([record.id], claim_id="someone else", lease_until=later) == set()
    assert _rows(factory)[0].next_attempt_at == lease_until
    assert store.extend_lease([record.id], claim_id="mine", lease_until=later) == {record.id}
    assert _rows(factory)[0].next_attempt_at == later
    store.mark_sent(record.id, claim_id="mine", now=clock.now)
    # Finished: nothing left to hold.
    assert store.extend_lease([record.id], claim_id="mine", lease_until=later) == set()


def test_sender_skips_mail_whose_lease_was_taken_over(
    settings: Settings, factory: sessionmaker[Session], mailbox: Mailbox
) -> None:
    clock = Clock()
    _enqueue(factory, 2, clock.now)
    sender = _sender(settings, factory, mailbox.port, clock, mail_lease_seconds=2)
    # The first message is slow enough for renewals (every 2/3 s) to find the takeover.
    mailbox.stall(seconds=2)
    store = SqlOutboxStore(factory)

    async def take_over_mid_batch() -> tuple[int, int]:
        pass_in_progress = asyncio.create_task(sender.run_once())
        assert await asyncio.to_thread(mailbox.stalled.wait, 10)
        # Another sender, for which this one's lease has run out (as if it had been paused).
        taken = await asyncio.to_thread(
            store.claim_due,
            now=clock.now + timedelta(minutes=1),
            lease_until=clock.now + timedelta(hours=1),
            claim_id="other",
            limit=10,
        )
        return len(taken), await pass_in_progress

    taken, sent = run(take_over_mid_batch())
    assert taken == 2
    # The message already at the SMTP server went out; the second was left to its new holder.
    assert sent == 1
    # (Both were queued at the same instant, so either may be the one in flight.)
    assert len(mailbox.recipients_tried) == 1
    # And the first sender's late outcome did not overwrite the new holder's claim.
    assert [(row.claim_id, row.sent_at) for row in _rows(factory)] == [("other", None)] * 2
