"""The composition root: builds the process's objects and hands out services.

The one module of :mod:`graph` that knows :mod:`db`: the context, the REST routes, the
command line and pruning ask :class:`AppState` for services bound to a database session.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from auth.hashing import HashLane
from auth.keys import KeyRing, Reencrypted
from auth.mfa import MfaService
from auth.oauth import OAuthService
from auth.ports import LiveSessionReads, SessionRecord, UnitOfWork, UserRecord
from auth.ratelimit import STORAGE, RateLimiter
from auth.service import AuthService, PruneCounts
from auth.settings import webhook_key
from auth.toolkit import AuthToolkit
from db.engine import DATABASE, create_db_engine, create_reader_engine, create_session_factory
from db.events import listen_forever, publish_after_commit
from db.outbox import WEBHOOK, SqlOutboxStore
from db.repositories import SqlUnitOfWork
from db.session_check import live_session_reads
from db.signing_keys import SqlSigningKeyStore
from graph.broadcast import LiveBus, RedisBroadcast
from graph.outages import OutageLog
from graph.settings import Settings
from graph.token_transport import TokenTransport, token_transport
from mail.sender import OutboxSender
from mail.transport import transport_for
from mail.webhooks import WebhookSender

UseCase = TypeVar("UseCase")
SESSION_CHECK_THREADS = 8
SESSION_CHECK_THREAD_NAME = "authgraph-session-check"
log = logging.getLogger("authgraph")


@dataclass
class AppState:
    """Process-wide objects, made once by :func:`build_state`."""

    settings: Settings
    toolkit: AuthToolkit
    engine: Engine
    session_factory: sessionmaker[Session]
    transport: TokenTransport
    # The session check's engine (db.engine.create_reader_engine); the main one if unset.
    reader: Engine | None = None
    # None where no sender runs (the CLI's one-off commands).
    mail_sender: OutboxSender | None = None
    # Only with WEBHOOK_URL set, and only while serving.
    webhook_sender: WebhookSender | None = None
    # Committed security events, for this process's live subscriptions (graph.live).
    live_bus: LiveBus = field(default_factory=LiveBus)
    # What feeds it across instances, started with the server (start_live).
    live_feed: LiveFeed | None = None
    outages: OutageLog = field(default_factory=OutageLog)
    # The viewer's session check runs here, off the event loop, and never queues behind
    # password hashing or other use cases. Threads start on first use.
    session_checks: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(
            SESSION_CHECK_THREADS, thread_name_prefix=SESSION_CHECK_THREAD_NAME
        )
    )
    # The session check's read for a token verified before, without those threads
    # (db.session_check); None where the backend has none (then the threads serve).
    live_reads: LiveSessionReads | None = None

    def wake_mail_sender(self) -> None:
        """Ask for prompt delivery after a commit that queued mail."""
        if self.mail_sender is not None:
            self.mail_sender.wake()

    def wake_webhook_sender(self) -> None:
        """Ask for prompt delivery after a commit that may have queued webhook deliveries."""
        if self.webhook_sender is not None:
            self.webhook_sender.wake()

    def start_live(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach the bus to the server's loop and start its feed."""
        self.live_bus.attach(loop)
        if self.live_feed is not None:
            self.live_feed.start()

    def stop_live(self) -> None:
        if self.live_feed is not None:
            self.live_feed.stop()

    @property
    def hash_lane(self) -> HashLane:
        """Where passwords are hashed; a use case that hashes is admitted to it first."""
        return self.toolkit.hash_lane

    @property
    def limiter(self) -> RateLimiter:
        """The process's rate limiter (counts in ``RATE_LIMIT_STORAGE``); see auth.ratelimit."""
        return self.toolkit.limiter

    def unit_of_work(self, database: Session) -> UnitOfWork:
        return SqlUnitOfWork(database, self.reader)

    def service(
        self, kind: Callable[[AuthToolkit, UnitOfWork], UseCase], database: Session
    ) -> UseCase:
        """A use-case class of ``auth/`` (``AuthService``, ``AccountService``, a new feature's)
        bound to the toolkit and to a unit of work in ``database``'s transaction."""
        return kind(self.toolkit, self.unit_of_work(database))

    @contextmanager
    def database(self) -> Iterator[Session]:
        """A database session of its own, closed at the end of the block."""
        database = self.session_factory()
        try:
            yield database
        finally:
            database.close()

    def close(self) -> None:
        """Release the database connections, the session-check threads and the hash lane's."""
        self.session_checks.shutdown(wait=False, cancel_futures=True)
        self.toolkit.close()
        if self.reader is not None and self.reader is not self.engine:
            self.reader.dispose()
        self.engine.dispose()


