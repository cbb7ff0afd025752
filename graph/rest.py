"""Plain HTTP routes beside GraphQL: the OAuth2 password grant and health probes."""

from __future__ import annotations

import base64
import functools
from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from auth.errors import (
    AccountDisabled,
    AuthError,
    RateLimited,
    SecondFactorRequired,
    ServiceUnavailable,
)
from auth.introspection import authenticate_client, introspect, throttle_introspection
from auth.service import AuthResult, AuthService
from graph.client import client_info
from graph.context import LazyDatabase, request_database
from graph.cookies import remember_device
from graph.errors import RETRY_AFTER_SECONDS, report_outages
from graph.root import AppState
from graph.runner import in_hash_lane

router = APIRouter()
MAX_CLIENT_ID_LENGTH = 128
# The client_id claim of a /token grant whose form names none.
DEFAULT_CLIENT_ID = "password-grant"
# Far above any token this server issues; a larger one is answered 422 unread.
MAX_INTROSPECTED_TOKEN_LENGTH = 8192


@router.post(
    "/token",
    summary="OAuth2 password grant",
    description=(
        "Log in with a form (`username` = email, `password`) and get a bearer access token. "
        "The same accounts and sessions as the GraphQL `login` mutation."
    ),
    responses={
        400: {
            "description": "`invalid_grant`: the account requires a second factor, or (the "
            "password being right) is disabled."
        },
        401: {"description": "Invalid email or password."},
        429: {"description": "Too many attempts; `Retry-After` says how many seconds to wait."},
        503: {
            "description": "The database or the rate-limit storage is unavailable; retry "
            "after `Retry-After` seconds."
        },
    },
)
async def token(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    database: Annotated[LazyDatabase, Depends(request_database)],
    client_id: Annotated[str | None, Form(max_length=MAX_CLIENT_ID_LENGTH)] = None,
) -> JSONResponse:
    state: AppState = request.app.state.authgraph
    service = state.service(AuthService, database.session)
    client = client_info(request, state.settings.http.trusted_proxies)
    # RFC 9068 asks for client_id in every token from this endpoint. There is no client
    # registry: the name is the caller's own, for its resource servers' logs and policies.
    login = functools.partial(service.login, client_id=client_id or DEFAULT_CLIENT_ID)
    try:
        result = await in_hash_lane(
            state.hash_lane, login, username, password, client, second_step=False
        )
    except (SecondFactorRequired, AccountDisabled) as exc:
        # RFC 6749 section 5.2: the grant (these credentials alone) is not enough, or the
        # resource owner may not use it. Only ever after the password was right.
        return JSONResponse(
            {
                "error": "invalid_grant",
                "error_description": exc.public_message,
                "detail": exc.public_message,
            },
            status_code=400,
            headers={"Cache-Control": "no-store"},
        )
    except RateLimited as exc:
        return JSONResponse(
            {"detail": exc.public_message, "retry_after": exc.retry_after},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except ServiceUnavailable as exc:
        return _unavailable(state, exc)
    except AuthError as exc:
        return JSONResponse(
            {"detail": exc.public_message},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    assert isinstance(result, AuthResult)  # second_step=False: never a challenge
    response = JSONResponse(
        {
            "access_token": result.access.token,
            "token_type": "bearer",
            "expires_in": state.settings.auth.access_token_ttl_seconds,
        },
        headers={"Cache-Control": "no-store"},
    )
    remember_device(response, request, client, state.settings)
    return response


@router.post(
    "/introspect",
    summary="Token introspection (RFC 7662)",
    description=(
        "For resource servers that must see a revocation at once. Authenticate with HTTP Basic "
        "(`client_secret_basic`) as one of `INTROSPECTION_CLIENTS`; send `token` as a form "
        'field. The answer is `{"active": false}` for any token that is not good, whatever '
        "the reason."
    ),
    responses={
        401: {"description": "Missing or wrong client credentials."},
        429: {"description": "Too many calls; `Retry-After` says how many seconds to wait."},
    },
)
async def introspect_token(
    request: Request,
    token: Annotated[str, Form(max_length=MAX_INTROSPECTED_TOKEN_LENGTH)],
    database: Annotated[LazyDatabase, Depends(request_database)],
    token_type_hint: Annotated[str | None, Form(max_length=64)] = None,
) -> JSONResponse:
    state: AppState = request.app.state.authgraph
    service = state.service(AuthService, database.session)
    client = client_info(request, state.settings.http.trusted_proxies)
    no_store = {"Cache-Control": "no-store"}
    try:
        # The count may live in Redis: a network call, so off the event loop.
        await run_in_threadpool(throttle_introspection, service, client.ip_address)
    except ServiceUnavailable as exc:
        return _unavailable(state, exc, no_store)
    except RateLimited as exc:
        return JSONResponse(
            {"error": "rate_limited", "retry_after": exc.retry_after},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after), **no_store},
        )
    credentials = _basic_credentials(request.headers.get("authorization"))
    clients = state.settings.auth.introspection_clients
    if credentials is None or not authenticate_client(clients, *credentials):
        return JSONResponse(
            {"error": "invalid_client"},
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="introspection"', **no_store},
        )
    # The hint is only a hint (RFC 7662 §2.1): refresh tokens are never introspected here.
    try:
        answer = await run_in_threadpool(introspect, service, token)
    except ServiceUnavailable as exc:
        return _unavailable(state, exc, no_store)
    return JSONResponse(answer, headers=no_store)


def _unavailable(
    state: AppState, exc: ServiceUnavailable, headers: dict[str, str] | None = None
) -> JSONResponse:
    """503 with Retry-After for a REST route whose database or rate-limit storage is down."""
    report_outages(state.outages, [exc])
    return JSONResponse(
        {"detail": exc.public_message, "retry_after": RETRY_AFTER_SECONDS},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS), **(headers or {})},
    )


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(client_id, secret)`` of an ``Authorization: Basic`` header (RFC 6749 §2.3.1)."""
    if header is None or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    # Form-urlencoded before base64, as RFC 6749 asks.
    return unquote_plus(client_id), unquote_plus(secret)


@router.get("/healthz", summary="Liveness: 200 while the process is up.")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary=(
        "Readiness: 200 only when the database answers and takes a committed write, and the "
        "rate-limit storage answers."
    ),
)
async def readyz(
    request: Request,
    database: Annotated[LazyDatabase, Depends(request_database)],
) -> JSONResponse:
    state: AppState = request.app.state.authgraph
    unit_of_work = state.unit_of_work(database.session)
    database_ok = await run_in_threadpool(unit_of_work.ping)
    # A full disk or a read-only database (a failed-over standby) still answers SELECT 1:
    # only a committed write tells. Not tried when the database does not answer at all.
    writable = database_ok and await run_in_threadpool(
        functools.partial(unit_of_work.probe_write, now=state.toolkit.clock())
    )
    # Logins cannot be counted, so cannot be served, while the rate-limit storage is down.
    limits_ok = await run_in_threadpool(state.limiter.healthy)
    ok = database_ok and writable and limits_ok
    return JSONResponse(
        {
            "status": "ok" if ok else "unavailable",
            "database": database_ok,
            "database_writable": writable,
            "rate_limit_storage": limits_ok,
        },
        status_code=200 if ok else 503,
    )
