"""How a mutation runs: its access rules, its worker thread and its expected failures.

A resolver declared with :func:`mutation` holds only its use case call::

    @mutation("End one of the caller's own sessions.", requires=[Authenticated()])
    async def revoke_session(self, info: Info, id: strawberry.ID) -> RevokeSessionResult:
        context = info.context
        await in_worker(context.use(AuthService).revoke_session, context.require_viewer(), str(id))
        return RevokeSessionPayload(revoked_session_id=id)

- ``requires``: access rules, checked before the resolver runs and printed in the schema
  as directives (``@authenticated``). A rule is a Strawberry permission whose
  ``has_permission`` raises a coded :class:`graph.errors.PublicError` when refused; later
  rules join the same list: :class:`RequiresAal` and :class:`RequiresRecentAuth` (step-up),
  refused as ``ReauthenticationRequired`` data in the result union, and
  :class:`RequiresRole` (``@requiresRole(role: ADMIN)``), refused as ``FORBIDDEN``.
- :func:`in_worker`: use cases write to the database; they run in a worker thread, never
  on the event loop. Query fields, which resolve concurrently, use
  :func:`in_session_worker` to take turns on the request's database session. A use case
  that hashes a password runs with :func:`in_hash_lane` instead: admitted to the hash
  lane first, or answered ``RateLimited`` at once.
- An :class:`auth.errors.AuthError` raised by the body becomes its result-union member
  through the table of :mod:`graph.errors`.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Awaitable, Callable, Sequence
from enum import Enum
from typing import Any, ParamSpec, TypeVar

import anyio
import strawberry
from starlette.concurrency import run_in_threadpool
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema_directive import Location

from auth.admin import ADMIN, AdminService, NotAdmin
from auth.errors import AuthError
from auth.guards import require_assurance
from auth.hashing import HashLane
from auth.service import Viewer
from auth.settings import AuthSettings
from graph.context import Context, Info
from graph.errors import PublicError, to_error_type, unauthenticated

P = ParamSpec("P")
# REAUTH_MAX_AGE_SECONDS's default, as the schema prints it.
REAUTH_DEFAULT_SECONDS: int = AuthSettings.reauth_max_age_seconds
T = TypeVar("T")


async def in_worker(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a synchronous use case in the thread pool and return its result."""
    return await run_in_threadpool(fn, *args, **kwargs)


