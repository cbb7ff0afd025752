"""Query and Mutation: thin resolvers that call the domain and convert its answers.

Use cases run in a worker thread: they hash passwords (hundreds of milliseconds of CPU
that releases the GIL) and write to the database. Reads of the viewer stay on the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

import strawberry
from starlette.concurrency import run_in_threadpool

from auth.errors import AuthError, CsrfFailed, InvalidAccessToken
from auth.service import AuthResult
from graph import types
from graph.context import Context, Info
from graph.cookies import (
    REFRESH_COOKIE,
    clear_session_cookies,
    csrf_proof,
    set_session_cookies,
)
from graph.errors import to_error_type, unauthenticated

T = TypeVar("T")
GRAPHQL_PATH = "/graphql"


async def _run(fn: Callable[[], T]) -> T:
    return await run_in_threadpool(fn)


def _viewer_or_raise(context: Context) -> types.User | None:
    try:
        viewer = context.viewer()
    except InvalidAccessToken as exc:
        raise unauthenticated(exc) from None
    if viewer is None:
        return None
    return types.User.from_record(viewer.user, session_id=viewer.session.id)


def _payload(context: Context, result: AuthResult) -> types.AuthPayload:
    """Convert a use case's result, moving the refresh token into cookies in cookie mode."""
    settings = context.settings
    if settings.refresh_token_transport != "cookie":
        return types.AuthPayload.from_result(result, csrf_token=None)
    csrf = context.state.toolkit.csrf_token(result.session.id)
    assert context.response is not None
    set_session_cookies(context.response, result, csrf, settings, GRAPHQL_PATH)
    return types.AuthPayload.from_result(result, csrf_token=csrf)


async def _authenticate(context: Context) -> None:
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
class Mutation:
    @strawberry.mutation(description="Create an account and log it in.")
    async def signup(self, info: Info, input: types.SignupInput) -> types.SignupResult:
        context = info.context
        try:
            result = await _run(
                lambda: context.service.signup(input.email, input.password, context.client)
            )
        except AuthError as exc:
            return cast(types.SignupResult, to_error_type(exc))
        return _payload(context, result)

    @strawberry.mutation(description="Log in with email and password; opens a new session.")
    async def login(self, info: Info, input: types.LoginInput) -> types.LoginResult:
        context = info.context
        try:
            result = await _run(
                lambda: context.service.login(input.email, input.password, context.client)
            )
        except AuthError as exc:
            return cast(types.LoginResult, to_error_type(exc))
        return _payload(context, result)

    @strawberry.mutation(
        description=(
            "Exchange a refresh token for new tokens; the old one is spent. In cookie mode the "
            "token comes from the cookie, with the X-CSRF-Token header as proof."
        )
    )
    async def refresh_token(
        self, info: Info, refresh_token: str | None = None
    ) -> types.RefreshTokenResult:
        context = info.context
        csrf: str | None = None
        token = refresh_token
        if token is None and context.settings.refresh_token_transport == "cookie":
            token = context.http_request.cookies.get(REFRESH_COOKIE)
            if token:
                csrf = csrf_proof(context.http_request, context.settings)
                if csrf is None:
                    return cast(types.RefreshTokenResult, to_error_type(CsrfFailed()))
        try:
            result = await _run(lambda: context.service.refresh(token, context.client, csrf=csrf))
        except AuthError as exc:
            return cast(types.RefreshTokenResult, to_error_type(exc))
        return _payload(context, result)

    @strawberry.mutation(description="End this session, the other sessions, or all of them.")
    async def logout(
        self, info: Info, scope: types.LogoutScope = types.LogoutScope.CURRENT
    ) -> types.LogoutResult:
        context = info.context
        cookie_mode = context.settings.refresh_token_transport == "cookie"
        try:
            if context.bearer_token is None and cookie_mode:
                # A reloaded SPA may hold only the refresh cookie: let it end its session.
                cookie = context.http_request.cookies.get(REFRESH_COOKIE)
                csrf = csrf_proof(context.http_request, context.settings)
                if not cookie:
                    raise unauthenticated()
                if csrf is None:
                    to_error_type(CsrfFailed())
                count = await _run(
                    lambda: context.service.logout_by_refresh_token(cookie, csrf=csrf or "")
                )
            else:
                await _authenticate(context)
                count = await _run(
                    lambda: context.service.logout(context.require_viewer(), scope.value)
                )
        except AuthError as exc:
            return cast(types.LogoutResult, to_error_type(exc))
        if cookie_mode and context.response is not None:
            clear_session_cookies(context.response, context.settings, GRAPHQL_PATH)
        return types.LogoutPayload(revoked_sessions=count)

    @strawberry.mutation(description="End one of the caller's own sessions.")
    async def revoke_session(self, info: Info, id: strawberry.ID) -> types.RevokeSessionResult:
        context = info.context
        await _authenticate(context)
        try:
            await _run(lambda: context.service.revoke_session(context.require_viewer(), str(id)))
        except AuthError as exc:
            return cast(types.RevokeSessionResult, to_error_type(exc))
        return types.RevokeSessionPayload(revoked_session_id=id)

    @strawberry.mutation(
        description=(
            "Change the password: needs the current one, ends every other session, and returns "
            "fresh tokens for this one."
        )
    )
    async def change_password(
        self, info: Info, input: types.ChangePasswordInput
    ) -> types.ChangePasswordResult:
        context = info.context
        await _authenticate(context)
        try:
            result = await _run(
                lambda: context.service.change_password(
                    context.require_viewer(),
                    input.current_password,
                    input.new_password,
                    context.client,
                )
            )
        except AuthError as exc:
            return cast(types.ChangePasswordResult, to_error_type(exc))
        return _payload(context, result)
