"""ASGI middleware around the whole app: a request body limit and security headers."""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph.errors import error_body
from graph.paths import STATIC_PREFIX

# For JSON answers: nothing may load or run, and no page may frame them.
API_CSP = "default-src 'none'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
# For other html pages (FastAPI's /docs loads its own CDN assets): at least no framing.
HTML_CSP = "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


class BodyLimitMiddleware:
    """Answer 413 (JSON) to a request body over ``max_bytes``, declared or streamed.

    A ``Content-Length`` over the limit is refused before anything is read. Otherwise the
    body is read here, counting bytes as they arrive (chunked bodies have no length), and
    handed on only once complete and within the limit: the app never sees a partial body.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client left before finishing its body: nothing to answer.
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay_body(b"".join(chunks), receive), send)

    async def _too_large(self, send: Send) -> None:
        body = json.dumps(
            error_body(f"Request body is larger than {self.max_bytes} bytes.", "PAYLOAD_TOO_LARGE")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands on ``body`` whole, then what ``receive`` brings next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as usual

    return replay


class SecurityHeadersMiddleware:
    """Add no-sniff, frame denial, referrer and cache headers, and a CSP, to every response.

    A response that already carries a ``Content-Security-Policy`` (the GraphiQL page sets its
    own) keeps it. Responses outside ``/static`` are never stored by caches: they may hold
    tokens.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = str(scope.get("path", "")).startswith(STATIC_PREFIX + "/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                content_type = _find(headers, b"content-type") or b""
                csp = HTML_CSP if content_type.startswith(b"text/html") else API_CSP
                extra = {
                    b"x-content-type-options": b"nosniff",
                    b"x-frame-options": b"DENY",
                    b"referrer-policy": b"no-referrer",
                    b"content-security-policy": csp.encode(),
                    b"cross-origin-opener-policy": b"same-origin",
                }
                if not cacheable:
                    extra[b"cache-control"] = b"no-store"
                headers.extend((k, v) for k, v in extra.items() if k not in names)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def header(scope: Scope, name: bytes) -> str | None:
    """The value of header ``name`` (lowercase) in an ASGI scope, stripped."""
    value = _find(scope.get("headers", []), name)
    return None if value is None else value.decode("latin-1").strip()


def _find(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return bytes(value)
    return None
