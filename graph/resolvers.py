"""Query and Mutation: thin resolvers that call the domain and convert its answers.

Use cases run in a worker thread: they hash passwords (hundreds of milliseconds of CPU
that releases the GIL) and write to the database. Reads of the viewer stay on the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

import strawberry
from starlette.concurrency import run_in_threadpool

from auth.errors import AuthError, InvalidAccessToken
from auth.service import AuthResult
from graph import types
from graph.context import Context, Info
from graph.cookies import (
    set_session_cookies,
)
from graph.errors import to_error_type, unauthenticated

T = TypeVar("T")
GRAPHQL_PATH = "/graphql"


async def run_sync(fn: Callable[[], T]) -> T:
    return await run_in_threadpool(fn)


def _viewer_or_raise(context: Context) -> types.User | None:
    try:
        viewer = context.viewer()
    except InvalidAccessToken as exc:
        raise unauthenticated(exc) from None
    if viewer is None:
        return None
    return types.User.from_record(viewer.user, session_id=viewer.session.id)


def auth_payload(context: Context, result: AuthResult) -> types.AuthPayload:
    """Convert a use case's result, moving the refresh token into cookies in cookie mode."""
    settings = context.settings
    if not settings.cookie_mode:
        return types.AuthPayload.from_result(result, csrf_token=None)
    csrf = context.state.toolkit.csrf_token(result.session.id)
    assert context.response is not None
    set_session_cookies(context.response, result, csrf, settings, GRAPHQL_PATH)
    return types.AuthPayload.from_result(result, csrf_token=csrf)


def authenticate(context: Context) -> None:
    try:
        context.require_viewer()
    except AuthError as exc:
        raise unauthenticated(exc) from None


@strawberry.type
class Query:
    @strawberry.field(
        description=(
            "The caller, from `Authorization: Bearer <accessToken>`. Null without a token; null "
            "with an UNAUTHENTICATED error for a bad, expired or revoked one."
        )
    )
    def viewer(self, info: Info) -> types.User | None:
        return _viewer_or_raise(info.context)


@strawberry.type
class AccountMutations:
    @strawberry.mutation(description="Create an account and log it in.")
    async def signup(self, info: Info, input: types.SignupInput) -> types.SignupResult:
        context = info.context
        try:
            result = await run_sync(
                lambda: context.service.signup(input.email, input.password, context.client)
            )
        except AuthError as exc:
            return cast(types.SignupResult, to_error_type(exc))
        context.state.wake_mail_sender()  # the verification message was queued with the account
        return auth_payload(context, result)

    @strawberry.mutation(description="Log in with email and password; opens a new session.")
    async def login(self, info: Info, input: types.LoginInput) -> types.LoginResult:
        context = info.context
        try:
            result = await run_sync(
                lambda: context.service.login(input.email, input.password, context.client)
            )
        except AuthError as exc:
            return cast(types.LoginResult, to_error_type(exc))
        return auth_payload(context, result)
