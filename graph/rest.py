"""Plain HTTP routes beside GraphQL: the OAuth2 password grant and health probes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from auth.errors import AuthError, RateLimited
from graph.client import client_info
from graph.context import LazyDatabase, request_database
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
        401: {"description": "Invalid email or password."},
        429: {"description": "Too many attempts; `Retry-After` says how many seconds to wait."},
    },
)
async def token(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    database: Annotated[LazyDatabase, Depends(request_database)],
) -> JSONResponse:
    state: AppState = request.app.state.authgraph
    service = state.auth_service(database.session)
    client = client_info(request, state.settings.trusted_proxies)
    try:
        result = await in_hash_lane(state.hash_lane, service.login, username, password, client)
    except RateLimited as exc:
        return JSONResponse(
            {"detail": exc.public_message, "retry_after": exc.retry_after},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except AuthError as exc:
        return JSONResponse(
            {"detail": exc.public_message},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return JSONResponse(
        {
            "access_token": result.access.token,
            "token_type": "bearer",
            "expires_in": state.settings.access_token_ttl_seconds,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/healthz", summary="Liveness: 200 while the process is up.")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", summary="Readiness: 200 only when the database and the rate-limit storage answer."
)
async def readyz(
    request: Request,
    database: Annotated[LazyDatabase, Depends(request_database)],
) -> JSONResponse:
    state: AppState = request.app.state.authgraph
    database_ok = await run_in_threadpool(state.unit_of_work(database.session).ping)
    # Logins cannot be counted, so cannot be served, while the rate-limit storage is down.
    limits_ok = await run_in_threadpool(state.limiter.healthy)
    ok = database_ok and limits_ok
    return JSONResponse(
        {
            "status": "ok" if ok else "unavailable",
            "database": database_ok,
            "rate_limit_storage": limits_ok,
        },
        status_code=200 if ok else 503,
    )
