"""The sign-in code table and its repository, the SQL side of
:class:`auth.sign_in_codes.SignInCodeRepository`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CursorResult, ForeignKey, Integer, String, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm import Session as OrmSession

from auth.sign_in_codes import SignInCodeRepository
from db.features import implements
from db.models import Base, UTCDateTime, new_id


class SignInCode(Base):
    """A mailed one-time sign-in code, stored only as a hash; one per user."""

    __tablename__ = "sign_in_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # Unique: a new code replaces the last one, so a user never has two to guess at.
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    # The address it was mailed to: it is that address the code proves.
    email: Mapped[str] = mapped_column(String(254))
    # HMAC-SHA256 of "user_id:code" (auth.sign_in_codes.code_hash).
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@implements(SignInCodeRepository)
class SqlSignInCodeRepository:
    def __init__(self, db: OrmSession) -> None:
        self.db = db

    def replace(
        self, *, user_id: str, email: str, code_hash: str, now: datetime, expires_at: datetime
    ) -> None:
        self.db.execute(
            delete(SignInCode)
            .where(SignInCode.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        self.db.add(
            SignInCode(
                user_id=user_id,
                email=email,
                code_hash=code_hash,
                created_at=now,
                expires_at=expires_at,
            )
        )
        self.db.flush()

    def live(self, user_id: str, *, now: datetime) -> SignInCode | None:
        return self.db.scalars(
            select(SignInCode).where(
                SignInCode.user_id == user_id,
                SignInCode.used_at.is_(None),
                SignInCode.expires_at > now,
            )
        ).first()

    def count_failure(self, code_id: str) -> None:
        # Incremented in SQL: concurrent wrong tries each count.
        self.db.execute(
            update(SignInCode)
            .where(SignInCode.id == code_id)
            .values(failed_attempts=SignInCode.failed_attempts + 1)
            .execution_options(synchronize_session=False)
        )

    def claim(self, code_id: str, *, now: datetime, max_failures: int) -> bool:
        result = self.db.execute(
            update(SignInCode)
            .where(
                SignInCode.id == code_id,
                SignInCode.used_at.is_(None),
                SignInCode.failed_attempts < max_failures,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def drop(self, *, user_id: str) -> None:
        self.db.execute(
            delete(SignInCode)
            .where(SignInCode.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
