"""Administration: roles, and the use cases that find, disable, sign out and delete users.

Who may administer is decided here (:meth:`AdminService.authorize`): the ``admin`` role and,
while ``ADMIN_REQUIRE_MFA`` is on (the default), a session signed in with a second factor.
The transport checks it before any admin field runs, the CLI (an operator with shell access
to the database) acts without it. Every read of a user and every action is recorded in the
caller's transaction, so a committed action always has its record.

Disabling revokes the user's sessions through the same path as any revocation (their next
request is ``UNAUTHENTICATED``); the sign-ins of :mod:`auth.service` and :mod:`auth.mfa` then
answer :class:`auth.errors.AccountDisabled`, only once the credential was proven right.
The last active administrator can be neither disabled, deleted nor stripped of the role.
Methods are synchronous and run in a worker thread.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from auth import errors
from auth.emails import canonical_email
from auth.events import EventKind, parse_cursor, record_event
from auth.ports import ClientInfo, SessionRecord, UnitOfWork
from auth.service import REVOKED_ACCOUNT_DISABLED, Viewer
from auth.sign_in_codes import SignInCodeRepository
from auth.toolkit import AuthToolkit

ADMIN = "admin"
ROLES = frozenset({ADMIN})
PAGE_DEFAULT = 50
PAGE_MAX = 200
REASON_MAX = 500
# Revocation reason of sessions ended by adminRevokeSessions / `authgraph users sign-out`.
REVOKED_BY_ADMIN = "admin_revoked"


class UserNotFound(errors.AuthError):
    # Also the answer for a malformed id: it reveals nothing.
    message = "No such user."


class LastAdmin(errors.AuthError):
    message = "This is the last active administrator: make another account an administrator first."


class NotAdmin(errors.AuthError):
    """The caller has no admin role. Says nothing about what administration can do."""

    message = "Forbidden."


class AdminMfaRequired(NotAdmin):
    """An administrator whose session has no second factor, while ``ADMIN_REQUIRE_MFA``."""

    message = (
        "Administration needs a session signed in with a second factor: turn on MFA, then "
        "log in again with it (ADMIN_REQUIRE_MFA)."
    )


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs an admin operation: an administrator's session, or the CLI's operator."""

    # The administrator's user id; None for the command line.
    user_id: str | None
    client: ClientInfo
    session_id: str | None = None
    # "cli:<os user>" for the command line.
    label: str | None = None

    @classmethod
    def of(cls, viewer: Viewer, client: ClientInfo) -> Actor:
        return cls(user_id=viewer.user.id, client=client, session_id=viewer.session.id)


class AdminUserRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def email_verified(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def disabled_at(self) -> datetime | None: ...
    @property
    def disabled_reason(self) -> str | None: ...
    @property
    def last_sign_in_at(self) -> datetime | None: ...


class AdminRepository(Protocol):
    """Roles, account state and the user listing, read afresh (never from a cached row)."""

    def get(self, user_id: str) -> AdminUserRecord | None: ...

    def get_by_email(self, email: str) -> AdminUserRecord | None: ...

    def page(
        self,
        *,
        limit: int,
        after: tuple[datetime, str] | None,
        search: str | None,
        disabled: bool | None,
    ) -> Sequence[AdminUserRecord]:
        """Up to ``limit`` users, newest first (ties by id, descending), strictly after the
        ``(created_at, id)`` position ``after``; ``search`` matches an email prefix or the
        whole id; ``disabled`` keeps only disabled (True) or enabled (False) users."""
        ...

    def roles(self, user_ids: Sequence[str]) -> Mapping[str, frozenset[str]]: ...

    def with_mfa(self, user_ids: Sequence[str]) -> set[str]:
        """Those of ``user_ids`` that have a confirmed second factor."""
        ...

    def live_sessions(
        self, user_ids: Sequence[str], *, now: datetime
    ) -> Mapping[str, Sequence[SessionRecord]]:
        """Each user's live sessions, most recently used first."""
        ...

    def set_disabled(self, user_id: str, *, now: datetime, reason: str | None) -> bool:
        """Disable (``reason`` given; an earlier ``disabled_at`` is kept) or enable (None).

        Writes the user's row first: a sign-in holding it is waited for, and one that comes
        later sees the change. Whether the user exists.
        """
        ...

    def grant(self, user_id: str, role: str, *, now: datetime) -> bool:
        """Give the role; whether it was new."""
        ...

    def revoke(self, user_id: str, role: str) -> bool:
        """Take the role away; whether the user had it."""
        ...

    def annotate(
        self,
        event_ids: Sequence[str],
        *,
        reason: str | None,
        operator: str | None,
        ip_address: str | None,
    ) -> None:
        """Keep, beside each of these ``ADMIN_ACTION`` events, what the trail's row cannot."""
        ...

    def actions(self, user_id: str, *, limit: int) -> Sequence[AdminActionRecord]:
        """The user's ``ADMIN_ACTION`` events with their annotations, newest first."""
        ...

    def hold_admins(self) -> None:
        """Lock every admin's role row until the transaction ends: of two transactions that
        each remove a different admin, the second counts after the first has committed."""
        ...

    def active_admins(self, *, excluding: str) -> int:
        """Enabled users with the admin role, other than ``excluding``."""
        ...


class AdminActionRecord(Protocol):
    """One recorded admin read or action: the trail's event and its annotation."""

    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def action(self) -> str: ...
    @property
    def actor_id(self) -> str | None: ...
    @property
    def operator(self) -> str | None: ...
    @property
    def ip_address(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class AdminUserView:
    """A user as administration sees it."""

    user: AdminUserRecord
    roles: frozenset[str]
    mfa_enabled: bool
    sessions: Sequence[SessionRecord]


@dataclass(frozen=True, slots=True)
class UserPage:
    users: Sequence[AdminUserView]
    has_next: bool


def cursor_of(user: AdminUserRecord) -> str:
    """The opaque position of ``user`` in the listing (keyset: creation time, then id), in
    the trail's cursor format, which :func:`auth.events.parse_cursor` reads back."""
    raw = f"{user.created_at.isoformat()}|{user.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class AdminService:
    """The administration use cases, bound to one unit of work."""

    def __init__(self, toolkit: AuthToolkit, uow: UnitOfWork) -> None:
        self.toolkit = toolkit
        self.settings = toolkit.settings
        self.uow = uow
        self.admin = uow.repository(AdminRepository)

    # -- who may ---------------------------------------------------------------------------

    def authorize(self, viewer: Viewer, *, role: str = ADMIN) -> None:
        """Raise :class:`NotAdmin` unless the caller holds ``role`` (and may use it).

        The role comes first: a caller without it learns nothing else (not even that a second
        factor would be asked). With ``ADMIN_REQUIRE_MFA`` an admin's session must be aal2.
        """
        roles = self._roles(viewer.user.id)
        self.uow.rollback()  # a read only: no pooled connection is held past it
        if role not in roles:
            raise NotAdmin
        if role == ADMIN and self.settings.admin_require_mfa and viewer.session.aal < 2:
            raise AdminMfaRequired

    # -- reads -----------------------------------------------------------------------------

    def list_users(
        self,
        actor: Actor,
        *,
        first: int = PAGE_DEFAULT,
        after: str | None = None,
        query: str | None = None,
        disabled: bool | None = None,
    ) -> UserPage:
        """A page of users, newest first; ``query`` is an email prefix or a user id."""
        if not 1 <= first <= PAGE_MAX:
            raise errors.ValidationFailed("first", f"Ask for 1 to {PAGE_MAX} users.")
        position = parse_cursor(after) if after else None
        search = query.strip().casefold() if query else None
        if search is not None and "\x00" in search:
            raise errors.ValidationFailed("query", "The query holds a NUL character.")
        rows = self.admin.page(
            limit=first + 1, after=position, search=search or None, disabled=disabled
        )
        users = self._views(rows[:first])
        self._audit(actor, "list_users", [u.user.id for u in users])
        self.uow.commit()
        return UserPage(users=users, has_next=len(rows) > first)

    def resolve(self, id_or_email: str) -> str:
        """The id of the user with this id or email address (the CLI's argument)."""
        user = self._target(id_or_email)
        if user is None and "@" in id_or_email:
            try:
                user = self.admin.get_by_email(canonical_email(id_or_email))
            except errors.ValidationFailed:
                user = None
        self.uow.rollback()
        if user is None:
            raise UserNotFound
        return user.id

    def user(self, actor: Actor, user_id: str) -> AdminUserView:
        """One user by id; :class:`UserNotFound` if there is none."""
        view = self._view(self._get(user_id).id)
        self._audit(actor, "read_user", [view.user.id])
        self.uow.commit()
        return view

    # -- actions ---------------------------------------------------------------------------

    def disable(self, actor: Actor, user_id: str, reason: str) -> AdminUserView:
        """Disable the account and end every session of it at once."""
        reason = _reason(reason)
        user = self._get(user_id)
        self._keep_an_admin(user.id)
        now = self.toolkit.clock()
        # The user's row first (see AdminRepository.set_disabled), then the sessions: a
        # sign-in that won the row has committed its session, which the revocation ends.
        self.admin.set_disabled(user.id, now=now, reason=reason)
        self.uow.sessions.revoke(user_id=user.id, now=now, reason=REVOKED_ACCOUNT_DISABLED)
        # A reset link sent before must not bring the account back.
        self.uow.email_tokens.drop(user_id=user.id, purpose="reset_password")
        self._audit(actor, "disable_user", [user.id], reason=reason)
        self.uow.commit()
        return self._view(user.id)

    def enable(self, actor: Actor, user_id: str) -> AdminUserView:
        """Let the user sign in again; sessions ended by the disable stay ended."""
        user = self._get(user_id)
        self.admin.set_disabled(user.id, now=self.toolkit.clock(), reason=None)
        # A disabled account is mailed no code, so a live one was mailed before the disable
        # (while a right one still answers AccountDisabled): it must not open the account now.
        self.uow.repository(SignInCodeRepository).drop(user_id=user.id)
        self._audit(actor, "enable_user", [user.id])
        self.uow.commit()
        return self._view(user.id)

    def revoke_sessions(self, actor: Actor, user_id: str) -> AdminUserView:
        """Sign the user out everywhere: every session and refresh token stops working."""
        user = self._get(user_id)
        self.uow.sessions.revoke(user_id=user.id, now=self.toolkit.clock(), reason=REVOKED_BY_ADMIN)
        self._audit(actor, "revoke_sessions", [user.id])
        self.uow.commit()
        return self._view(user.id)

    def delete(self, actor: Actor, user_id: str) -> str:
        """Delete the account (sessions, tokens, factors go with it); return its id."""
        user = self._get(user_id)
        self._keep_an_admin(user.id)
        # The row's delete waits for a sign-in holding it; its session cascades with it.
        if not self.uow.users.delete(user.id):
            raise UserNotFound
        # As when users delete themselves: their trail stays, without their IPs and devices
        # (admins' IPs are kept apart, with the annotations).
        self.uow.events.forget_client(user_id=user.id)
        self._audit(actor, "delete_user", [user.id])
        self.uow.commit()
        return user.id

    def set_roles(self, actor: Actor, user_id: str, roles: Iterable[str]) -> AdminUserView:
        """Make ``roles`` the user's roles; removing the last active admin's is refused."""
        wanted = frozenset(roles)
        unknown = wanted - ROLES
        if unknown:
            raise errors.ValidationFailed("roles", f"Unknown role: {sorted(unknown)[0]}.")
        user = self._get(user_id)
        current = self._roles(user.id)
        if ADMIN in current - wanted:
            self._keep_an_admin(user.id)
        now = self.toolkit.clock()
        for role in sorted(wanted - current):
            self.admin.grant(user.id, role, now=now)
        for role in sorted(current - wanted):
            self.admin.revoke(user.id, role)
        granted = ",".join(sorted(wanted)) or "none"
        self._audit(actor, "set_roles", [user.id], detail=f"set_roles:{granted}")
        self.uow.commit()
        return self._view(user.id)

    def grant_role(self, actor: Actor, user_id: str, role: str) -> AdminUserView:
        """Add ``role`` to the user's roles (``authgraph users grant-admin``)."""
        return self.set_roles(actor, user_id, self._roles(user_id) | {role})

    def revoke_role(self, actor: Actor, user_id: str, role: str) -> AdminUserView:
        """Take ``role`` from the user (``authgraph users revoke-admin``); see set_roles."""
        return self.set_roles(actor, user_id, self._roles(user_id) - {role})

    # -- internals -------------------------------------------------------------------------

    def _roles(self, user_id: str) -> frozenset[str]:
        return self.admin.roles([user_id]).get(user_id, frozenset())

    def _target(self, user_id: str) -> AdminUserRecord | None:
        if not user_id or "\x00" in user_id:
            # Names no user, and PostgreSQL refuses to even compare text holding a NUL.
            return None
        return self.admin.get(user_id)

    def _get(self, user_id: str) -> AdminUserRecord:
        user = self._target(user_id)
        if user is None:
            raise UserNotFound
        return user

    def _keep_an_admin(self, user_id: str) -> None:
        """Refuse to take away the last active administrator (if ``user_id`` is one)."""
        if ADMIN not in self._roles(user_id):
            return
        self.admin.hold_admins()
        if self.admin.active_admins(excluding=user_id) == 0:
            self.uow.rollback()
            raise LastAdmin

    def _view(self, user_id: str) -> AdminUserView:
        user = self.admin.get(user_id)
        if user is None:
            raise UserNotFound
        (view,) = self._views([user])
        return view

    def _views(self, users: Sequence[AdminUserRecord]) -> list[AdminUserView]:
        """Views of ``users`` in three reads whatever their number: roles, factors, sessions."""
        ids = [u.id for u in users]
        if not ids:
            return []
        roles = self.admin.roles(ids)
        with_mfa = self.admin.with_mfa(ids)
        sessions = self.admin.live_sessions(ids, now=self.toolkit.clock())
        return [
            AdminUserView(
                user=u,
                roles=roles.get(u.id, frozenset()),
                mfa_enabled=u.id in with_mfa,
                sessions=sessions.get(u.id, ()),
            )
            for u in users
        ]

    def _audit(
        self,
        actor: Actor,
        action: str,
        targets: Sequence[str],
        *,
        reason: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record the read or action in this transaction (the caller commits it).

        One ``ADMIN_ACTION`` event per user concerned, in that user's trail (auth/events.py:
        what, whom, when, and the acting admin's id), and beside each, what the trail's row
        does not hold: the reason, the CLI's operator and the admin's IP. The IP stays out
        of the user's own trail, which the user reads.
        """
        events = [
            record_event(
                self.toolkit,
                self.uow,
                EventKind.ADMIN_ACTION,
                user_id=user_id,
                detail=detail or action,
                actor_id=actor.user_id,
            ).id
            for user_id in targets
        ]
        self.admin.annotate(
            events, reason=reason, operator=actor.label, ip_address=actor.client.ip_address
        )

    def actions(self, user_id: str, *, limit: int = PAGE_MAX) -> Sequence[AdminActionRecord]:
        """The admin actions and reads recorded about the user, newest first."""
        found = self.admin.actions(user_id, limit=limit)
        self.uow.rollback()
        return found


def _reason(reason: str) -> str:
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise errors.ValidationFailed("reason", "Say why the account is disabled.")
    if len(cleaned) > REASON_MAX or "\x00" in cleaned:
        raise errors.ValidationFailed("reason", f"At most {REASON_MAX} characters.")
    return cleaned