def build_state(settings: Settings, *, serving: bool = True) -> AppState:
    """Connect nothing yet, but build everything: engines, toolkit, token transport, sender.

    ``serving`` adds what only a server needs: the session check's reader engine and the
    outbox sender, and the statement timeout (a one-off prune may rightly take a while).
    """
    outages = OutageLog()
    answered = outages.listener(DATABASE)
    timeouts = {
        "connect_timeout": settings.database.db_connect_timeout_seconds,
        "statement_timeout": settings.database.db_statement_timeout_seconds if serving else None,
    }
    engine = create_db_engine(settings.database.database_url, on_answer=answered, **timeouts)
    session_factory = create_session_factory(engine)
    toolkit = AuthToolkit(settings.auth, key_store=SqlSigningKeyStore(session_factory))
    toolkit.limiter.on_answer = outages.listener(STORAGE)
    bus = LiveBus()
    state = AppState(
        live_bus=bus,
        live_feed=_live_feed(settings, session_factory, bus, engine.dialect.name),
        settings=settings,
        toolkit=toolkit,
        outages=outages,
        engine=engine,
        session_factory=session_factory,
        transport=token_transport(settings),
        reader=(create_reader_engine(engine, on_answer=answered, **timeouts) if serving else None),
        mail_sender=(
            OutboxSender(
                SqlOutboxStore(session_factory),
                transport_for(settings.mail),
                settings.mail,
                on_outage=outages.noticed,
            )
            if serving
            else None
        ),
        webhook_sender=_webhook_sender(settings, session_factory, outages) if serving else None,
    )
    if serving:
        state.live_reads = live_session_reads(
            engine,
            functools.partial(_find_active, state),
            state.session_checks,
            on_answer=answered,
            **timeouts,
        )
    return state


def _find_active(
    state: AppState, session_id: str, user_id: str, now: datetime
) -> tuple[UserRecord, SessionRecord] | None:
    """The session check's read through the engine (a session-check thread's)."""
    with state.database() as database:
        return state.unit_of_work(database).sessions.find_active(
            session_id=session_id, user_id=user_id, now=now
        )


class LiveFeed:
    """A thread that feeds the bus from PostgreSQL LISTEN or Redis pub/sub."""

    def __init__(self, run: Callable[[threading.Event], None], stop: Callable[[], None]) -> None:
        self._stop = threading.Event()
        self._run = run
        self._stop_extra = stop
        self._thread = threading.Thread(
            target=run, args=(self._stop,), name="authgraph-live", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._stop_extra()


def _live_feed(
    settings: Settings, session_factory: sessionmaker[Session], bus: LiveBus, dialect: str
) -> LiveFeed | None:
    """PostgreSQL: LISTEN (the NOTIFY is in each event's transaction). Else Redis pub/sub
    when RATE_LIMIT_STORAGE is Redis. Else in process only."""
    if dialect == "postgresql":
        url = settings.database.database_url
        return LiveFeed(lambda stop: listen_forever(url, bus.publish_threadsafe, stop), _noop)
    storage = settings.auth.rate_limit_storage
    if storage.startswith(("redis://", "rediss://")):
        redis = RedisBroadcast(storage.replace("redis+", ""), bus)
        publish_after_commit(session_factory, redis.publish)
        return LiveFeed(lambda stop: redis.listen(stop), redis.stop)
    publish_after_commit(session_factory, bus.publish_threadsafe)
    return None


def _noop() -> None:
    pass


def _webhook_sender(
    settings: Settings, session_factory: sessionmaker[Session], outages: OutageLog
) -> WebhookSender | None:
    auth = settings.auth
    if auth.webhook_url is None or auth.webhook_secret is None:
        return None
    return WebhookSender(
        SqlOutboxStore(session_factory, channel=WEBHOOK),
        auth.webhook_url,
        webhook_key(auth.webhook_secret),
        settings.mail,
        on_outage=outages.noticed,
    )


def load_keys(state: AppState, *, create: bool) -> None:
    """Read the signing keys at start-up; ``create`` (development) makes the first one.

    Without a current key (production before ``authgraph migrate``) this refuses to start,
    naming the command: a request never creates a key.
    """
    keys = state.toolkit.keys
    keys.refresh()
    if create and keys.ensure_current(state.toolkit.clock()):
        log.warning("created the first signing key (development); production runs migrate")
    keys.signer()


def ensure_signing_key(settings: Settings) -> str | None:
    """After a migration: create and activate the first signing key if none is current.

    Reads only the database and the key settings; returns the new key's ``kid``, if any.
    """
    engine = create_db_engine(settings.database.database_url)
    try:
        toolkit = AuthToolkit(
            settings.auth, key_store=SqlSigningKeyStore(create_session_factory(engine))
        )
        return toolkit.keys.ensure_current(toolkit.clock())
    finally:
        engine.dispose()


def key_admin(state: AppState) -> KeyRing:
    """The key ring, for ``authgraph keys`` (its store is the database)."""
    return state.toolkit.keys


def reencrypt_mfa_secrets(state: AppState) -> Reencrypted:
    """Reseal the TOTP secrets still under a previous ``MFA_ENCRYPTION_KEY`` (``authgraph mfa
    reencrypt``); see :meth:`auth.mfa.MfaService.reencrypt_secrets`."""
    with state.database() as database:
        return state.service(MfaService, database).reencrypt_secrets()


def migrate(database_url: str) -> None:
    """Upgrade the database schema to the latest revision; needs nothing but the URL."""
    from db.migrate import upgrade  # Alembic is loaded only by the commands that migrate

    upgrade(database_url)


def prune(state: AppState) -> PruneCounts:
    """Delete expired and revoked sessions, spent email tokens and old delivered mail."""
    with state.database() as database:
        counts = state.service(AuthService, database).prune()
        states = state.service(OAuthService, database).prune()
    return dataclasses.replace(counts, oauth_states=states)
