"""Strawberry's FastAPI router, with local GraphiQL assets and JSON bodies for HTTP errors."""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from strawberry.fastapi import GraphQLRouter
from strawberry.types.unset import UNSET

from graph.context import Context
from graph.graphiql import render_local_graphiql_html

STATIC_PREFIX = "/static"


class AuthgraphRouter(GraphQLRouter[Context, None]):
    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(render_local_graphiql_html(f"{STATIC_PREFIX}/graphiql"))

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        try:
            return await super().run(request, context=context, root_value=root_value)
        except HTTPException as exc:
            # Strawberry answers these in plain text; clients of a JSON API expect JSON.
            return _error_response(exc.status_code, exc.reason)


def _error_response(status_code: int, reason: str) -> Response:
    return JSONResponse(
        {"errors": [{"message": reason, "extensions": {"code": "BAD_REQUEST"}}]},
        status_code=status_code,
    )
