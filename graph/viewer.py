"""``Query.viewer``. Its session check runs off the event loop (Context.authenticate)."""

from __future__ import annotations

import strawberry

from auth.errors import InvalidAccessToken
from graph.context import Info
from graph.errors import unauthenticated
from graph.features import extends_query
from graph.types import User


@extends_query
@strawberry.type
class ViewerQueries:
    @strawberry.field(
        description=(
            "The caller, from `Authorization: Bearer <accessToken>`. Null without a token; null "
            "with an UNAUTHENTICATED error for a bad, expired or revoked one."
        )
    )
    async def viewer(self, info: Info) -> User | None:
        try:
            viewer = await info.context.authenticate()
        except InvalidAccessToken as exc:
            raise unauthenticated(exc) from None
        if viewer is None:
            return None
        return User.from_record(viewer.user, session_id=viewer.session.id)
