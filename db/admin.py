"""The roles table and the SQL side of :class:`auth.admin.AdminRepository`.

Account state (``disabled_at``, ``disabled_reason``, ``last_sign_in_at``) lives on the users
table (db/models.py), where the per-request session check reads it in its one statement.
Reads here are Core rows, never ORM entities: after an update in the same transaction they
are what the database holds, not what the identity map remembers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import make_dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CursorResult,
    ForeignKey,
    String,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm import Session as OrmSession

from auth.admin import ADMIN, AdminActionRecord, AdminRepository, AdminUserRecord
from auth.events import EventKind
from auth.ports import SessionRecord
from db.events import SecurityEvent
from db.features import implements
from db.mfa import MfaFactor
from db.models import Base, Session, User, UTCDateTime


class UserRole(Base):
    """One role of one user (``admin``); a user without rows is an ordinary user."""

    __tablename__ = "user_roles"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AdminAudit(Base):
    """What an ``ADMIN_ACTION`` event of the trail (db/events.py) cannot hold: the free-text
    reason, the CLI's operator and the admin's IP, kept out of the user's own trail. Goes
    with its event (retention), never otherwise: no API removes either."""

    __tablename__ = "admin_audit"

    event_id: Mapped[str] = mapped_column(
        ForeignKey("security_events.id", ondelete="CASCADE"), primary_key=True
    )
    operator: Mapped[str | None] = mapped_column(String(64))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(500))


_ACTION_COLUMNS = (
    SecurityEvent.id,
    SecurityEvent.user_id,
    SecurityEvent.occurred_at,
    SecurityEvent.detail.label("action"),
    SecurityEvent.actor_id,
    AdminAudit.operator,
    AdminAudit.ip_address,
    AdminAudit.reason,
)
AdminActionRow = make_dataclass(
    "AdminActionRow",
    ["id", "user_id", "occurred_at", "action", "actor_id", "operator", "ip_address", "reason"],
    frozen=True,
    slots=True,
)

_ADMIN_COLUMNS = (
    User.id,
    User.email,
    User.email_verified,
    User.created_at,
    User.disabled_at,
    User.disabled_reason,
    User.last_sign_in_at,
)
AdminUserRow = make_dataclass(
    "AdminUserRow", [c.key for c in _ADMIN_COLUMNS], frozen=True, slots=True
)
_SESSION_COLUMNS = list(Session.__table__.columns)
SessionRow = make_dataclass(
    "AdminSessionRow", [c.key for c in _SESSION_COLUMNS], frozen=True, slots=True
)


def _like_prefix(text: str) -> str:
    """``text`` as a LIKE pattern matching it as a prefix (its wildcards taken literally)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


