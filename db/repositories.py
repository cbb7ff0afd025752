"""SQLAlchemy implementations of the repositories declared in :mod:`auth.ports`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import make_dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    LABEL_STYLE_TABLENAME_PLUS_COL,
    CursorResult,
    Engine,
    FromClause,
    bindparam,
    delete,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql import Executable

from auth.errors import EmailTaken, ServiceUnavailable
from auth.ports import (
    PASSWORD_ONLY,
    Assurance,
    ClientInfo,
    RefreshTokenRecord,
    SessionRecord,
    UserRecord,
)
from db.email_tokens import SqlEmailTokenRepository
from db.engine import NoAnswer
from db.events import SqlSecurityEventRepository
from db.features import implementation
from db.models import RefreshToken, Session, User, UTCDateTime
from db.outbox import SqlOutbox

R = TypeVar("R")
log = logging.getLogger("authgraph.db")

USER_AGENT_MAX = 512
# One statement, the same on SQLite (3.24+) and PostgreSQL, and free of insert races: it
# writes the probe row whether or not it exists yet (a test or an operator may empty it).
_PROBE_WRITE = text(
    "INSERT INTO health_probe (id, checked_at) VALUES (1, :now) "
    "ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at"
).bindparams(bindparam("now", type_=UTCDateTime()))


def _record_type(name: str, table: FromClause) -> type[Any]:
    """A frozen record with one attribute per column, as the records of auth.ports ask."""
    return make_dataclass(name, [c.key for c in table.columns], frozen=True, slots=True)


_USERS, _SESSIONS = User.__table__, Session.__table__
UserRow = _record_type("UserRow", _USERS)
SessionRow = _record_type("SessionRow", _SESSIONS)
_USER_WIDTH = len(_USERS.columns)

# The session check: the user and their live session in one statement, built once. As
# Core rows it costs about a third of select(User, Session), which loads ORM entities.
FIND_ACTIVE = (
    select(*_USERS.columns, *_SESSIONS.columns)
    .join_from(_USERS, _SESSIONS, _SESSIONS.c.user_id == _USERS.c.id)
    .where(
        _SESSIONS.c.id == bindparam("session_id"),
        _USERS.c.id == bindparam("user_id"),
        _SESSIONS.c.revoked_at.is_(None),
        _SESSIONS.c.expires_at > bindparam("now"),
        # Disabling revokes the sessions too; this also covers one opened in a race.
        _USERS.c.disabled_at.is_(None),
    )
    .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)
)


def active_records(row: Sequence[Any]) -> tuple[UserRecord, SessionRecord]:
    """The user and session records of one ``FIND_ACTIVE`` row."""
    return UserRow(*row[:_USER_WIDTH]), SessionRow(*row[_USER_WIDTH:])


class SqlUserRepository:
    def __init__(self, db: OrmSession) -> None:
        self.db = db

    def get(self, user_id: str) -> User | None:
        return self.db.get(User, user_id)

    def get_by_email(self, email: str) -> User | None:
        return self.db.scalars(select(User).where(User.email == email)).first()

    def add(self, *, email: str, password_hash: str | None, now: datetime) -> User:
        user = User(email=email, password_hash=password_hash, created_at=now)
        self.db.add(user)
        try:
            self.db.flush()
        except IntegrityError:
            # Two signups raced past the existence check: the unique index decides.
            self.db.rollback()
            raise EmailTaken from None
        return user

    def set_password_hash(self, user: UserRecord, password_hash: str) -> None:
        self.db.execute(
            update(User)
            .where(User.id == user.id)
            .values(password_hash=password_hash)
            .execution_options(synchronize_session=False)
        )
        if isinstance(user, User):
            set_committed_value(user, "password_hash", password_hash)

    def hold_credentials(self, user: UserRecord) -> bool:
        # A no-op write rather than SELECT ... FOR UPDATE: it takes the row lock on
        # PostgreSQL and SQLite's write lock alike, and re-checks the version after a wait.
        return self._where_current(user, User.credentials_version)

    def bump_credentials(self, user: UserRecord) -> bool:
        return self._where_current(user, User.credentials_version + 1)

    def is_disabled(self, user_id: str) -> bool:
        # A column read, not the ORM row: the identity map may hold a row read before a wait.
        disabled_at = self.db.scalar(select(User.disabled_at).where(User.id == user_id))
        return disabled_at is not None

    def record_sign_in(self, user_id: str, *, now: datetime) -> None:
        self.db.execute(
            update(User)
            .where(User.id == user_id)
            .values(last_sign_in_at=now)
            .execution_options(synchronize_session=False)
        )

    def _where_current(self, user: UserRecord, version: Any) -> bool:
        result = self.db.execute(
            update(User)
            .where(User.id == user.id, User.credentials_version == user.credentials_version)
            .values(credentials_version=version)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def mark_email_verified(self, user_id: str, *, email: str) -> bool:
        result = self.db.execute(
            update(User).where(User.id == user_id, User.email == email).values(email_verified=True)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def set_email(self, user_id: str, email: str) -> None:
        try:
            self.db.execute(
                update(User).where(User.id == user_id).values(email=email, email_verified=True)
            )
        except IntegrityError:
            # Another account took the address since it was checked: the unique index decides.
            self.db.rollback()
            raise EmailTaken from None

    def set_display_name(self, user_id: str, display_name: str | None) -> None:
        self.db.execute(update(User).where(User.id == user_id).values(display_name=display_name))

    def delete(self, user_id: str) -> bool:
        # Sessions, refresh tokens and email tokens go by ON DELETE CASCADE.
        result = self.db.execute(delete(User).where(User.id == user_id))
        assert isinstance(result, CursorResult)
        return result.rowcount == 1


class SqlSessionRepository:
    def __init__(self, db: OrmSession, reader: Engine | None = None) -> None:
        self.db = db
        self.reader = reader

    def open(
        self,
        *,
        user_id: str,
        now: datetime,
        expires_at: datetime,
        client: ClientInfo,
        assurance: Assurance = PASSWORD_ONLY,
    ) -> Session:
        session = Session(
            user_id=user_id,
            created_at=now,
            last_used_at=now,
            expires_at=expires_at,
            user_agent=_clip(client.user_agent),
            ip_address=client.ip_address,
            aal=assurance.aal,
            amr=" ".join(assurance.amr),
            authenticated_at=now,
        )
        self.db.add(session)
        self.db.flush()
        return session

    def set_assurance(
        self, session: SessionRecord, *, assurance: Assurance, now: datetime
    ) -> Session:
        row = self.db.get_one(Session, session.id)
        row.aal = assurance.aal
        row.amr = " ".join(assurance.amr)
        row.authenticated_at = now
        self.db.add(row)
        self.db.flush()
        return row

    def find_active(
        self, *, session_id: str, user_id: str, now: datetime
    ) -> tuple[UserRecord, SessionRecord] | None:
        # Every authenticated request runs this: a prebuilt Core statement, no ORM loading.
        params = {"session_id": session_id, "user_id": user_id, "now": now}
        if self.reader is None:
            row = self.db.execute(FIND_ACTIVE, params).first()
        else:
            row = _read_once_more_if_dropped(self.reader, FIND_ACTIVE, params)
        if row is None:
            return None
        return active_records(row)

    def list_active(self, *, user_id: str, now: datetime) -> Sequence[Session]:
        return self.db.scalars(
            select(Session)
            .where(
                Session.user_id == user_id,
                Session.revoked_at.is_(None),
                Session.expires_at > now,
            )
            .order_by(Session.last_used_at.desc())
        ).all()

    def touch(
        self, session: SessionRecord, *, now: datetime, expires_at: datetime, client: ClientInfo
    ) -> None:
        row = session if isinstance(session, Session) else self.db.get_one(Session, session.id)
        row.last_used_at = now
        row.expires_at = expires_at
        if client.user_agent is not None:
            row.user_agent = _clip(client.user_agent)
        if client.ip_address is not None:
            row.ip_address = client.ip_address
        self.db.add(row)
        self.db.flush()

    def revoke(
        self,
        *,
        user_id: str,
        now: datetime,
        reason: str,
        only: str | None = None,
        keep: str | None = None,
        below_aal: int | None = None,
    ) -> int:
        statement = (
            update(Session)
            .where(Session.user_id == user_id, Session.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .execution_options(synchronize_session=False)
        )
        if only is not None:
            statement = statement.where(Session.id == only)
        if keep is not None:
            statement = statement.where(Session.id != keep)
        if below_aal is not None:
            statement = statement.where(Session.aal < below_aal)
        result = self.db.execute(statement)
        assert isinstance(result, CursorResult)
        return result.rowcount

    def prune(self, *, now: datetime, revoked_before: datetime) -> int:
        result = self.db.execute(
            delete(Session)
            .where(or_(Session.expires_at <= now, Session.revoked_at <= revoked_before))
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount

    def add_refresh_token(
        self, *, session_id: str, token_hash: str, now: datetime, expires_at: datetime
    ) -> RefreshToken:
        token = RefreshToken(
            session_id=session_id, token_hash=token_hash, created_at=now, expires_at=expires_at
        )
        self.db.add(token)
        self.db.flush()
        return token

    def find_refresh_token(self, token_hash: str) -> tuple[RefreshToken, Session] | None:
        row = self.db.execute(
            select(RefreshToken, Session)
            .join(Session, Session.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == token_hash)
        ).first()
        return None if row is None else (row[0], row[1])

    def claim_refresh_token(self, token: RefreshTokenRecord, *, now: datetime) -> bool:
        # Compare-and-set: of two concurrent refreshes exactly one sees rowcount 1.
        result = self.db.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        claimed = result.rowcount == 1
        if isinstance(token, RefreshToken):
            # Reload: on a lost race, the winner's used_at decides the grace window.
            self.db.refresh(token, ["used_at"])
        return claimed

    def drop_refresh_tokens(self, *, session_id: str) -> None:
        self.db.execute(
            delete(RefreshToken)
            .where(RefreshToken.session_id == session_id)
            .execution_options(synchronize_session=False)
        )


class SqlUnitOfWork:
    """One ORM session wrapped as the domain's :class:`auth.ports.UnitOfWork`.

    ``reader``, when given, is the engine of :func:`db.engine.create_reader_engine`: the
    per-request session check runs there, outside the session's transaction.
    """

    def __init__(self, db: OrmSession, reader: Engine | None = None) -> None:
        self.db = db
        self.users = SqlUserRepository(db)
        self.sessions = SqlSessionRepository(db, reader)
        self.email_tokens = SqlEmailTokenRepository(db)
        self.outbox = SqlOutbox(db)
        self.events = SqlSecurityEventRepository(db)
        self._repositories: dict[type[Any], Any] = {}

    def repository(self, port: type[R]) -> R:
        found = self._repositories.get(port)
        if found is None:
            found = self._repositories[port] = implementation(port)(self.db)
        return cast(R, found)

    def commit(self) -> None:
        self.db.commit()

    def rollback(self) -> None:
        self.db.rollback()

    def ping(self) -> bool:
        try:
            self.db.execute(text("SELECT 1"))
        except Exception:
            return False
        finally:
            self.db.rollback()
        return True

    def probe_write(self, *, now: datetime) -> bool:
        try:
            self.db.execute(_PROBE_WRITE, {"now": now})
            # The commit is the point: a full disk (SQLite's WAL, PostgreSQL's WAL flush)
            # fails there, and a rolled-back write may never have touched the disk at all.
            self.db.commit()
        except Exception as exc:
            self.db.rollback()
            cause = exc.orig if isinstance(exc, DBAPIError) else exc
            log.warning("database write probe failed: %s: %s", type(cause).__name__, cause)
            return False
        return True

    def close(self) -> None:
        self.db.close()


def _read_once_more_if_dropped(
    engine: Engine, statement: Executable, params: dict[str, Any]
) -> Row[Any] | None:
    """Run one read-only statement; retry once if the server had dropped the connection.

    The reader engine skips the pool's pre-ping (a round trip per request), so a
    connection the server closed (a restart, a failover) is found by this read instead.
    SQLAlchemy then invalidates the pool, and a read is always safe to run again. A server
    that did not answer at all is not asked twice: the caller has waited long enough.
    """
    for attempt in (1, 2):
        with engine.connect() as connection:
            try:
                return connection.execute(statement, params).first()
            except ServiceUnavailable as exc:
                dropped = connection.invalidated and not isinstance(exc.__cause__, NoAnswer)
                if attempt == 2 or not dropped:
                    raise
    raise AssertionError("unreachable")


def _clip(user_agent: str | None) -> str | None:
    return None if user_agent is None else user_agent[:USER_AGENT_MAX]
