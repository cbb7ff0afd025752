"""Signing keys in the database (:class:`auth.ports.SigningKeyStore`): one transaction a call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession

from auth.ports import NewKey, SigningKeyRecord
from db.engine import transaction
from db.models import SigningKey


class _Refused(Exception):
    pass


class SqlSigningKeyStore:
    """Keys read and changed in short transactions of their own, outside any request's."""

    def __init__(self, session_factory: Callable[[], OrmSession]) -> None:
        self.session_factory = session_factory

    def _transaction(self) -> AbstractContextManager[OrmSession]:
        return transaction(self.session_factory)

    def all(self) -> Sequence[SigningKeyRecord]:
        with self._transaction() as db:
            rows = db.scalars(select(SigningKey).order_by(SigningKey.created_at)).all()
            db.expunge_all()
            return list(rows)

    def add(self, key: NewKey, *, state: str, now: datetime) -> bool:
        try:
            with self._transaction() as db:
                db.add(
                    SigningKey(
                        kid=key.kid,
                        algorithm=key.algorithm,
                        public_jwk=key.public_jwk,
                        private_key=key.private_key,
                        state=state,
                        created_at=now,
                        activated_at=now if state == "current" else None,
                    )
                )
        except IntegrityError:
            # The one-current index: another process made its first key current first.
            return False
        return True

    def activate(self, kid: str, *, now: datetime, retired_until: datetime) -> bool:
        try:
            with self._transaction() as db:
                # Retire first: the unique index allows one current row at every moment.
                db.execute(
                    update(SigningKey)
                    .where(SigningKey.state == "current")
                    .values(state="retired", retired_at=now, published_until=retired_until)
                )
                result = db.execute(
                    update(SigningKey)
                    .where(SigningKey.kid == kid, SigningKey.state == "standby")
                    .values(state="current", activated_at=now)
                )
                assert isinstance(result, CursorResult)
                if result.rowcount != 1:
                    raise _Refused  # leaving the block rolls the retirement back
        except (_Refused, IntegrityError):
            return False
        return True

    def replace_private_key(self, kid: str, *, old: str, new: str) -> bool:
        # Compare-and-set on the ciphertext read: PostgreSQL re-checks the WHERE after a
        # concurrent writer's row lock, SQLite serialises writers; a rewrite is never lost.
        with self._transaction() as db:
            result = db.execute(
                update(SigningKey)
                .where(SigningKey.kid == kid, SigningKey.private_key == old)
                .values(private_key=new)
                .execution_options(synchronize_session=False)
            )
            assert isinstance(result, CursorResult)
            return result.rowcount == 1

    def retire(self, kid: str, *, now: datetime) -> bool:
        with self._transaction() as db:
            key = db.get(SigningKey, kid, with_for_update=True)
            if key is None or key.state == "current":
                return False
            key.state = "retired"
            key.retired_at = key.retired_at or now
            key.published_until = None
        return True
