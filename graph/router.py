"""Strawberry's FastAPI router: local GraphiQL under a strict CSP, JSON bodies for HTTP errors,
JSON-only POST bodies, and the GraphQL-over-HTTP response media type when the client asks."""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from strawberry.fastapi import GraphQLRouter
from strawberry.types.unset import UNSET

from graph.context import Context
from graph.csp import page_csp
from graph.errors import RETRY_AFTER_SECONDS, error_body, is_outage_only
from graph.graphiql import render_local_graphiql_html
from graph.live import AuthgraphWsHandler
from graph.paths import STATIC_PREFIX
from graph.request_json import RequestJsonError, decode_request_json

JSON = "application/json"
_NULLABLE = ("variables", "extensions")
# The GraphQL over HTTP spec's media type; with it, request errors must be 4xx (they are).
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


class AuthgraphRouter(GraphQLRouter[Context, None]):
    # Subscriptions (graphql-transport-ws): authenticated at init, closed on revocation.
    graphql_transport_ws_handler_class = AuthgraphWsHandler

    def is_websocket_origin_allowed(self, request: Any, origin: str) -> bool:
        # Accept the handshake: AuthgraphWsHandler checks Origin against CORS_ORIGINS and
        # closes with 4403, which a client can tell from a network failure.
        return True

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        html = render_local_graphiql_html(f"{STATIC_PREFIX}/graphiql")
        return HTMLResponse(html, headers={"Content-Security-Policy": page_csp(html)})

    def decode_json(self, data: str | bytes) -> object:
        # Bodies, and the variables and extensions of a GET, all pass through here.
        try:
            return decode_request_json(data)
        except RequestJsonError as exc:
            raise HTTPException(400, str(exc)) from None

    def parse_query_params(self, params: Any) -> dict[str, Any]:
        # In a query string, `variables=null` means none (as an absent one does); in a body,
        # the JSON object itself may not be null, so the shared decoder refuses it.
        kept = {k: v for k, v in dict(params).items() if not (k in _NULLABLE and v == "null")}
        return super().parse_query_params(kept)

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        # A document or variables refused before any field ran (syntax, validation, coercion)
        # is the client's mistake: 400. Field errors carry a path and keep 200. The
        # GraphQL-over-HTTP spec: a request error's body has no "data" entry at all.
        # An answer that an outage left empty (the caller's session could not be checked, the
        # only mutation could not run) is a 503 the client and any proxy can act on.
        if isinstance(response_data, dict) and is_outage_only(response_data):
            sub_response.status_code = 503
            sub_response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            response_data = {k: v for k, v in response_data.items() if k != "data"}
        elif isinstance(response_data, dict) and _is_request_error(response_data):
            sub_response.status_code = 400
            response_data = {k: v for k, v in response_data.items() if k != "data"}
        return super().create_response(response_data, sub_response)

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        # A WebSocket (subscriptions) has no method and no body to check.
        method = getattr(request, "method", None)
        if method == "POST" and media_type(request.headers.get("content-type")) != JSON:
            # Form and text/plain bodies are what a cross-site form can send without CORS.
            return error_response(415, f"POST bodies must be {JSON}.")
        try:
            response = await super().run(request, context=context, root_value=root_value)
        except HTTPException as exc:
            # Strawberry answers these in plain text; clients of a JSON API expect JSON.
            response = error_response(exc.status_code, exc.reason)
        finally:
            if isinstance(context, Context):
                await context.database.aclose()
        if isinstance(response, Response):
            negotiate_media_type(request.headers.get("accept"), response)
        return response


def negotiate_media_type(accept: str | None, response: Response) -> None:
    """Label a JSON answer ``application/graphql-response+json`` when ``accept`` prefers it."""
    if media_type(response.headers.get("content-type")) == JSON and (
        _prefers_graphql_response_json(accept)
    ):
        response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"


def _is_request_error(response_data: dict[str, Any]) -> bool:
    errors = response_data.get("errors") or []
    return (
        bool(errors)
        and response_data.get("data") is None
        and all(not error.get("path") for error in errors)
    )


def media_type(header: str | None) -> str:
    """The media type of a ``Content-Type`` value, lowercase, without parameters."""
    return (header or "").split(";", 1)[0].strip().lower()


def _prefers_graphql_response_json(accept: str | None) -> bool:
    """Whether ``Accept`` ranks the GraphQL response type at least as high as plain JSON."""
    weights: dict[str, float] = {}
    for part in (accept or "").split(","):
        media_type, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        weights[media_type.lower()] = max(quality, weights.get(media_type.lower(), 0.0))
    wanted = weights.get(GRAPHQL_RESPONSE_JSON, 0.0)
    return wanted > 0 and wanted >= weights.get(JSON, 0.0)


def error_response(status_code: int, reason: str, code: str = "BAD_REQUEST") -> Response:
    """An HTTP-level refusal with a JSON body shaped like a GraphQL response's errors."""
    return JSONResponse(error_body(reason, code), status_code=status_code)
