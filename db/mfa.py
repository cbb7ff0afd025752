"""The MFA tables and their repository, the SQL side of :class:`auth.ports.MfaRepository`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import CursorResult, ForeignKey, Integer, String, delete, func, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm import Session as OrmSession

from auth.ports import MfaFactorRecord, MfaRepository
from db.features import implements
from db.models import Base, UTCDateTime, new_id


class MfaFactor(Base):
    """A second factor: a TOTP secret, pending until a correct code confirms it."""

    __tablename__ = "mfa_factors"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # AES-GCM under MFA_ENCRYPTION_KEY (auth.totp.SecretBox); never the base32 secret.
    secret_sealed: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last accepted TOTP time step, claimed by compare-and-set: a code works once.
    last_step: Mapped[int | None] = mapped_column(Integer)


class RecoveryCode(Base):
    """A single-use recovery code, stored only as a hash."""

    __tablename__ = "recovery_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MfaChallenge(Base):
    """The pending second step of a login (the ``mfaToken``), stored only as a hash."""

    __tablename__ = "mfa_challenges"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The password proof it carries holds only while the credentials are unchanged.
    credentials_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # RFC 8176 method of the first step ("pwd", "fed"): the session's amr after verifyMfa.
    first_factor: Mapped[str] = mapped_column(String(16), default="pwd", server_default="pwd")


@implements(MfaRepository)
class SqlMfaRepository:
    def __init__(self, db: OrmSession) -> None:
        self.db = db

    def add_factor(
        self, *, user_id: str, kind: str, secret_sealed: str, now: datetime
    ) -> MfaFactor:
        factor = MfaFactor(user_id=user_id, kind=kind, secret_sealed=secret_sealed, created_at=now)
        self.db.add(factor)
        self.db.flush()
        return factor

    def drop_pending(self, *, user_id: str) -> None:
        self.db.execute(
            delete(MfaFactor)
            .where(MfaFactor.user_id == user_id, MfaFactor.confirmed_at.is_(None))
            .execution_options(synchronize_session=False)
        )

    def factors(self, user_id: str) -> Sequence[MfaFactor]:
        return self.db.scalars(
            select(MfaFactor)
            .where(MfaFactor.user_id == user_id, MfaFactor.confirmed_at.is_not(None))
            .order_by(MfaFactor.created_at)
        ).all()

    def get_factor(self, factor_id: str, *, user_id: str) -> MfaFactor | None:
        return self.db.scalars(
            select(MfaFactor).where(MfaFactor.id == factor_id, MfaFactor.user_id == user_id)
        ).first()

    def claim_step(self, factor: MfaFactorRecord, *, step: int, now: datetime) -> bool:
        # Compare-and-set: PostgreSQL re-checks the WHERE after waiting for a concurrent
        # claim's row lock, SQLite serialises writers; either way one request wins a step.
        result = self.db.execute(
            update(MfaFactor)
            .where(
                MfaFactor.id == factor.id,
                or_(MfaFactor.last_step.is_(None), MfaFactor.last_step < step),
            )
            .values(last_step=step, last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def all_factors(self) -> Sequence[MfaFactor]:
        return self.db.scalars(select(MfaFactor).order_by(MfaFactor.created_at)).all()

    def replace_secret(self, factor_id: str, *, old: str, new: str) -> bool:
        # Compare-and-set on the sealed secret read (as claim_step): a rewrite is never lost.
        result = self.db.execute(
            update(MfaFactor)
            .where(MfaFactor.id == factor_id, MfaFactor.secret_sealed == old)
            .values(secret_sealed=new)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def confirm_factor(self, factor_id: str, *, now: datetime) -> bool:
        result = self.db.execute(
            update(MfaFactor)
            .where(MfaFactor.id == factor_id, MfaFactor.confirmed_at.is_(None))
            .values(confirmed_at=now)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def delete_factor(self, factor_id: str, *, user_id: str) -> bool:
        result = self.db.execute(
            delete(MfaFactor)
            .where(MfaFactor.id == factor_id, MfaFactor.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def replace_recovery_codes(
        self, *, user_id: str, code_hashes: Sequence[str], now: datetime
    ) -> None:
        self.db.execute(
            delete(RecoveryCode)
            .where(RecoveryCode.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        self.db.add_all(
            RecoveryCode(user_id=user_id, code_hash=h, created_at=now) for h in code_hashes
        )
        self.db.flush()

    def claim_recovery_code(self, *, user_id: str, code_hash: str, now: datetime) -> bool:
        result = self.db.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        # Codes are random enough never to repeat within one user's ten.
        return result.rowcount >= 1

    def recovery_codes_left(self, user_id: str) -> int:
        count = self.db.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        return int(count or 0)

    def add_challenge(
        self,
        *,
        user_id: str,
        token_hash: str,
        credentials_version: int,
        now: datetime,
        expires_at: datetime,
        first_factor: str = "pwd",
    ) -> None:
        self.db.add(
            MfaChallenge(
                user_id=user_id,
                token_hash=token_hash,
                credentials_version=credentials_version,
                created_at=now,
                expires_at=expires_at,
                first_factor=first_factor,
            )
        )
        self.db.flush()

    def find_challenge(self, token_hash: str) -> MfaChallenge | None:
        return self.db.scalars(
            select(MfaChallenge).where(MfaChallenge.token_hash == token_hash)
        ).first()

    def count_failure(self, challenge_id: str) -> None:
        # Incremented in SQL: concurrent wrong codes each count.
        self.db.execute(
            update(MfaChallenge)
            .where(MfaChallenge.id == challenge_id)
            .values(failed_attempts=MfaChallenge.failed_attempts + 1)
            .execution_options(synchronize_session=False)
        )

    def claim_challenge(self, challenge_id: str, *, now: datetime, max_failures: int) -> bool:
        result = self.db.execute(
            update(MfaChallenge)
            .where(
                MfaChallenge.id == challenge_id,
                MfaChallenge.used_at.is_(None),
                MfaChallenge.failed_attempts < max_failures,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def prune_challenges(self, *, now: datetime) -> int:
        result = self.db.execute(
            delete(MfaChallenge)
            .where(or_(MfaChallenge.expires_at <= now, MfaChallenge.used_at.is_not(None)))
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount
