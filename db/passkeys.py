"""The passkey tables and their repository: the SQL side of auth.ports.PasskeyRepository."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CursorResult,
    ForeignKey,
    Integer,
    String,
    Text,
    delete,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm import Session as OrmSession

from auth.ports import PasskeyRecord, PasskeyRepository
from db.features import implements
from db.models import Base, UTCDateTime, new_id


class Passkey(Base):
    """A WebAuthn credential: its ID and public key (nothing secret is stored)."""

    __tablename__ = "passkeys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # base64url; unique across accounts: a credential belongs to one account.
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    # The COSE public key, base64url.
    public_key: Mapped[str] = mapped_column(Text)
    sign_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    transports: Mapped[str] = mapped_column(String(128), default="", server_default="")
    name: Mapped[str] = mapped_column(String(100))
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Backup eligible: a synced passkey (RFC 8176 swk) rather than a device-bound key (hwk).
    multi_device: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Assertions refused because the signature counter did not grow (a cloned key?).
    counter_regressions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_regression_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PasskeyCeremony(Base):
    """A started registration or login: its challenge, single use, for 5 minutes."""

    __tablename__ = "passkey_ceremonies"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    # Registration: the user adding the passkey.
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # A login started with an address: only that account's passkeys answer it.
    email: Mapped[str | None] = mapped_column(String(254))
    # base64url of the random challenge; unique, so an assertion finds its ceremony.
    challenge: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@implements(PasskeyRepository)
class SqlPasskeyRepository:
    def __init__(self, db: OrmSession) -> None:
        self.db = db

    def add(
        self,
        *,
        user_id: str,
        credential_id: str,
        public_key: str,
        sign_count: int,
        transports: str,
        name: str,
        backed_up: bool,
        multi_device: bool,
        now: datetime,
    ) -> Passkey | None:
        passkey = Passkey(
            user_id=user_id,
            credential_id=credential_id,
            public_key=public_key,
            sign_count=sign_count,
            transports=transports,
            name=name,
            backed_up=backed_up,
            multi_device=multi_device,
            created_at=now,
        )
        try:
            with self.db.begin_nested():
                self.db.add(passkey)
                self.db.flush()
        except IntegrityError:
            return None  # the unique credential ID decides, also against a racing request
        return passkey

    def for_user(self, user_id: str) -> Sequence[Passkey]:
        return self.db.scalars(
            select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at)
        ).all()

    def count(self, user_id: str) -> int:
        found = self.db.scalar(
            select(func.count()).select_from(Passkey).where(Passkey.user_id == user_id)
        )
        return int(found or 0)

    def by_credential_id(self, credential_id: str) -> Passkey | None:
        return self.db.scalars(
            select(Passkey).where(Passkey.credential_id == credential_id)
        ).first()

    def record_use(
        self, passkey: PasskeyRecord, *, sign_count: int, backed_up: bool, now: datetime
    ) -> bool:
        # Compare-and-set on the counter read: of two assertions racing, one moves it.
        result = self.db.execute(
            update(Passkey)
            .where(Passkey.id == passkey.id, Passkey.sign_count == passkey.sign_count)
            .values(sign_count=sign_count, backed_up=backed_up, last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def record_counter_regression(self, passkey_id: str, *, now: datetime) -> None:
        self.db.execute(
            update(Passkey)
            .where(Passkey.id == passkey_id)
            .values(counter_regressions=Passkey.counter_regressions + 1, last_regression_at=now)
            .execution_options(synchronize_session=False)
        )

    def rename(self, passkey_id: str, *, user_id: str, name: str) -> Passkey | None:
        passkey = self.db.scalars(
            select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user_id)
        ).first()
        if passkey is None:
            return None
        passkey.name = name
        self.db.flush()
        return passkey

    def delete(self, passkey_id: str, *, user_id: str) -> bool:
        result = self.db.execute(
            delete(Passkey)
            .where(Passkey.id == passkey_id, Passkey.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def add_ceremony(
        self,
        *,
        kind: str,
        user_id: str | None,
        email: str | None,
        challenge: str,
        name: str | None,
        now: datetime,
        expires_at: datetime,
    ) -> PasskeyCeremony:
        ceremony = PasskeyCeremony(
            kind=kind,
            user_id=user_id,
            email=email,
            challenge=challenge,
            name=name,
            created_at=now,
            expires_at=expires_at,
        )
        self.db.add(ceremony)
        self.db.flush()
        return ceremony

    def claim_ceremony(
        self,
        *,
        kind: str,
        now: datetime,
        ceremony_id: str | None = None,
        challenge: str | None = None,
    ) -> PasskeyCeremony | None:
        query = select(PasskeyCeremony).where(PasskeyCeremony.kind == kind)
        if ceremony_id is not None:
            query = query.where(PasskeyCeremony.id == ceremony_id)
        elif challenge is not None:
            query = query.where(PasskeyCeremony.challenge == challenge)
        else:
            return None
        ceremony = self.db.scalars(query).first()
        if ceremony is None or ceremony.expires_at <= now:
            return None
        # Compare-and-set: of two requests with one ceremony exactly one spends it.
        result = self.db.execute(
            update(PasskeyCeremony)
            .where(PasskeyCeremony.id == ceremony.id, PasskeyCeremony.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return ceremony if result.rowcount == 1 else None

    def prune_ceremonies(self, *, now: datetime) -> int:
        result = self.db.execute(
            delete(PasskeyCeremony)
            .where(or_(PasskeyCeremony.expires_at <= now, PasskeyCeremony.used_at.is_not(None)))
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount
