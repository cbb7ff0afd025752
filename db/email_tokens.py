"""SQLAlchemy implementation of :class:`auth.ports.EmailTokenRepository`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.orm import Session as OrmSession

from auth.ports import EmailTokenPurpose, EmailTokenRecord
from db.models import EmailToken


class SqlEmailTokenRepository:
    def __init__(self, db: OrmSession) -> None:
        self.db = db

    def add(
        self,
        *,
        user_id: str,
        purpose: EmailTokenPurpose,
        token_hash: str,
        email: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        self.db.add(
            EmailToken(
                user_id=user_id,
                purpose=purpose,
                token_hash=token_hash,
                email=email,
                created_at=now,
                expires_at=expires_at,
            )
        )
        self.db.flush()

    def find(self, token_hash: str) -> EmailToken | None:
        return self.db.scalars(
            select(EmailToken).where(EmailToken.token_hash == token_hash)
        ).first()

    def claim(self, token: EmailTokenRecord, *, now: datetime) -> bool:
        # Compare-and-set: of two concurrent redemptions exactly one sees rowcount 1.
        result = self.db.execute(
            update(EmailToken)
            .where(EmailToken.id == token.id, EmailToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def prune(self, *, now: datetime) -> int:
        result = self.db.execute(
            delete(EmailToken)
            .where(or_(EmailToken.used_at.is_not(None), EmailToken.expires_at <= now))
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount

    def drop(self, *, user_id: str, purpose: EmailTokenPurpose) -> None:
        self.db.execute(
            delete(EmailToken)
            .where(EmailToken.user_id == user_id, EmailToken.purpose == purpose)
            .execution_options(synchronize_session=False)
        )
