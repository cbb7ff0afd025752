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

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        # A document or variables refused before any field ran (syntax, validation, coercion)
        # is the client's mistake: 400. Field errors carry a path and keep 200.
        if isinstance(response_data, dict) and _is_request_error(response_data):
            sub_response.status_code = 400
        return super().create_response(response_data, sub_response)

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        try:
            return await super().run(request, context=context, root_value=root_value)
        except HTTPException as exc:
            # Strawberry answers these in plain text; clients of a JSON API expect JSON.
            return _error_response(exc.status_code, exc.reason)
        finally:
            if isinstance(context, Context):
                context.database.close()


def _is_request_error(response_data: dict[str, Any]) -> bool:
    errors = response_data.get("errors") or []
    return (
        bool(errors)
        and response_data.get("data") is None
        and all(not error.get("path") for error in errors)
    )


def _error_response(status_code: int, reason: str) -> Response:
    return JSONResponse(
        {"errors": [{"message": reason, "extensions": {"code": "BAD_REQUEST"}}]},
        status_code=status_code,
    )