async def in_session_worker(
    context: Context, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """:func:`in_worker` for a field that uses the request's database session, in its turn.

    Mutations run one after another, but a query's fields resolve concurrently (sibling
    fields, aliases, ``admin`` beside ``viewer``, an access rule beside another field): an
    ORM session serves one thread at a time, so they take ``context.database.turn``.
    """
    async with context.database.turn:
        return await run_in_threadpool(fn, *args, **kwargs)


# Each lane's own thread allowance, apart from the pool's shared one (anyio's 40).
_lane_threads: weakref.WeakKeyDictionary[HashLane, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


async def in_hash_lane(lane: HashLane, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a synchronous use case that hashes a password, admitted to ``lane`` first.

    Admission is decided here, on the event loop, before any thread is taken: past the
    lane's capacity the call raises :class:`auth.errors.RateLimited` at once (its result
    union's ``RateLimited`` member). An admitted call runs in a thread counted against the
    lane's own allowance (its capacity, never exceeded since admission bounds it), so calls
    waiting for a hash never hold the threads that other blocking work shares, and the
    hashes themselves run on the lane's executor (``HASH_WORKERS`` threads).
    """
    with lane.admit():
        threads = _lane_threads.get(lane)
        if threads is None:
            threads = _lane_threads[lane] = anyio.CapacityLimiter(lane.capacity)
        return await anyio.to_thread.run_sync(
            functools.partial(fn, *args, **kwargs), limiter=threads
        )


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="authenticated",
    description="Needs `Authorization: Bearer <accessToken>` of a live session.",
)
class AuthenticatedDirective:
    pass


async def viewer_or_refuse(context: Context) -> Viewer:
    """The caller, or an ``UNAUTHENTICATED`` GraphQL error."""
    try:
        await context.authenticate()
        return context.require_viewer()
    except AuthError as exc:
        raise unauthenticated(exc) from None


class Authenticated(BasePermission):
    """The caller must present a good access token; refused with ``UNAUTHENTICATED``."""

    _schema_directive = AuthenticatedDirective()

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        await viewer_or_refuse(info.context)  # cached: the resolver's require_viewer() is free
        return True


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresAal",
    description=(
        "The session must be authenticated at this assurance level (aal2: with a second "
        "factor). Asks nothing more of a user without MFA, whose highest level is aal1. "
        "Refused as `ReauthenticationRequired` in the result."
    ),
)
class RequiresAalDirective:
    level: int


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresRecentAuth",
    description=(
        "The session must have authenticated within `maxAgeSeconds` (the deployment's "
        "REAUTH_MAX_AGE_SECONDS, 300 by default) at the user's highest level; `reauthenticate` "
        "renews it. With `mfaUsersOnly`, only users with MFA are asked (the mutation takes "
        "the password anyway). Refused as `ReauthenticationRequired` in the result."
    ),
)
class RequiresRecentAuthDirective:
    max_age_seconds: int
    mfa_users_only: bool = False


class _StepUp(BasePermission):
    """A step-up rule: checked in a worker (it reads the user's factors), refused as data."""

    def __init__(
        self, *, level: int | None = None, recent: bool = False, mfa_users_only: bool = False
    ) -> None:
        self.level = level
        self.recent = recent
        self.mfa_users_only = mfa_users_only
        self._directive: object = None

    @property
    def schema_directive(self) -> object:
        # Per instance: the directive carries this rule's arguments.
        return self._directive

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        context = info.context
        viewer = await viewer_or_refuse(context)
        # Raises auth.errors.ReauthenticationRequired, which ExpectedErrors (outside this
        # extension) turns into the result union's member.
        await in_session_worker(
            context,
            require_assurance,
            context.state.toolkit,
            context.state.unit_of_work(context.database.session),
            viewer.user.id,
            viewer.session,
            level=self.level,
            recent=self.recent,
            mfa_users_only=self.mfa_users_only,
        )
        return True


class RequiresAal(_StepUp):
    """``@requiresAal(level: N)``: the session's assurance level, capped at the user's highest."""

    def __init__(self, level: int) -> None:
        super().__init__(level=level)
        self._directive = RequiresAalDirective(level=level)


class RequiresRecentAuth(_StepUp):
    """``@requiresRecentAuth(maxAgeSeconds: 300)``: a recent authentication at the highest level.

    The age is ``REAUTH_MAX_AGE_SECONDS``; the directive prints its default.
    """

    def __init__(self, *, mfa_users_only: bool = False) -> None:
        super().__init__(recent=True, mfa_users_only=mfa_users_only)
        self._directive = RequiresRecentAuthDirective(
            max_age_seconds=REAUTH_DEFAULT_SECONDS, mfa_users_only=mfa_users_only
        )


@strawberry.enum(description="A role that grants more than the account's own data.")
class Role(Enum):
    ADMIN = ADMIN


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresRole",
    description=(
        "The caller must hold this role; anyone else gets FORBIDDEN and no hint of what the "
        "field does. For ADMIN, while ADMIN_REQUIRE_MFA is on (the default), the session must "
        "also be signed in with a second factor (aal2)."
    ),
)
class RequiresRoleDirective:
    role: Role


# The caller's role checks, made once per request however many fields ask.
_role_checks: weakref.WeakKeyDictionary[Context, dict[Role, asyncio.Future[None]]] = (
    weakref.WeakKeyDictionary()
)


def _authorize(context: Context, viewer: Viewer, role: Role) -> None:
    # A database session of its own: fields of one query run in threads side by side.
    with context.state.database() as database:
        context.state.service(AdminService, database).authorize(viewer, role=role.value)


class RequiresRole(BasePermission):
    """``@requiresRole(role: ADMIN)``: the caller holds the role (auth.admin decides).

    Refused with ``UNAUTHENTICATED`` without a good token, ``FORBIDDEN`` without the role
    (the same answer for every such field), and ``FORBIDDEN`` with a message saying what is
    missing for an admin whose session lacks the second factor ``ADMIN_REQUIRE_MFA`` asks.
    """

    def __init__(self, role: Role) -> None:
        self.role = role
        self._directive = RequiresRoleDirective(role=role)

    @property
    def schema_directive(self) -> object:
        return self._directive

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        context = info.context
        viewer = await viewer_or_refuse(context)
        checks = _role_checks.setdefault(context, {})
        check = checks.get(self.role)
        if check is None:
            check = checks[self.role] = asyncio.ensure_future(
                in_session_worker(context, _authorize, context, viewer, self.role)
            )
        try:
            await asyncio.shield(check)
        except NotAdmin as exc:
            raise PublicError(exc.public_message, "FORBIDDEN") from None
        return True


class ExpectedErrors(FieldExtension):
    """Return the union member of an :class:`AuthError` the resolver raised."""

    async def resolve_async(
        self,
        next_: Callable[..., Awaitable[Any]],
        source: Any,
        info: Info,
        **kwargs: Any,
    ) -> Any:
        try:
            return await next_(source, info, **kwargs)
        except AuthError as exc:
            return to_error_type(exc)
        finally:
            # Most mutations record a security event, and with WEBHOOK_URL set each is a
            # delivery: send it now rather than at the next poll.
            info.context.state.wake_webhook_sender()


def mutation(description: str, *, requires: Sequence[BasePermission] = ()) -> Any:
    """``strawberry.mutation`` with the access rules ``requires`` and expected-error mapping."""
    extensions: list[FieldExtension] = []
    if requires:
        # Access is checked before the resolver runs. A refused step-up rule raises an
        # expected AuthError (ReauthenticationRequired), so ExpectedErrors comes last, which
        # is outermost; a refused Authenticated raises a coded GraphQL error, not an AuthError.
        extensions.append(PermissionExtension(list(requires), use_directives=True))
    extensions.append(ExpectedErrors())
    return strawberry.mutation(description=description, extensions=extensions)
