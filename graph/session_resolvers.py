"""Session mutations: refresh, logout, revocation and password change."""

from __future__ import annotations

from typing import cast

import strawberry

from auth.errors import AuthError
from graph import types
from graph.context import Info
from graph.cookies import REFRESH_COOKIE, clear_session_cookies, csrf_proof
from graph.errors import to_error_type, unauthenticated
from graph.resolvers import GRAPHQL_PATH, auth_payload, authenticate, run_sync


@strawberry.type
class SessionMutations:
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
        if token is None and context.settings.cookie_mode:
            token = context.http_request.cookies.get(REFRESH_COOKIE)
            # An ambient cookie needs proof; "" never matches, so the service refuses it.
            csrf = csrf_proof(context.http_request, context.settings) or ""
        try:
            result = await run_sync(
                lambda: context.service.refresh(token, context.client, csrf=csrf)
            )
        except AuthError as exc:
            return cast(types.RefreshTokenResult, to_error_type(exc))
        return auth_payload(context, result)

    @strawberry.mutation(description="End this session, the other sessions, or all of them.")
    async def logout(
        self, info: Info, scope: types.LogoutScope = types.LogoutScope.CURRENT
    ) -> types.LogoutResult:
        context = info.context
        cookie_mode = context.settings.cookie_mode
        try:
            if context.bearer_token is None and cookie_mode:
                # A reloaded SPA may hold only the refresh cookie: let it end its session.
                cookie = context.http_request.cookies.get(REFRESH_COOKIE)
                if not cookie:
                    raise unauthenticated()
                csrf = csrf_proof(context.http_request, context.settings) or ""
                count = await run_sync(
                    lambda: context.service.logout_by_refresh_token(cookie, csrf=csrf)
                )
            else:
                authenticate(context)
                count = await run_sync(
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
        authenticate(context)
        try:
            await run_sync(
                lambda: context.service.revoke_session(context.require_viewer(), str(id))
            )
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
        authenticate(context)
        try:
            result = await run_sync(
                lambda: context.service.change_password(
                    context.require_viewer(),
                    input.current_password,
                    input.new_password,
                    context.client,
                )
            )
        except AuthError as exc:
            return cast(types.ChangePasswordResult, to_error_type(exc))
        return auth_payload(context, result)
