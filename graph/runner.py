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
  rules (an assurance level, a recent login) join the same list.
- :func:`in_worker`: use cases write to the database; they run in a worker thread, never
  on the event loop. A use case that hashes a password runs with :func:`in_hash_lane`
  instead: admitted to the hash lane first, or answered ``RateLimited`` at once.
- An :class:`auth.errors.AuthError` raised by the body becomes its result-union member
  through the table of :mod:`graph.errors`.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import anyio
import strawberry
from starlette.concurrency import run_in_threadpool
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema_directive import Location

from auth.errors import AuthError
from auth.hashing import HashLane
from auth.service import Viewer
from graph.context import Context, Info
from graph.errors import to_error_type, unauthenticated

P = ParamSpec("P")
T = TypeVar("T")


async def in_worker(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a synchronous use case in the thread pool and return its result."""
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


def mutation(description: str, *, requires: Sequence[BasePermission] = ()) -> Any:
    """``strawberry.mutation`` with the access rules ``requires`` and expected-error mapping."""
    extensions: list[FieldExtension] = [ExpectedErrors()]
    if requires:
        # Last is outermost: access is checked before anything else runs.
        extensions.append(PermissionExtension(list(requires), use_directives=True))
    return strawberry.mutation(description=description, extensions=extensions)
