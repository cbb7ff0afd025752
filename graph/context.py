"""The per-request context: the database session, the domain service and the viewer, all lazy.

An operation that never asks for the viewer does no database work and decodes no token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import cached_property

from fastapi import Request, Response
from sqlalchemy.orm import Session as OrmSession
from strawberry.fastapi import BaseContext
from strawberry.types import Info as StrawberryInfo

from auth.errors import InvalidAccessToken, Unauthenticated
from auth.lifecycle import AccountService
from auth.ports import ClientInfo
from auth.ratelimit import RateLimiter
from auth.service import AuthService, Viewer
from graph.client import client_info
from graph.root import AppState
from graph.token_transport import TokenTransport

BEARER_PREFIX = "bearer "


class LazyDatabase:
    """Opens one ORM session on first use and closes it when the request ends."""

    def __init__(self, state: AppState) -> None:
        self._state = state
        self._session: OrmSession | None = None

    @property
    def session(self) -> OrmSession:
        if self._session is None:
            self._session = self._state.session_factory()
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


async def request_database(request: Request) -> AsyncIterator[LazyDatabase]:
    """FastAPI dependency: one lazily opened database session per request."""
    database = LazyDatabase(request.app.state.authgraph)
    try:
        yield database
    finally:
        database.close()


class Context(BaseContext):
    """What every resolver can reach, through ``info.context``."""

    def __init__(self, state: AppState, database: LazyDatabase, request: Request) -> None:
        super().__init__()
        self.state = state
        self.settings = state.settings
        self.database = database
        self.http_request = request
        self._viewer: Viewer | None = None
        self._viewer_error: InvalidAccessToken | None = None
        self._viewer_resolved = False

    @cached_property
    def service(self) -> AuthService:
        return self.state.auth_service(self.database.session)

    @property
    def limiter(self) -> RateLimiter:
        """The shared rate limiter: ``context.limiter.hit(limit, "name", key) -> int | None``."""
        return self.state.limiter

    @cached_property
    def accounts(self) -> AccountService:
        return self.state.account_service(self.database.session)

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

    def viewer(self) -> Viewer | None:
        """The caller, or ``None`` when no token was sent.

        Raises :class:`InvalidAccessToken` for a token that was sent but is not good:
        the client must be able to tell "logged out" from "token expired".
        """
        if not self._viewer_resolved:
            self._viewer_resolved = True
            token = self.bearer_token
            try:
                if token == "":
                    raise InvalidAccessToken
                if token is not None:
                    self._viewer = self.service.authenticate(token)
            except InvalidAccessToken as exc:
                self._viewer_error = exc
        if self._viewer_error is not None:
            raise self._viewer_error
        return self._viewer

    def require_viewer(self) -> Viewer:
        viewer = self.viewer()
        if viewer is None:
            raise Unauthenticated
        return viewer


async def get_context(request: Request, response: Response) -> Context:
    # Not a yield dependency: AuthgraphRouter.run closes the database when the operation
    # is done. FastAPI's exit stack for a yield dependency cost 8% of a `viewer` request.
    state: AppState = request.app.state.authgraph
    context = Context(state, LazyDatabase(state), request)
    context.response = response
    return context


Info = StrawberryInfo[Context, None]
