"""Access tokens (signed JWTs) and opaque tokens (refresh and emailed tokens).

Access tokens follow RFC 8725: the algorithm is pinned to HS256, ``exp``, ``iat``, ``sub``,
``iss``, ``aud``, ``jti`` and ``sid`` are required, issuer and audience are checked, the
``typ`` header keeps them apart from any other JWT, and keys are chosen by ``kid`` from a
fixed map (the current secret plus previous ones during a rotation), never from the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jose import JWTError, jwt

from auth.errors import InvalidAccessToken

ALGORITHM = "HS256"
TOKEN_TYPE = "at+jwt"  # RFC 9068's media type for access tokens
LEEWAY_SECONDS = 30
# Verified tokens remembered per process (about 1 KiB each). A client sends the same token
# for its whole lifetime; checking its signature and claims once is enough.
VERIFIED_CACHE_SIZE = 4096
_DECODE_OPTIONS = {
    "require_exp": True,
    "require_iat": True,
    "require_sub": True,
    "require_iss": True,
    "require_aud": True,
    "require_jti": True,
    "leeway": LEEWAY_SECONDS,
}


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says about its bearer."""

    user_id: str
    session_id: str
    token_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str
    expires_at: datetime


def key_id(secret: str) -> str:
    """A short, non-reversible name for a key, carried in the ``kid`` header."""
    return hashlib.sha256(b"authgraph-kid:" + secret.encode()).hexdigest()[:16]


class AccessTokenCodec:
    """Issues and verifies access tokens with a fixed set of keys."""

    def __init__(
        self,
        secret: str,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        previous_secrets: tuple[str, ...] = (),
        epoch_clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._epoch_clock = epoch_clock
        # token -> (the last second it is still valid, its claims)
        self._verified: dict[str, tuple[float, AccessClaims]] = {}
        self._verified_lock = threading.Lock()
        self._kid = key_id(secret)
        self._keys = {key_id(s): s for s in (*previous_secrets, secret)}
        self.issuer = issuer
        self.audience = audience
        self.ttl = timedelta(seconds=ttl_seconds)

    def issue(
        self,
        *,
        user_id: str,
        session_id: str,
        now: datetime,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> IssuedAccessToken:
        """Sign a token; ``extra_claims`` (the assurance: ``aal``, ``amr``, ``auth_time``) join."""
        expires_at = now + self.ttl
        claims: dict[str, Any] = {
            **(extra_claims or {}),
            "sub": user_id,
            "sid": session_id,
            "jti": uuid.uuid4().hex,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        token = jwt.encode(
            claims, self._secret, algorithm=ALGORITHM, headers={"kid": self._kid, "typ": TOKEN_TYPE}
        )
        return IssuedAccessToken(token=token, expires_at=expires_at.replace(microsecond=0))

    def verify(self, token: str) -> AccessClaims:
        """Return the claims of a valid token, or raise :class:`InvalidAccessToken`.

        A token verified before is only checked for expiry: its signature and claims cannot
        have changed, and the keys are fixed for the life of the process. Whether its
        session is still live is the caller's question, asked on every request.
        """
        known = self._verified.get(token)
        if known is not None:
            valid_until, claims = known
            if self._epoch_clock() > valid_until:
                raise InvalidAccessToken
            return claims
        claims = self._verify(token)
        with self._verified_lock:
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                # Forget the oldest: dicts keep insertion order.
                self._verified.pop(next(iter(self._verified)))
            self._verified[token] = (claims.expires_at.timestamp() + LEEWAY_SECONDS, claims)
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(str(header.get("kid")))
            if key is None or header.get("typ") != TOKEN_TYPE or header.get("alg") != ALGORITHM:
                raise InvalidAccessToken
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options=_DECODE_OPTIONS,
            )
            session_id = claims.get("sid")
            if not isinstance(session_id, str):
                raise InvalidAccessToken
            return AccessClaims(
                user_id=claims["sub"],
                session_id=session_id,
                token_id=str(claims["jti"]),
                expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            )
        except (JWTError, KeyError, TypeError, ValueError, AttributeError):
            raise InvalidAccessToken from None


def new_opaque_token() -> str:
    """256 bits from the OS CSPRNG, URL-safe: for refresh tokens and emailed links."""
    return secrets.token_urlsafe(32)


def hash_opaque_token(token: str) -> str:
    """Opaque tokens are stored only as this digest; the token itself is never kept."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(secret: str, session_id: str) -> str:
    """The double-submit CSRF token of a session: stable for its life, unguessable without the key.

    Binding it to the session means a cookie planted by a sibling subdomain cannot pass.
    """
    digest = hmac.new(secret.encode(), b"authgraph-csrf:" + session_id.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")
