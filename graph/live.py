"""Subscriptions over ``graphql-transport-ws`` at ``/graphql``, and revocation that reaches them.

A connection authenticates in ``connection_init`` (``{"Authorization": "Bearer <token>"}``,
the key matched without regard to case; or, with ``REFRESH_TOKEN_TRANSPORT=cookie``, the
handshake's refresh cookie plus ``{"X-CSRF-Token": "..."}``, checked read-only: nothing is
rotated or spent): a missing or bad credential closes it with 4401, an
``Origin`` that is neither the server's own nor in ``CORS_ORIGINS`` with 4403. Every
``subscribe`` checks the session again. Each committed security event reaches this
process's :class:`LiveBus` (PostgreSQL ``LISTEN``/``NOTIFY`` on PostgreSQL, Redis pub/sub
when ``RATE_LIMIT_STORAGE`` is a Redis URL, else in process): the connections of that
user pass it to ``viewerSecurityEvents`` and check their session once; a session that
ended is told (``viewerSessionEvents``: ``SESSION_REVOKED``) and its socket closed with
4403. An access token's expiry is told ahead (``ACCESS_TOKEN_EXPIRING``) and ends the
connection the same way (reconnect with a fresh token).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import strawberry
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)

from auth import errors
from auth.events import EventKind
from auth.service import AuthService, Viewer
from graph.broadcast import LiveBus
from graph.client import request_scheme
from graph.context import Context, Info
from graph.cookies import CSRF_HEADER, REFRESH_COOKIE, double_submitted
from graph.errors import PublicError
from graph.events import SecurityEvent
from graph.root import AppState

log = logging.getLogger("authgraph.live")

Message = dict[str, Any]
# How long before its access token expires a connection is told so.
EXPIRY_NOTICE_SECONDS = 30
# Events that may have ended sessions: on one of these, each connection of the user checks
# its own session (one read) rather than guess which sessions an event ended.
MAY_END_SESSIONS = frozenset(
    {
        EventKind.SIGNED_OUT,
        EventKind.SESSION_REVOKED,
        EventKind.REFRESH_TOKEN_REUSED,
        EventKind.PASSWORD_CHANGED,
        EventKind.PASSWORD_RESET,
        EventKind.ACCOUNT_DELETED,
        EventKind.MFA_ENABLED,
        EventKind.ADMIN_ACTION,
    }
)
REVOKED = 4403
UNAUTHORIZED = 4401
TOO_MANY = 4429


# -- GraphQL types ------------------------------------------------------------------------


@strawberry.enum(description="What happened to the caller's sessions.")
class SessionEventKind(Enum):
    SESSION_REVOKED = "session_revoked"
    OTHER_SESSION_REVOKED = "other_session_revoked"
    ACCESS_TOKEN_EXPIRING = "access_token_expiring"
    ACCESS_TOKEN_EXPIRED = "access_token_expired"


@strawberry.type(
    description="A change to the caller's sessions. After SESSION_REVOKED or "
    "ACCESS_TOKEN_EXPIRED the server closes the connection (4403)."
)
class SessionEvent:
    kind: SessionEventKind
    session_id: strawberry.ID | None = strawberry.field(
        description="The session concerned: the connection's own, or (OTHER_SESSION_REVOKED) "
        "another one of the user's."
    )
    occurred_at: datetime
    expires_at: datetime | None = strawberry.field(
        description="When the connection's access token expires (ACCESS_TOKEN_EXPIRING)."
    )


def event_of(message: Message, *, current_session_id: str) -> SecurityEvent:
    session_id = message.get("session_id")
    return SecurityEvent(
        id=strawberry.ID(str(message["id"])),
        kind=EventKind(message["kind"]),
        occurred_at=datetime.fromisoformat(str(message["occurred_at"])),
        ip_address=message.get("ip_address"),
        device=message.get("device"),
        session_id=strawberry.ID(session_id) if session_id else None,
        current=session_id is not None and session_id == current_session_id,
        detail=message.get("detail"),
    )


# -- one connection -----------------------------------------------------------------------


@dataclass
class LiveConnection:
    """An authenticated connection: its viewer, its open streams, its watcher."""

    state: AppState
    viewer: Viewer
    expires_at: datetime  # of the access token, or (cookie mode) of the refresh token
    close: Callable[[int, str], Any]
    security_streams: set[asyncio.Queue[Message]] = field(default_factory=set)
    session_streams: set[asyncio.Queue[SessionEvent]] = field(default_factory=set)
    inbox: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    unsubscribe: Callable[[], None] | None = None
    ended: bool = False

    @property
    def session_id(self) -> str:
        return self.viewer.session.id

    def start(self, bus: LiveBus) -> None:
        self.unsubscribe = bus.subscribe(self.viewer.user.id, self.inbox.put_nowait)
        self.tasks.append(asyncio.create_task(self._watch()))
        self.tasks.append(asyncio.create_task(self._expire()))

    async def stop(self) -> None:
        self.ended = True
        if self.unsubscribe is not None:
            self.unsubscribe()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def session_live(self) -> bool:
        """Whether the connection's session is still live (one read, off the event loop)."""
        state = self.state
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(state.session_checks, _session_live, state, self.viewer)

    def _tell(self, event: SessionEvent) -> None:
        for queue in self.session_streams:
            queue.put_nowait(event)

    async def _end(self, kind: SessionEventKind, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        now = self.state.toolkit.clock()
        self._tell(
            SessionEvent(
                kind=kind,
                session_id=strawberry.ID(self.session_id),
                occurred_at=now,
                expires_at=None,
            )
        )
        # Let the streams send what they were told (this event, and the security event that
        # ended the session) before the socket goes. A busy loop may take longer than a tick,
        # so wait up to half of SUBSCRIPTION_REVOCATION_SECONDS (at most a second).
        streams: list[asyncio.Queue[Any]] = [*self.session_streams, *self.security_streams]
        budget = min(1.0, self.state.settings.http.subscription_revocation_seconds / 2)
        for _ in range(max(1, int(budget / 0.02))):
            await asyncio.sleep(0.02)
            if all(q.empty() for q in streams):
                break
        # A stream that took its last item is still sending it: one more turn of the loop.
        await asyncio.sleep(0.02)
        await self.close(REVOKED, reason)

    async def _watch(self) -> None:
        while True:
            message = await self.inbox.get()
            for queue in self.security_streams:
                queue.put_nowait(message)
            try:
                kind = EventKind(message["kind"])
            except ValueError:
                continue
            if kind not in MAY_END_SESSIONS:
                continue
            try:
                live = await self.session_live()
            except errors.ServiceUnavailable:
                # Unknown: the next event, the next subscribe or the token's expiry decides.
                continue
            if not live:
                await self._end(SessionEventKind.SESSION_REVOKED, "Session revoked")
                return
            if message.get("session_id") and message.get("session_id") != self.session_id:
                self._tell(
                    SessionEvent(
                        kind=SessionEventKind.OTHER_SESSION_REVOKED,
                        session_id=strawberry.ID(str(message["session_id"])),
                        occurred_at=datetime.fromisoformat(str(message["occurred_at"])),
                        expires_at=None,
                    )
                )

    async def _expire(self) -> None:
        expires = self.expires_at
        clock = self.state.toolkit.clock
        notice_at = expires - timedelta(seconds=EXPIRY_NOTICE_SECONDS)
        await asyncio.sleep(max(0.0, (notice_at - clock()).total_seconds()))
        self._tell(
            SessionEvent(
                kind=SessionEventKind.ACCESS_TOKEN_EXPIRING,
                session_id=strawberry.ID(self.session_id),
                occurred_at=clock(),
                expires_at=expires,
            )
        )
        await asyncio.sleep(max(0.0, (expires - clock()).total_seconds()))
        await self._end(SessionEventKind.ACCESS_TOKEN_EXPIRED, "Access token expired")


def _session_live(state: AppState, viewer: Viewer) -> bool:
    with state.database() as database:
        found = state.unit_of_work(database).sessions.find_active(
            session_id=viewer.session.id, user_id=viewer.user.id, now=state.toolkit.clock()
        )
    return found is not None


def payload_value(payload: object, name: str) -> str | None:
    """The string under ``name`` (matched without regard to case) in ``connection_init``'s
    payload, if any."""
    if not isinstance(payload, dict):
        return None
    for key, value in payload.items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return None


def bearer_of(payload: object) -> str | None:
    """The token of ``connection_init``'s ``{"Authorization": "Bearer ..."}`` (any case)."""
    value = payload_value(payload, "authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class AuthgraphWsHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with authentication, the Origin check and live revocation."""

    live: LiveConnection | None = None

    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            if self.live is not None:
                await self.live.stop()

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        context = self.context
        state = context.state
        if self.connection_init_received:
            await super().handle_connection_init(message)  # 4429: one init only
            return
        if not _origin_allowed(context):
            await self.websocket.close(code=REVOKED, reason="Forbidden origin")
            return
        payload = message.get("payload")
        token = bearer_of(payload)
        if token:
            viewer = await _authenticate(state, token)
        elif context.settings.http.cookie_mode:
            viewer = await _authenticate_cookie(context, payload_value(payload, CSRF_HEADER))
        else:
            viewer = None
        if viewer is None:
            await self.websocket.close(code=UNAUTHORIZED, reason="Unauthorized")
            return
        limit = state.settings.http.subscription_connections_per_user
        if state.live_bus.connections(viewer[0].user.id) >= limit:
            await self.websocket.close(code=TOO_MANY, reason="Too many connections")
            return
        self.live = LiveConnection(
            state=state,
            viewer=viewer[0],
            expires_at=viewer[1],
            close=lambda code, reason: self.websocket.close(code=code, reason=reason),
        )
        context.live = self.live
        self.live.start(state.live_bus)
        await super().handle_connection_init(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        live = self.live
        if live is not None and self.connection_acknowledged:
            try:
                still = await live.session_live()
            except errors.ServiceUnavailable:
                still = True  # the stream's own watch decides once the database answers
            if not still or live.ended:
                await self.websocket.close(code=UNAUTHORIZED, reason="Unauthorized")
                return
            # SUBSCRIPTIONS_PER_CONNECTION says the next one closes the connection (4429);
            # Strawberry's own check would only answer an error message.
            limit = self.max_subscriptions_per_connection
            if limit is not None and len(self.operations) >= limit:
                await self.websocket.close(code=TOO_MANY, reason="Too many subscriptions")
                return
        await super().handle_subscribe(message)


async def _authenticate(state: AppState, token: str) -> tuple[Viewer, datetime] | None:
    def check() -> tuple[Viewer, datetime] | None:
        try:
            claims = state.toolkit.tokens.verify(token)
            with state.database() as database:
                viewer = state.service(AuthService, database).authenticate(token)
        except (errors.AuthError, errors.ServiceUnavailable):
            return None
        return viewer, claims.expires_at

    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(state.session_checks, check)


async def _authenticate_cookie(
    context: Context, presented_csrf: str | None
) -> tuple[Viewer, datetime] | None:
    """Cookie mode: the handshake's refresh cookie, with the payload's CSRF token as the
    double-submit proof of the HTTP cookie transport (graph.cookies). Read-only."""
    state = context.state
    connection = context.http_request
    csrf = double_submitted(connection, presented_csrf, context.settings)
    refresh_token = connection.cookies.get(REFRESH_COOKIE)
    if csrf is None or not refresh_token:
        return None

    def check() -> tuple[Viewer, datetime] | None:
        try:
            with state.database() as database:
                service = state.service(AuthService, database)
                return service.authenticate_refresh_token(refresh_token, csrf=csrf)
        except (errors.AuthError, errors.ServiceUnavailable):
            return None

    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(state.session_checks, check)


def _origin_allowed(context: Context) -> bool:
    """No Origin (not a browser), the server's own, or one of ``CORS_ORIGINS``."""
    headers = context.http_request.headers
    origin = headers.get("origin")
    if not origin:
        return True
    # Behind a trusted proxy that terminates TLS, the page's scheme is the proxy's (its
    # X-Forwarded-Proto), not the socket's ws:// from the proxy.
    socket_scheme = request_scheme(context.http_request, context.settings.http.trusted_proxies)
    scheme = "https" if socket_scheme in ("wss", "https") else "http"
    return origin == f"{scheme}://{headers.get('host', '')}" or origin in (
        context.settings.http.cors_origins
    )


def _live(info: Info) -> LiveConnection:
    live = info.context.live
    if not isinstance(live, LiveConnection):
        raise PublicError("Subscriptions need an authenticated connection.", "UNAUTHENTICATED")
    return live


@strawberry.type
class Subscription:
    @strawberry.subscription(description="The caller's security events as they happen.")
    async def viewer_security_events(self, info: Info) -> AsyncGenerator[SecurityEvent, None]:
        live = _live(info)
        queue: asyncio.Queue[Message] = asyncio.Queue()
        live.security_streams.add(queue)
        try:
            while True:
                message = await queue.get()
                yield event_of(message, current_session_id=live.session_id)
        finally:
            live.security_streams.discard(queue)

    @strawberry.subscription(
        description="Changes to the caller's sessions: this one or another one revoked, the "
        "access token about to expire. The connection closes (4403) when its session ends."
    )
    async def viewer_session_events(self, info: Info) -> AsyncGenerator[SessionEvent, None]:
        live = _live(info)
        queue: asyncio.Queue[SessionEvent] = asyncio.Queue()
        live.session_streams.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            live.session_streams.discard(queue)
