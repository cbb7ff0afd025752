"""The per-request context: the database session, the domain service and the viewer, all lazy.

An operation that never asks for the viewer does no database work and decodes no token.
Nothing here waits on the network on the event loop: the session check of a token seen
before reads without blocking (db.session_check), a new token's runs on the app's
session-check threads, and a session still holding a connection is closed in a worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from functools import cached_property
from typing import Any, cast

from fastapi import Request, Response
from sqlalchemy.orm import Session as OrmSession
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext
from strawberry.types import Info as StrawberryInfo

from auth.errors import InvalidAccessToken, Unauthenticated
from auth.ports import ClientInfo, UnitOfWork
from auth.ratelimit import RateLimiter
from auth.service import AuthService, Viewer, authenticate_live
from auth.toolkit import AuthToolkit
from graph.client import client_info
from graph.root import AppState, UseCase
from graph.token_transport import TokenTransport

BEARER_PREFIX = "bearer "


class LazyDatabase:
    """Opens one ORM session on first use and closes it when the request ends.

    ``turn`` lets one worker at a time use the session: the fields of a query resolve
    concurrently (``viewer { sessions passkeys }``, ``admin`` beside ``viewer``), but an ORM
    session and its connection serve one thread at a time (PostgreSQL's driver fails the
    second one mid-statement). See :func:`graph.runner.in_session_worker`.
    """

    def __init__(self, state: AppState) -> None:
        self._state = state
        self._session: OrmSession | None = None
        self.turn = asyncio.Lock()

    @property
    def session(self) -> OrmSession:
        if self._session is None:
            self._session = self._state.session_factory()
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    async def aclose(self) -> None:
        """:meth:`close`, in a worker thread if the session still holds a connection.

        Returning a connection to the pool rolls it back: a round trip that a hung
        server could stretch. Sessions that committed, rolled back or never ran a statement
        (every ``viewer`` request) hold none and close here, at no cost.
        """
        if self._session is not None and self._session.in_transaction():
            await run_in_threadpool(self.close)
        else:
            self.close()


async def request_database(request: Request) -> AsyncIterator[LazyDatabase]:
    """FastAPI dependency: one lazily opened database session per request."""
    database = LazyDatabase(request.app.state.authgraph)
    try:
        yield database
    finally:
        await database.aclose()


class Context(BaseContext):
    """What every resolver can reach, through ``info.context``."""

    def __init__(self, state: AppState, database: LazyDatabase, request: HTTPConnection) -> None:
        super().__init__()
        self.state = state
        self.settings = state.settings
        self.database = database
        # A WebSocket for subscriptions: headers, cookies, client and url are all it offers.
        self.http_request = cast(Request, request)
        self._session_check: asyncio.Future[Viewer] | None = None
        # A graphql-transport-ws connection's graph.live.LiveConnection, once authenticated.
        self.live: Any = None
        self._use_cases: dict[object, object] = {}

    def use(self, kind: Callable[[AuthToolkit, UnitOfWork], UseCase]) -> UseCase:
        """The use-case class ``kind`` bound to this request's database session, made once
        per request: ``await in_worker(context.use(AuthService).login, ...)``."""
        if kind not in self._use_cases:
            self._use_cases[kind] = self.state.service(kind, self.database.session)
        return cast(UseCase, self._use_cases[kind])

    @property
    def limiter(self) -> RateLimiter:
        """The shared rate limiter: ``context.limiter.hit(limit, "name", key) -> int | None``."""
        return self.state.limiter

    @property
    def transport(self) -> TokenTransport:
        """How refresh tokens travel (``REFRESH_TOKEN_TRANSPORT``)."""
        return self.state.transport

    @cached_property
    def client(self) -> ClientInfo:
        return client_info(self.http_request, self.settings.http.trusted_proxies)

    @cached_property
    def bearer_token(self) -> str | None:
        """The raw ``Authorization`` value's token, ``""`` if the header is malformed."""
        header = self.http_request.headers.get("authorization")
        if header is None:
            return None
        if header[: len(BEARER_PREFIX)].lower() != BEARER_PREFIX:
            return ""
        return header[len(BEARER_PREFIX) :].strip()

    async def authenticate(self) -> Viewer | None:
        """The caller, or ``None`` when no token was sent. Checked once per request.

        Raises :class:`InvalidAccessToken` for a token that was sent but is not good (the
        client must be able to tell "logged out" from "token expired"), and
        :class:`auth.errors.ServiceUnavailable` when the session cannot be checked. A token
        verified before needs one database read, made on the loop without blocking
        (:mod:`db.session_check`: SQLite's never waits, PostgreSQL's is asynchronous and
        bounded); a new token's check (its signature, maybe a key fetch, then the read) runs
        on the session-check threads: a hung database holds that thread, never the loop.
        """
        token = self.bearer_token
        if token is None:
            return None
        if self._session_check is None:
            if token == "":
                raise InvalidAccessToken
            reads = self.state.live_reads
            claims = None if reads is None else self.state.toolkit.tokens.known(token)
            if claims is not None:
                # A token verified before: its session read on the loop, no thread
                # (db.session_check: what bounds that read).
                assert reads is not None
                self._session_check = asyncio.ensure_future(
                    authenticate_live(self.state.toolkit, reads, claims)
                )
            else:
                # In a database session of its own: fields that do not wait for the check
                # may be using the request's (see LazyDatabase.turn).
                self._session_check = asyncio.get_running_loop().run_in_executor(
                    self.state.session_checks, _check_session, self.state, token
                )
        # Fields resolved concurrently (two aliases of `viewer`) share the one check.
        return await asyncio.shield(self._session_check)

    def viewer(self) -> Viewer | None:
        """The caller as :meth:`authenticate` found it; await that first (it raises alike)."""
        token = self.bearer_token
        if token is None:
            return None
        if token == "":
            raise InvalidAccessToken
        if self._session_check is None or not self._session_check.done():
            raise RuntimeError("await Context.authenticate() before Context.viewer()")
        return self._session_check.result()

    def require_viewer(self) -> Viewer:
        viewer = self.viewer()
        if viewer is None:
            raise Unauthenticated
        return viewer


def _check_session(state: AppState, token: str) -> Viewer:
    with state.database() as database:
        return state.service(AuthService, database).authenticate(token)


async def get_context(request: HTTPConnection, response: Response = None) -> Context:  # type: ignore[assignment]
    # Not a yield dependency: AuthgraphRouter.run closes the database when the operation
    # is done. FastAPI's exit stack for a yield dependency cost 8% of a `viewer` request.
    state: AppState = request.app.state.authgraph
    context = Context(state, LazyDatabase(state), request)
    context.response = response
    return context


Info = StrawberryInfo[Context, None]
