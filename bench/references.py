"""The two reference servers the benchmark measures authgraph against.

Both answer ``POST /graphql`` for ``{ viewer { id email } }`` (whatever the body says) with
the same JSON as authgraph, after the same checks: a bearer token verified with python-jose
(HS256 pinned, issuer, audience and every claim required), then the live session and its user
read in one joined statement. Both read settings from the environment like ``authgraph serve``.

- :func:`raw_floor`: a bare Starlette route calling the database driver (``sqlite3`` or
  psycopg) directly on one connection: about what Python can do for this request at all.
- :func:`same_layer`: a bare Starlette route that authenticates through authgraph's own
  domain and database layers (``AuthService.authenticate`` on a ``SqlUnitOfWork``): what is
  left is the cost of FastAPI and GraphQL.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from jose import JWTError, jwk, jwt
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from auth.errors import InvalidAccessToken
from auth.keys import legacy_key_id
from auth.service import AuthService
from auth.toolkit import AuthToolkit
from db.engine import create_db_engine, create_reader_engine, create_session_factory
from db.repositories import SqlUnitOfWork
from db.signing_keys import SqlSigningKeyStore
from graph.settings import Settings, load_settings

VIEWER_SQL = (
    "SELECT u.id, u.email FROM users u JOIN sessions s ON s.user_id = u.id "
    "WHERE s.id = {p} AND u.id = {p} AND s.revoked_at IS NULL AND s.expires_at > {p}"
)
UNAUTHENTICATED = {
    "data": {"viewer": None},
    "errors": [{"message": "unauthenticated", "extensions": {"code": "UNAUTHENTICATED"}}],
}
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime in SQLite

Lookup = Callable[[str, str, datetime], tuple[str, str] | None]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def _viewer(user_id: str, email: str) -> JSONResponse:
    return JSONResponse({"data": {"viewer": {"id": user_id, "email": email}}})


def _driver_lookup(database_url: str) -> tuple[Lookup, Callable[[], None]]:
    """One connection of the bare driver, and a function reading the viewer through it."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        sqlite = sqlite3.connect(url.database or ":memory:", check_same_thread=False)
        sqlite.execute("PRAGMA journal_mode=WAL")
        sqlite_sql = VIEWER_SQL.format(p="?")

        def sqlite_lookup(session_id: str, user_id: str, now: datetime) -> tuple[str, str] | None:
            stamp = now.replace(tzinfo=None).strftime(_SQLITE_DATETIME)
            row = sqlite.execute(sqlite_sql, (session_id, user_id, stamp)).fetchone()
            return None if row is None else (row[0], row[1])

        return sqlite_lookup, sqlite.close

    pg = psycopg.connect(
        url.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
    )
    pg_sql = VIEWER_SQL.format(p="%s")

    def pg_lookup(session_id: str, user_id: str, now: datetime) -> tuple[str, str] | None:
        row = pg.execute(pg_sql, (session_id, user_id, now.replace(tzinfo=None))).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    return pg_lookup, pg.close


def raw_floor() -> Starlette:
    settings = load_settings()
    secret = settings.auth.jwt_secret.reveal()
    options = {
        "require_exp": True,
        "require_iat": True,
        "require_sub": True,
        "require_iss": True,
        "require_aud": True,
        "require_jti": True,
        "leeway": 30,
    }
    lookup: list[Lookup] = []
    # kid -> (algorithm, key): the HS256 secret's, and the stored public keys read at start.
    keys: dict[str, tuple[str, Any]] = {legacy_key_id(secret): ("HS256", secret)}
    verified: dict[str, dict[str, Any]] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        found, close = _driver_lookup(settings.database.database_url)
        lookup.append(found)
        engine = create_db_engine(settings.database.database_url)
        for record in SqlSigningKeyStore(create_session_factory(engine)).all():
            keys[record.kid] = (record.algorithm, jwk.construct(json.loads(record.public_jwk)))
        engine.dispose()
        yield
        close()

    async def graphql(request: Request) -> JSONResponse:
        json.loads(await request.body())
        token = _bearer(request)
        if token is None:
            return JSONResponse({"data": {"viewer": None}})
        # Remembered once verified, as authgraph does: the floor must not pay an ES256
        # verification per request that authgraph does not pay.
        claims = verified.get(token)
        if claims is None or claims["exp"] + 30 < time.time():
            try:
                algorithm, key = keys[jwt.get_unverified_header(token)["kid"]]
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[algorithm],
                    audience=settings.auth.jwt_audience,
                    issuer=settings.auth.jwt_issuer,
                    options=options,
                )
            except (JWTError, KeyError):
                return JSONResponse(UNAUTHENTICATED)
            if len(verified) < 4096:
                verified[token] = claims
        row = lookup[0](str(claims.get("sid")), str(claims["sub"]), datetime.now(UTC))
        return JSONResponse(UNAUTHENTICATED) if row is None else _viewer(*row)

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=lifespan)


def same_layer() -> Starlette:
    settings: Settings = load_settings()
    engine = create_db_engine(settings.database.database_url)
    session_factory = create_session_factory(engine)
    toolkit = AuthToolkit(settings.auth, key_store=SqlSigningKeyStore(session_factory))
    # The same reader engine as the app: the session check as authgraph itself runs it.
    reader = create_reader_engine(engine)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        toolkit.keys.refresh()
        yield
        if reader is not engine:
            reader.dispose()
        engine.dispose()

    async def graphql(request: Request) -> JSONResponse:
        json.loads(await request.body())
        token = _bearer(request)
        if token is None:
            return JSONResponse({"data": {"viewer": None}})
        database = session_factory()
        try:
            viewer = AuthService(toolkit, SqlUnitOfWork(database, reader)).authenticate(token)
        except InvalidAccessToken:
            return JSONResponse(UNAUTHENTICATED)
        finally:
            database.close()
        return _viewer(viewer.user.id, viewer.user.email)

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=lifespan)
