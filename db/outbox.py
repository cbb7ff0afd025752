"""The mail outbox: written inside use-case transactions, drained by the background sender."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.orm import Session as OrmSession

from auth.ports import OutgoingMail, OutgoingWebhook
from db.engine import transaction
from db.models import OutboxMessage

MAX_ERROR_LENGTH = 1000
MAIL = "mail"
WEBHOOK = "webhook"


class SqlOutbox:
    """The write side, in the caller's transaction (:class:`auth.ports.Outbox`)."""

    def __init__(self, db: OrmSession) -> None:
        self.db = db

    def enqueue(self, mail: OutgoingMail, *, now: datetime) -> None:
        self.db.add(
            OutboxMessage(
                recipient=mail.recipient,
                subject=mail.subject,
                body_text=mail.text,
                body_html=mail.html,
                created_at=now,
                attempts=0,
                next_attempt_at=now,
            )
        )
        self.db.flush()

    def enqueue_webhook(self, webhook: OutgoingWebhook, *, now: datetime) -> None:
        self.db.add(
            OutboxMessage(
                id=webhook.id,
                channel=WEBHOOK,
                recipient="",
                subject=webhook.type,
                body_text=webhook.body,
                body_html="",
                created_at=now,
                attempts=0,
                next_attempt_at=now,
            )
        )
        self.db.flush()

    def prune(self, *, sent_before: datetime, failed_before: datetime) -> int:
        result = self.db.execute(
            delete(OutboxMessage)
            .where(
                or_(OutboxMessage.sent_at < sent_before, OutboxMessage.failed_at < failed_before)
            )
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount


class SqlOutboxStore:
    """The sender's side (:class:`auth.ports.OutboxStore`): each call is one short transaction."""

    def __init__(self, session_factory: Callable[[], OrmSession], channel: str = MAIL) -> None:
        self.session_factory = session_factory
        # Each sender drains one channel: mail through SMTP, webhooks through HTTP.
        self.channel = channel

    def _transaction(self) -> AbstractContextManager[OrmSession]:
        return transaction(self.session_factory)

    def claim_due(
        self, *, now: datetime, lease_until: datetime, claim_id: str, limit: int
    ) -> Sequence[OutboxMessage]:
        with self._transaction() as db:
            candidates = db.scalars(
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.channel == self.channel,
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.failed_at.is_(None),
                    OutboxMessage.next_attempt_at <= now,
                )
                .order_by(OutboxMessage.next_attempt_at)
                .limit(limit)
            ).all()
            claimed: list[str] = []
            for message_id in candidates:
                # Compare-and-set: a sender that claimed the row first moved next_attempt_at
                # past now, so this update matches nothing (PostgreSQL re-checks the condition
                # after waiting for that sender's row lock; SQLite serialises writers).
                result = db.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.id == message_id,
                        OutboxMessage.next_attempt_at <= now,
                        OutboxMessage.sent_at.is_(None),
                        OutboxMessage.failed_at.is_(None),
                    )
                    .values(
                        next_attempt_at=lease_until,
                        claim_id=claim_id,
                        attempts=OutboxMessage.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
                assert isinstance(result, CursorResult)
                if result.rowcount == 1:
                    claimed.append(message_id)
            if not claimed:
                return []
            rows = db.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.id.in_(claimed))
                .order_by(OutboxMessage.created_at)
            ).all()
            db.expunge_all()
            return rows

    def extend_lease(
        self, message_ids: Sequence[str], *, claim_id: str, lease_until: datetime
    ) -> set[str]:
        if not message_ids:
            return set()
        with self._transaction() as db:
            # Guarded by the claim: a lease another sender took over stays theirs.
            held = db.scalars(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(message_ids),
                    OutboxMessage.claim_id == claim_id,
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.failed_at.is_(None),
                )
                .values(next_attempt_at=lease_until)
                .returning(OutboxMessage.id)
                .execution_options(synchronize_session=False)
            ).all()
            return set(held)

    def mark_sent(self, message_id: str, *, claim_id: str, now: datetime) -> None:
        self._finish(message_id, claim_id, sent_at=now, claim_id=None, last_error=None)

    def mark_retry(
        self, message_id: str, *, claim_id: str, next_attempt_at: datetime, error: str
    ) -> None:
        self._finish(
            message_id,
            claim_id,
            next_attempt_at=next_attempt_at,
            claim_id=None,
            last_error=error[:MAX_ERROR_LENGTH],
        )

    def mark_failed(self, message_id: str, *, claim_id: str, now: datetime, error: str) -> None:
        self._finish(
            message_id, claim_id, failed_at=now, claim_id=None, last_error=error[:MAX_ERROR_LENGTH]
        )

    def _finish(self, message_id: str, owner: str, **values: object) -> None:
        with self._transaction() as db:
            # Only the lease holder records the outcome: a sender whose lease ran out and was
            # taken over must not overwrite what the new holder does.
            db.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, OutboxMessage.claim_id == owner)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
