"""The security events table and its repository (:class:`auth.events.SecurityEventRepository`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    CursorResult,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    and_,
    delete,
    exists,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm import Session as OrmSession

from auth.events import DETAIL_MAX, DEVICE_MAX, NewSecurityEvent
from db.models import Base, UTCDateTime, new_id


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
