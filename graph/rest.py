"""Plain HTTP routes beside GraphQL: the OAuth2 password grant and health probes."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from auth.errors import AuthError, RateLimited, SecondFactorRequired, ServiceUnavailable
from auth.service import AuthResult, AuthService
from graph.client import client_info
from graph.context import LazyDatabase, request_database
from graph.errors import RETRY_AFTER_SECONDS, report_outages
from graph.root import AppState
from graph.runner import in_hash_lane

router = APIRouter()


@router.post(
    "/token",
    summary="OAuth2 password grant",
    description=(
        "Log in with a form (`username` = email, `password`) and get a bearer access token. "
        "The same accounts and sessions as the GraphQL `login` mutation."
    ),
    responses={
        400: {"description": "`invalid_grant`: the account requires a second factor."},
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
) -> JSONResponse:
    state: AppState = request.app.state.authgraph
    service = state.service(AuthService, database.session)
    client = client_info(request, state.settings.http.trusted_proxies)
    try:
        result = await in_hash_lane(
            state.hash_lane, service.login, username, password, client, second_step=False
        )
    except SecondFactorRequired as exc:
        # RFC 6749 section 5.2: the grant (these credentials alone) is not enough.
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
        report_outages(state.outages, [exc])
        return JSONResponse(
            {"detail": exc.public_message, "retry_after": RETRY_AFTER_SECONDS},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    except AuthError as exc:
        return JSONResponse(
            {"detail": exc.public_message},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    assert isinstance(result, AuthResult)  # second_step=False: never a challenge
    return JSONResponse(
        {
            "access_token": result.access.token,
            "token_type": "bearer",
            "expires_in": state.settings.auth.access_token_ttl_seconds,
        },
        headers={"Cache-Control": "no-store"},
    )


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
