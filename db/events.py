"""The security events table and its repository (:class:`auth.events.SecurityEventRepository`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CursorResult,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    and_,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy import event as orm_events
from sqlalchemy.orm import Mapped, mapped_column, sessionmaker
from sqlalchemy.orm import Session as OrmSession

from auth.events import DETAIL_MAX, DEVICE_MAX, NewSecurityEvent
from db.engine import normalize_database_url
from db.models import Base, UTCDateTime, new_id

log = logging.getLogger("authgraph.live")


class SecurityEvent(Base):
    """One entry of the audit trail.

    ``user_id`` has no foreign key on purpose: an account's deletion keeps its events
    (stripped of IP and device), and sessions they name may be pruned long before them.
    """

    __tablename__ = "security_events"
    __table_args__ = (
        # A user's trail, newest first, paged by keyset; and retention by time.
        Index("ix_security_events_user_time", "user_id", "occurred_at", "id"),
        Index("ix_security_events_occurred_at", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    session_id: Mapped[str | None] = mapped_column(String(36))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(DEVICE_MAX))
    detail: Mapped[str | None] = mapped_column(String(DETAIL_MAX))
    # Who acted, when it was not the user (an admin's id).
    actor_id: Mapped[str | None] = mapped_column(String(36))


class KnownDevice(Base):
    """A device (a browser's long-lived ``authgraph_device`` cookie) a user signed in from.

    Only the cookie's SHA-256 is stored; the rows go with the account.
    """

    __tablename__ = "known_devices"
    __table_args__ = (UniqueConstraint("user_id", "device_hash"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    device_hash: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


# The PostgreSQL NOTIFY channel of committed security events (graph.live listens to it).
LIVE_CHANNEL = "authgraph_security_events"
_PENDING = "authgraph_pending_events"


def live_message(row: SecurityEvent) -> dict[str, str | None]:
    """What live subscribers are told of an event: its stored fields, no secret among them."""
    return {
        "id": row.id,
        "user_id": row.user_id,
        "kind": row.kind,
        "occurred_at": row.occurred_at.isoformat(),
        "session_id": row.session_id,
        "ip_address": row.ip_address,
        "device": row.device,
        "detail": row.detail,
    }


def publish_after_commit(
    session_factory: sessionmaker[OrmSession],
    publish: Callable[[dict[str, str | None]], None],
) -> None:
    """Hand each committed event to ``publish`` (not on PostgreSQL, where NOTIFY does it).

    Events of a transaction that rolls back are dropped with it.
    """

    def committed(session: OrmSession) -> None:
        for message in session.info.pop(_PENDING, []):
            publish(message)

    def rolled_back(session: OrmSession, previous_transaction: object = None) -> None:
        session.info.pop(_PENDING, None)

    orm_events.listen(session_factory, "after_commit", committed)
    orm_events.listen(session_factory, "after_soft_rollback", rolled_back)


class SqlSecurityEventRepository:
    def __init__(self, db: OrmSession) -> None:
        self.db = db

    def add(self, event: NewSecurityEvent) -> SecurityEvent:
        row = SecurityEvent(
            user_id=event.user_id,
            kind=event.kind.value,
            occurred_at=event.occurred_at,
            session_id=event.session_id,
            ip_address=event.ip_address,
            device=event.device,
            detail=event.detail,
            actor_id=event.actor_id,
        )
        self.db.add(row)
        self.db.flush()
        message = live_message(row)
        if self.db.get_bind().dialect.name == "postgresql":
            # Delivered to every LISTENing process when (and only if) this transaction commits.
            self.db.execute(
                select(func.pg_notify(LIVE_CHANNEL, json.dumps(message, separators=(",", ":"))))
            )
        else:
            self.db.info.setdefault(_PENDING, []).append(message)
        return row

    def page(
        self, *, user_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> Sequence[SecurityEvent]:
        statement = select(SecurityEvent).where(SecurityEvent.user_id == user_id)
        if after is not None:
            when, event_id = after
            statement = statement.where(
                or_(
                    SecurityEvent.occurred_at < when,
                    and_(SecurityEvent.occurred_at == when, SecurityEvent.id < event_id),
                )
            )
        return self.db.scalars(
            statement.order_by(SecurityEvent.occurred_at.desc(), SecurityEvent.id.desc()).limit(
                limit
            )
        ).all()

    def forget_client(self, *, user_id: str) -> int:
        result = self.db.execute(
            update(SecurityEvent)
            .where(SecurityEvent.user_id == user_id)
            .values(ip_address=None, device=None)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount

    def prune(self, *, before: datetime) -> int:
        result = self.db.execute(
            delete(SecurityEvent)
            .where(SecurityEvent.occurred_at < before)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount

    def remember_device(self, *, user_id: str, device_hash: str, now: datetime) -> bool:
        touched = self.db.execute(
            update(KnownDevice)
            .where(KnownDevice.user_id == user_id, KnownDevice.device_hash == device_hash)
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(touched, CursorResult)
        if touched.rowcount:
            return False
        # Two first sign-ins from one browser at once: the sign-in holds the user's row
        # (hold_credentials) for its transaction, so they do not race here.
        self.db.add(
            KnownDevice(
                user_id=user_id, device_hash=device_hash, first_seen_at=now, last_seen_at=now
            )
        )
        self.db.flush()
        return True

    def knows_devices(self, user_id: str) -> bool:
        return bool(self.db.scalar(select(exists().where(KnownDevice.user_id == user_id))))


def listen_forever(
    database_url: str, on_message: Callable[[dict[str, str | None]], None], stop: Any
) -> None:
    """LISTEN for committed events on PostgreSQL until ``stop`` (a threading.Event) is set.

    Runs on a thread of its own with a connection of its own; reconnects after a failure.
    """
    import psycopg

    url = normalize_database_url(database_url).replace("postgresql+psycopg://", "postgresql://")
    while not stop.is_set():
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
                connection.execute(f"LISTEN {LIVE_CHANNEL}")
                while not stop.is_set():
                    for notice in connection.notifies(timeout=0.5, stop_after=100):
                        on_message(json.loads(notice.payload))
        except Exception as exc:
            log.warning("security-event listener: %s; reconnecting", exc)
            stop.wait(1.0)
