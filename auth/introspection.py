"""Token introspection (RFC 7662) for resource servers that must see a revocation at once.

Clients authenticate with ``client_secret_basic`` against ``INTROSPECTION_CLIENTS``: the
secrets are hashed as the settings are read and compared in constant time. The answer for a
token that is not good is ``{"active": false}`` and nothing else, whatever the reason
(expired, forged, revoked session, deleted user): RFC 7662 §2.2 and §4.
"""

from __future__ import annotations

from typing import Any

from auth import errors
from auth.guards import throttle
from auth.introspection_clients import IntrospectionClient, authenticate_client
from auth.service import AuthService

INACTIVE: dict[str, Any] = {"active": False}
__all__ = ["INACTIVE", "IntrospectionClient", "authenticate_client", "introspect"]


def introspect(service: AuthService, token: str) -> dict[str, Any]:
    """RFC 7662's answer for ``token``: its claims while its session is live, else inactive."""
    try:
        claims = service.toolkit.tokens.verify(token)
        viewer = service.authenticate(token)
    except errors.InvalidAccessToken:
        return dict(INACTIVE)
    tokens = service.toolkit.tokens
    answer: dict[str, Any] = {
        "active": True,
        "token_type": "Bearer",
        "sub": viewer.user.id,
        "sid": viewer.session.id,
        "jti": claims.token_id,
        "iss": tokens.issuer,
        "aud": tokens.audience,
        "iat": int(claims.issued_at.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
        "username": viewer.user.email,
    }
    if claims.client_id is not None:
        answer["client_id"] = claims.client_id
    return answer


def throttle_introspection(service: AuthService, ip_address: str | None) -> None:
    """Count one call per client address (``INTROSPECTION_RATE_LIMIT``), before any check."""
    limit = service.settings.introspection_rate_limit
    throttle(service.toolkit, (limit, "introspect-ip", ip_address))
