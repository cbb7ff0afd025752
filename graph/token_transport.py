"""How refresh tokens travel, chosen once when the app is built (``REFRESH_TOKEN_TRANSPORT``).

``body``: in the GraphQL response and back as the ``refreshToken`` argument. ``cookie``
(for SPAs): in an HttpOnly cookie, with double-submit CSRF proof (see :mod:`graph.cookies`).
Every resolver that issues, rotates or spends a refresh token goes through one of these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fastapi import Request, Response

from auth.service import AuthResult
from graph.cookies import REFRESH_COOKIE, clear_session_cookies, csrf_proof, set_session_cookies
from graph.paths import GRAPHQL_PATH
from graph.settings import Settings


@dataclass(frozen=True, slots=True)
class PresentedToken:
    """A refresh token a request presents; ``csrf`` is the proof it came with, if it needs one."""

    token: str | None
    csrf: str | None = None


class TokenTransport(Protocol):
    refresh_in_body: bool
    """Whether the GraphQL payload carries the refresh token (else the CSRF token)."""

    def deliver(self, response: Response | None, result: AuthResult) -> None:
        """Hand the tokens of a new or rotated session to the client."""
        ...

    def presented(self, request: Request, argument: str | None) -> PresentedToken:
        """The refresh token to spend: the argument, or what the transport carries."""
        ...

    def ambient(self, request: Request) -> PresentedToken | None:
        """A refresh token the request carries without being asked (a cookie), if any."""
        ...

    def end(self, response: Response | None) -> None:
        """Forget the client's tokens (logout, deleted account)."""
        ...


class BodyTransport:
    refresh_in_body = True

    def deliver(self, response: Response | None, result: AuthResult) -> None:
        pass

    def presented(self, request: Request, argument: str | None) -> PresentedToken:
        return PresentedToken(argument)

    def ambient(self, request: Request) -> PresentedToken | None:
        return None

    def end(self, response: Response | None) -> None:
        pass


class CookieTransport:
    refresh_in_body = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def deliver(self, response: Response | None, result: AuthResult) -> None:
        assert response is not None
        set_session_cookies(response, result, result.csrf_token, self.settings, GRAPHQL_PATH)

    def presented(self, request: Request, argument: str | None) -> PresentedToken:
        if argument is not None:
            return PresentedToken(argument)
        return self._from_cookie(request)

    def ambient(self, request: Request) -> PresentedToken | None:
        presented = self._from_cookie(request)
        return presented if presented.token else None

    def end(self, response: Response | None) -> None:
        if response is not None:
            clear_session_cookies(response, self.settings, GRAPHQL_PATH)

    def _from_cookie(self, request: Request) -> PresentedToken:
        # An ambient cookie needs proof; "" never matches, so the service refuses it.
        return PresentedToken(
            request.cookies.get(REFRESH_COOKIE), csrf_proof(request, self.settings) or ""
        )


def token_transport(settings: Settings) -> TokenTransport:
    """The transport ``settings`` choose."""
    return CookieTransport(settings) if settings.http.cookie_mode else BodyTransport()
