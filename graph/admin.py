"""Administration over GraphQL: ``Query.admin`` (find users) and the ``admin*`` mutations.

Every field carries ``@requiresRole(role: ADMIN)`` (graph/runner.py): a caller without the
role gets ``FORBIDDEN`` before anything runs, and, while ``ADMIN_REQUIRE_MFA`` is on, an
admin needs an aal2 session. The mutations also carry ``@requiresRecentAuth`` (step-up:
``ReauthenticationRequired`` data). The use cases and their records are in auth/admin.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry import relay
from strawberry.permission import PermissionExtension

from auth import errors
from auth.admin import (
    PAGE_DEFAULT,
    Actor,
    AdminActionRecord,
    AdminService,
    AdminUserView,
    cursor_of,
)
from auth.admin import (
    LastAdmin as LastAdminError,
)
from auth.admin import (
    UserNotFound as UserNotFoundError,
)
from graph.context import Context, Info
from graph.errors import Error, PublicError, expected
from graph.features import extends_mutation, extends_query
from graph.lifecycle import AccountDeleted
from graph.runner import RequiresRecentAuth, RequiresRole, Role, in_worker, mutation
from graph.types import ReauthenticationRequired, Session, ValidationError

T = TypeVar("T")
ADMIN_ONLY = [RequiresRole(Role.ADMIN)]
# Changes to another account: the role, then a recent authentication at the highest level.
ADMIN_STEP_UP = [RequiresRole(Role.ADMIN), RequiresRecentAuth()]


@strawberry.type(
    description="One recorded admin read or action concerning a user (the audit trail)."
)
class AdminAction:
    id: strawberry.ID = strawberry.field(description="The security event's id.")
    action: str = strawberry.field(
        description="What was done: `list_users`, `read_user`, `disable_user`, `enable_user`, "
        "`revoke_sessions`, `delete_user`, `set_roles:<roles>`."
    )
    occurred_at: datetime
    actor_id: strawberry.ID | None = strawberry.field(
        description="The administrator who acted; null for the `authgraph users` command."
    )
    operator: str | None = strawberry.field(
        description="For the command line: `cli:<operating-system user>`."
    )
    ip_address: str | None = strawberry.field(description="The administrator's IP address.")
    reason: str | None = strawberry.field(description="The reason given (adminDisableUser).")

    @classmethod
    def from_record(cls, record: AdminActionRecord) -> AdminAction:
        return cls(
            id=strawberry.ID(record.id),
            action=record.action,
            occurred_at=record.occurred_at,
            actor_id=strawberry.ID(record.actor_id) if record.actor_id else None,
            operator=record.operator,
            ip_address=record.ip_address,
            reason=record.reason,
        )


@strawberry.type(description="A user as administration sees it.")
class AdminUser:
    id: strawberry.ID
    email: str
    email_verified: bool
    created_at: datetime
    disabled_at: datetime | None = strawberry.field(
        description="When an administrator disabled the account; null while it is enabled."
    )
    disabled_reason: str | None = strawberry.field(
        description="Why, as the administrator wrote it."
    )
    roles: list[Role]
    mfa_enabled: bool
    sessions: list[Session] = strawberry.field(
        description="The user's live sessions, most recently used first."
    )
    last_sign_in_at: datetime | None = strawberry.field(
        description="When a session was last opened (signup, login, verifyMfa, /token)."
    )

    @strawberry.field(
        description="Admin reads and actions recorded about this user, newest first (at "
        "most 200). No API removes them; they are pruned with the trail "
        "(AUDIT_RETENTION_DAYS)."
    )
    async def admin_actions(self, info: Info) -> list[AdminAction]:
        user_id = str(self.id)
        records = await _read(info.context, lambda admin: admin.actions(user_id))
        return [AdminAction.from_record(r) for r in records]

    @classmethod
    def from_view(cls, view: AdminUserView, *, admin_session_id: str | None) -> AdminUser:
        user = view.user
        return cls(
            id=strawberry.ID(user.id),
            email=user.email,
            email_verified=user.email_verified,
            created_at=user.created_at,
            disabled_at=user.disabled_at,
            disabled_reason=user.disabled_reason,
            roles=[Role(r) for r in sorted(view.roles)],
            mfa_enabled=view.mfa_enabled,
            sessions=[
                Session.from_record(s, current_session_id=admin_session_id) for s in view.sessions
            ],
            last_sign_in_at=user.last_sign_in_at,
        )


@strawberry.type
class AdminUserEdge:
    cursor: str
    node: AdminUser


@strawberry.type(description="A page of users, newest first.")
class AdminUserConnection:
    edges: list[AdminUserEdge]
    page_info: relay.PageInfo


def _actor(context: Context) -> Actor:
    return Actor.of(context.require_viewer(), context.client)


def _view_of(context: Context, view: AdminUserView) -> AdminUser:
    return AdminUser.from_view(view, admin_session_id=context.require_viewer().session.id)


async def _read(context: Context, read: Callable[[AdminService], T]) -> T:
    """Run a read in a database session of its own (sibling fields run in other threads);
    an unacceptable argument is a ``BAD_USER_INPUT`` error (these fields have no union)."""

    def run() -> T:
        with context.state.database() as database:
            return read(context.state.service(AdminService, database))

    try:
        return await in_worker(run)
    except errors.ValidationFailed as exc:
        raise PublicError(exc.public_message, "BAD_USER_INPUT") from None


def _given(value: T | None) -> T | None:
    return None if value is strawberry.UNSET else value


def _admin_field(description: str) -> Any:
    return strawberry.field(
        description=description,
        extensions=[PermissionExtension(list(ADMIN_ONLY), use_directives=True)],
    )


@strawberry.type(description="Finding users; every read is recorded in the audit trail.")
class AdminQuery:
    @_admin_field(
        "Users, newest first: at most 200 a page (`first`), after a cursor; `query` matches "
        "an email prefix or a whole user id; `disabled` keeps only disabled (true) or "
        "enabled (false) accounts."
    )
    async def users(
        self,
        info: Info,
        first: int | None = PAGE_DEFAULT,
        # UNSET: printed as the contract has them (`after: String`), absent means null.
        after: str | None = strawberry.UNSET,
        query: str | None = strawberry.UNSET,
        disabled: bool | None = strawberry.UNSET,
    ) -> AdminUserConnection:
        context = info.context
        actor = _actor(context)
        after, query, disabled = (_given(after), _given(query), _given(disabled))
        page = await _read(
            context,
            lambda admin: admin.list_users(
                actor,
                first=PAGE_DEFAULT if first is None else first,
                after=after,
                query=query,
                disabled=disabled,
            ),
        )
        edges = [
            AdminUserEdge(cursor=cursor_of(v.user), node=_view_of(context, v)) for v in page.users
        ]
        return AdminUserConnection(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=page.has_next,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    @_admin_field("One user by id; null if there is none.")
    async def user(self, info: Info, id: strawberry.ID) -> AdminUser | None:
        context = info.context
        actor = _actor(context)
        try:
            view = await _read(context, lambda admin: admin.user(actor, str(id)))
        except UserNotFoundError:
            return None
        return _view_of(context, view)


@extends_query
@strawberry.type
class AdminQueries:
    @_admin_field(
        "Administration. Null with FORBIDDEN for anyone but an administrator (whose session "
        "needs a second factor while ADMIN_REQUIRE_MFA is on)."
    )
    async def admin(self, info: Info) -> AdminQuery | None:
        return AdminQuery()


@strawberry.type(description="The user, after the change.")
class AdminUserPayload:
    user: AdminUser


@expected(UserNotFoundError)
@strawberry.type(description="No user has this id.")
class UserNotFound(Error):
    pass


@expected(LastAdminError)
@strawberry.type(description="The change would leave no active administrator; nothing was changed.")
class LastAdmin(Error):
    pass


@strawberry.input
class AdminDisableUserInput:
    id: strawberry.ID
    reason: str = strawberry.field(
        description="Why (kept on the account and in the audit trail); up to 500 characters."
    )


@strawberry.input
class AdminSetRolesInput:
    id: strawberry.ID
    roles: list[Role] = strawberry.field(description="Every role the user is to have.")


AdminUserResult = Annotated[
    AdminUserPayload | UserNotFound | ReauthenticationRequired | LastAdmin | ValidationError,
    strawberry.union("AdminUserResult"),
]
AdminDeleteUserResult = Annotated[
    AccountDeleted | UserNotFound | ReauthenticationRequired | LastAdmin,
    strawberry.union("AdminDeleteUserResult"),
]


@extends_mutation
@strawberry.type
class AdminMutations:
    @mutation(
        "Disable an account: every session ends at once and no sign-in succeeds until "
        "adminEnableUser. Refused for the last active administrator.",
        requires=ADMIN_STEP_UP,
    )
    async def admin_disable_user(self, info: Info, input: AdminDisableUserInput) -> AdminUserResult:
        context = info.context
        view = await in_worker(
            context.use(AdminService).disable, _actor(context), str(input.id), input.reason
        )
        return AdminUserPayload(user=_view_of(context, view))

    @mutation(
        "Let a disabled account sign in again (its ended sessions stay ended).",
        requires=ADMIN_STEP_UP,
    )
    async def admin_enable_user(self, info: Info, id: strawberry.ID) -> AdminUserResult:
        context = info.context
        view = await in_worker(context.use(AdminService).enable, _actor(context), str(id))
        return AdminUserPayload(user=_view_of(context, view))

    @mutation(
        "Sign a user out everywhere: every session and refresh token stops working at once.",
        requires=ADMIN_STEP_UP,
    )
    async def admin_revoke_sessions(self, info: Info, id: strawberry.ID) -> AdminUserResult:
        context = info.context
        view = await in_worker(context.use(AdminService).revoke_sessions, _actor(context), str(id))
        return AdminUserPayload(user=_view_of(context, view))

    @mutation(
        "Delete an account with its sessions, tokens and factors. Refused for the last "
        "active administrator.",
        requires=ADMIN_STEP_UP,
    )
    async def admin_delete_user(self, info: Info, id: strawberry.ID) -> AdminDeleteUserResult:
        context = info.context
        deleted = await in_worker(context.use(AdminService).delete, _actor(context), str(id))
        return AccountDeleted(deleted_user_id=strawberry.ID(deleted))

    @mutation(
        "Set a user's roles. Refuses to take the role from the last active administrator.",
        requires=ADMIN_STEP_UP,
    )
    async def admin_set_roles(self, info: Info, input: AdminSetRolesInput) -> AdminUserResult:
        context = info.context
        view = await in_worker(
            context.use(AdminService).set_roles,
            _actor(context),
            str(input.id),
            [r.value for r in input.roles],
        )
        return AdminUserPayload(user=_view_of(context, view))
