"""Session mutations: refresh, logout, revocation and password change."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import strawberry

from auth import errors
from auth.service import AuthService
from graph.context import Info
from graph.errors import Error, expected
from graph.features import extends_mutation
from graph.runner import (
    Authenticated,
    RequiresAal,
    RequiresRecentAuth,
    in_hash_lane,
    in_worker,
    mutation,
    viewer_or_refuse,
)
from graph.types import (
    AccountDisabled,
    AuthPayload,
    InvalidCredentials,
    RateLimited,
    ReauthenticationRequired,
    ValidationError,
)

# Mutations that take the password: for a user with MFA, also a recent aal2 authentication;
# a user without MFA sees no change.
PASSWORD_STEP_UP = [Authenticated(), RequiresAal(2), RequiresRecentAuth(mfa_users_only=True)]


@strawberry.type(description="How many sessions a logout ended.")
class LogoutPayload:
    revoked_sessions: int


@strawberry.type(description="The session was revoked.")
class RevokeSessionPayload:
    revoked_session_id: strawberry.ID


@strawberry.enum(description="Which sessions `logout` ends.")
class LogoutScope(Enum):
    CURRENT = "current"
    OTHERS = "others"
    ALL = "all"


@expected(errors.InvalidRefreshToken)
@strawberry.type(description="The refresh token is unknown, spent, expired or revoked.")
class InvalidRefreshToken(Error):
    pass


@expected(errors.SessionNotFound)
@strawberry.type(description="No such session among the caller's own.")
class SessionNotFound(Error):
    pass


RefreshTokenResult = Annotated[
    AuthPayload | InvalidRefreshToken | RateLimited | AccountDisabled,
    strawberry.union("RefreshTokenResult"),
]
LogoutResult = Annotated[LogoutPayload, strawberry.union("LogoutResult")]
RevokeSessionResult = Annotated[
    RevokeSessionPayload | SessionNotFound, strawberry.union("RevokeSessionResult")
]
ChangePasswordResult = Annotated[
    AuthPayload | InvalidCredentials | ValidationError | RateLimited | ReauthenticationRequired,
    strawberry.union("ChangePasswordResult"),
]


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@extends_mutation
@strawberry.type
class SessionMutations:
    @mutation(
        "Exchange a refresh token for new tokens; the old one is spent. In cookie mode the "
        "token comes from the cookie, with the X-CSRF-Token header as proof."
    )
    async def refresh_token(
        self, info: Info, refresh_token: str | None = None
    ) -> RefreshTokenResult:
        context = info.context
        presented = context.transport.presented(context.http_request, refresh_token)
        result = await in_worker(
            context.use(AuthService).refresh, presented.token, context.client, csrf=presented.csrf
        )
        return AuthPayload.issued(context, result)

    @mutation("End this session, the other sessions, or all of them.")
    async def logout(self, info: Info, scope: LogoutScope = LogoutScope.CURRENT) -> LogoutResult:
        context = info.context
        cookie = None
        if context.bearer_token is None:
            # A reloaded SPA may hold only the refresh cookie: let it end its session.
            cookie = context.transport.ambient(context.http_request)
        if cookie is not None:
            count = await in_worker(
                context.use(AuthService).logout_by_refresh_token,
                cookie.token,
                csrf=cookie.csrf or "",
                client=context.client,
            )
        else:
            viewer = await viewer_or_refuse(context)
            count = await in_worker(
                context.use(AuthService).logout, viewer, scope.value, context.client
            )
        context.transport.end(context.response)
        return LogoutPayload(revoked_sessions=count)

    @mutation("End one of the caller's own sessions.", requires=[Authenticated()])
    async def revoke_session(self, info: Info, id: strawberry.ID) -> RevokeSessionResult:
        context = info.context
        await in_worker(
            context.use(AuthService).revoke_session,
            context.require_viewer(),
            str(id),
            context.client,
        )
        return RevokeSessionPayload(revoked_session_id=id)

    @mutation(
        "Change the password: needs the current one, ends every other session, and returns "
        "fresh tokens for this one. With MFA, also needs a recent aal2 authentication.",
        requires=PASSWORD_STEP_UP,
    )
    async def change_password(self, info: Info, input: ChangePasswordInput) -> ChangePasswordResult:
        context = info.context
        result = await in_hash_lane(
            context.state.hash_lane,
            context.use(AuthService).change_password,
            context.require_viewer(),
            input.current_password,
            input.new_password,
            context.client,
        )
        return AuthPayload.issued(context, result)