@implements(AdminRepository)
class SqlAdminRepository:
    def __init__(self, db: OrmSession) -> None:
        self.db = db

    def get(self, user_id: str) -> AdminUserRecord | None:
        return self._one(User.id == user_id)

    def get_by_email(self, email: str) -> AdminUserRecord | None:
        return self._one(User.email == email)

    def _one(self, condition: Any) -> AdminUserRecord | None:
        row = self.db.execute(select(*_ADMIN_COLUMNS).where(condition)).first()
        return None if row is None else AdminUserRow(*row)

    def page(
        self,
        *,
        limit: int,
        after: tuple[datetime, str] | None,
        search: str | None,
        disabled: bool | None,
    ) -> Sequence[AdminUserRecord]:
        statement = select(*_ADMIN_COLUMNS)
        if search is not None:
            statement = statement.where(
                or_(User.email.like(_like_prefix(search), escape="\\"), User.id == search)
            )
        if disabled is not None:
            statement = statement.where(
                User.disabled_at.is_not(None) if disabled else User.disabled_at.is_(None)
            )
        if after is not None:
            created_at, user_id = after
            statement = statement.where(
                or_(
                    User.created_at < created_at,
                    and_(User.created_at == created_at, User.id < user_id),
                )
            )
        statement = statement.order_by(User.created_at.desc(), User.id.desc()).limit(limit)
        return [AdminUserRow(*row) for row in self.db.execute(statement)]

    def roles(self, user_ids: Sequence[str]) -> Mapping[str, frozenset[str]]:
        found: dict[str, set[str]] = {}
        rows = self.db.execute(
            select(UserRole.user_id, UserRole.role).where(UserRole.user_id.in_(user_ids))
        )
        for user_id, role in rows:
            found.setdefault(user_id, set()).add(role)
        return {user_id: frozenset(roles) for user_id, roles in found.items()}

    def with_mfa(self, user_ids: Sequence[str]) -> set[str]:
        rows = self.db.scalars(
            select(MfaFactor.user_id)
            .where(MfaFactor.user_id.in_(user_ids), MfaFactor.confirmed_at.is_not(None))
            .distinct()
        )
        return set(rows)

    def live_sessions(
        self, user_ids: Sequence[str], *, now: datetime
    ) -> Mapping[str, Sequence[SessionRecord]]:
        found: dict[str, list[SessionRecord]] = {}
        rows = self.db.execute(
            select(*_SESSION_COLUMNS)
            .where(
                Session.user_id.in_(user_ids),
                Session.revoked_at.is_(None),
                Session.expires_at > now,
            )
            .order_by(Session.last_used_at.desc())
        )
        for row in rows:
            session = SessionRow(*row)
            found.setdefault(session.user_id, []).append(session)
        return found

    def set_disabled(self, user_id: str, *, now: datetime, reason: str | None) -> bool:
        if reason is None:
            values: dict[str, Any] = {"disabled_at": None, "disabled_reason": None}
        else:
            # Disabling again keeps the first time: "since when" stays true.
            values = {
                "disabled_at": func.coalesce(User.disabled_at, now),
                "disabled_reason": reason,
            }
        result = self.db.execute(
            update(User)
            .where(User.id == user_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def grant(self, user_id: str, role: str, *, now: datetime) -> bool:
        if self.db.scalar(
            select(exists().where(UserRole.user_id == user_id, UserRole.role == role))
        ):
            return False
        try:
            with self.db.begin_nested():
                self.db.execute(insert(UserRole).values(user_id=user_id, role=role, granted_at=now))
        except IntegrityError:
            return False  # granted by a concurrent call: the role is there either way
        return True

    def revoke(self, user_id: str, role: str) -> bool:
        result = self.db.execute(
            delete(UserRole)
            .where(UserRole.user_id == user_id, UserRole.role == role)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def annotate(
        self,
        event_ids: Sequence[str],
        *,
        reason: str | None,
        operator: str | None,
        ip_address: str | None,
    ) -> None:
        if event_ids:
            note = {"operator": operator, "ip_address": ip_address, "reason": reason}
            self.db.execute(insert(AdminAudit), [{"event_id": e, **note} for e in event_ids])

    def actions(self, user_id: str, *, limit: int) -> Sequence[AdminActionRecord]:
        rows = self.db.execute(
            select(*_ACTION_COLUMNS)
            .outerjoin(AdminAudit, AdminAudit.event_id == SecurityEvent.id)
            .where(
                SecurityEvent.user_id == user_id,
                SecurityEvent.kind == EventKind.ADMIN_ACTION.value,
            )
            .order_by(SecurityEvent.occurred_at.desc(), SecurityEvent.id.desc())
            .limit(limit)
        )
        return [AdminActionRow(*row) for row in rows]

    def hold_admins(self) -> None:
        # A no-op write rather than SELECT ... FOR UPDATE (as UserRepository.hold_credentials):
        # it locks the rows on PostgreSQL and takes SQLite's write lock alike.
        self.db.execute(
            update(UserRole)
            .where(UserRole.role == ADMIN)
            .values(role=UserRole.role)
            .execution_options(synchronize_session=False)
        )

    def active_admins(self, *, excluding: str) -> int:
        count = self.db.scalar(
            select(func.count())
            .select_from(UserRole)
            .join(User, User.id == UserRole.user_id)
            .where(
                UserRole.role == ADMIN,
                UserRole.user_id != excluding,
                User.disabled_at.is_(None),
            )
        )
        return int(count or 0)
