"""Cookie mode for SPAs: the refresh token in an HttpOnly cookie, guarded by double-submit CSRF."""

from __future__ import annotations

from fastapi import Request, Response
from starlette.requests import HTTPConnection

from auth.ports import ClientInfo
from auth.service import AuthResult
from graph.client import DEVICE_COOKIE, presented_device, request_scheme
from graph.settings import Settings

REFRESH_COOKIE = "authgraph_refresh"
CSRF_COOKIE = "authgraph_csrf"
CSRF_HEADER = "x-csrf-token"


def set_session_cookies(
    response: Response, result: AuthResult, csrf: str, settings: Settings, path: str
) -> None:
    max_age = max(0, int((result.refresh_expires_at - result.access.expires_at).total_seconds()))
    max_age += settings.auth.access_token_ttl_seconds
    response.set_cookie(
        REFRESH_COOKIE,
        result.refresh_token,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=settings.is_production,
    )
    # Readable by the page's own scripts, so they can echo it in the X-CSRF-Token header.
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=max_age,
        path="/",
        httponly=False,
        samesite="strict",
        secure=settings.is_production,
    )
    response.headers["X-CSRF-Token"] = csrf


# About 400 days: the longest lifetime browsers accept for a cookie (RFC 6265bis).
DEVICE_COOKIE_MAX_AGE = 400 * 24 * 3600


def remember_device(
    response: Response, request: Request, client: ClientInfo, settings: Settings
) -> None:
    """After a sign-in, give a browser that had no device cookie the one it was known by.

    HttpOnly and random; the server keeps only its hash, per user (``known_devices``). It is
    sent to every path (``/graphql`` and ``/token``) but never to another site (``Lax``).
    """
    if client.device_token is None or presented_device(request) == client.device_token:
        return
    response.set_cookie(
        DEVICE_COOKIE,
        client.device_token,
        max_age=DEVICE_COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.is_production,
    )


def clear_session_cookies(response: Response, settings: Settings, path: str) -> None:
    response.delete_cookie(
        REFRESH_COOKIE, path=path, httponly=True, samesite="strict", secure=settings.is_production
    )
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="strict", secure=settings.is_production)


def request_origin_allowed(request: HTTPConnection, settings: Settings) -> bool:
    """Whether ``Origin`` is this server's own or one of ``CORS_ORIGINS``."""
    origin = request.headers.get("origin")
    if not origin:
        return False
    # Behind a proxy that terminates TLS the socket is plain HTTP but the page was https.
    scheme = request_scheme(request, settings.http.trusted_proxies)
    own = f"{scheme}://{request.headers.get('host', '')}"
    return origin == own or origin in settings.http.cors_origins


def csrf_proof(request: Request, settings: Settings) -> str | None:
    """The CSRF token of a request that carries valid double-submit proof, else ``None``."""
    return double_submitted(request, request.headers.get(CSRF_HEADER), settings)


def double_submitted(
    connection: HTTPConnection, presented: str | None, settings: Settings
) -> str | None:
    """``presented`` if it equals the connection's CSRF cookie and its Origin is allowed.

    The proof travels in the ``X-CSRF-Token`` header on HTTP and in ``connection_init``'s
    payload on a WebSocket (graph.live); the check is the same.
    """
    cookie = connection.cookies.get(CSRF_COOKIE)
    if not presented or presented != cookie or not request_origin_allowed(connection, settings):
        return None
    return presented


# Binds a social sign-in attempt to the browser that started it (auth.oauth): HttpOnly, and
# SameSite=Lax so that it is sent on the top-level return from the provider yet never on a
# cross-site POST.
OAUTH_COOKIE = "authgraph_oauth"


def set_oauth_cookie(
    response: Response, value: str, max_age: int, settings: Settings, path: str
) -> None:
    response.set_cookie(
        OAUTH_COOKIE,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="lax",
        secure=settings.is_production,
    )
