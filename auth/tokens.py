"""Access tokens (signed JWTs) and opaque tokens (refresh and emailed tokens).

Access tokens follow RFC 9068 and RFC 8725: ``typ: at+jwt``; ``kid`` in every header; the
key is chosen by ``kid`` from the process's key ring (:mod:`auth.keys`), never from the
token (``jwk``, ``jku``, ``x5u`` and ``x5c`` headers are ignored), and the algorithm is pinned
to that key's; ``exp``, ``iat``, ``sub``, ``iss``, ``aud``, ``jti`` and ``sid`` are required,
issuer and audience checked.
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
from auth.keys import KeyRing, legacy_key_id

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
# What this module's tokens must carry beyond the registered claims python-jose requires.
REQUIRED_STRING_CLAIMS = ("sid",)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says about its bearer."""

    user_id: str
    session_id: str
    token_id: str
    expires_at: datetime
    issued_at: datetime
    # RFC 9068's client_id: the OAuth client of a /token grant; None for GraphQL logins.
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str
    expires_at: datetime


def key_id(secret: str) -> str:
    """The ``kid`` of an HS256 secret (:func:`auth.keys.legacy_key_id`)."""
    return legacy_key_id(secret)


class AccessTokenCodec:
    """Issues and verifies access tokens with the keys of a :class:`auth.keys.KeyRing`."""

    def __init__(
        self,
        keys: KeyRing,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        epoch_clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self._epoch_clock = epoch_clock
        # token -> (the last second it is still valid, its kid, its claims)
        self._verified: dict[str, tuple[float, str, AccessClaims]] = {}
        self._verified_lock = threading.Lock()
        self.issuer = issuer
        self.audience = audience
        self.ttl = timedelta(seconds=ttl_seconds)

    def claims_for(
        self,
        *,
        user_id: str,
        session_id: str,
        now: datetime,
        client_id: str | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The claims of a new token; ``extra_claims`` (the assurance: ``aal``, ``amr``,
        ``auth_time``) join the registered ones, which they cannot replace."""
        claims: dict[str, Any] = {
            **(extra_claims or {}),
            "sub": user_id,
            "sid": session_id,
            "jti": uuid.uuid4().hex,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(now.timestamp()),
            "exp": int((now + self.ttl).timestamp()),
        }
        if client_id is not None:
            claims["client_id"] = client_id
        return claims

    def issue(
        self,
        *,
        user_id: str,
        session_id: str,
        now: datetime,
        client_id: str | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> IssuedAccessToken:
        """Sign a token with the current key (see :meth:`claims_for`)."""
        claims = self.claims_for(
            user_id=user_id,
            session_id=session_id,
            now=now,
            client_id=client_id,
            extra_claims=extra_claims,
        )
        signer = self.keys.signer()
        token = jwt.encode(
            claims,
            signer.key,
            algorithm=signer.algorithm,
            headers={"kid": signer.kid, "typ": TOKEN_TYPE},
        )
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        return IssuedAccessToken(token=token, expires_at=expires_at)

    def verify(self, token: str) -> AccessClaims:
        """Return the claims of a valid token, or raise :class:`InvalidAccessToken`.

        A token verified before is only checked for expiry and for its key still being
        trusted (an emergency ``retire`` ends it at once): its signature and claims cannot
        have changed. Whether its session is still live is the caller's question, asked on
        every request.
        """
        now = self._epoch_clock()
        known = self._known(token, now)
        if known is not None:
            return known
        kid, claims = self._verify(token, now)
        with self._verified_lock:
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                # Forget the oldest: dicts keep insertion order.
                self._verified.pop(next(iter(self._verified)))
            self._verified[token] = (claims.expires_at.timestamp() + LEEWAY_SECONDS, kid, claims)
        return claims

    def known(self, token: str) -> AccessClaims | None:
        """:meth:`verify` for a token verified before: no signature check, no key fetch, so
        nothing that could wait. ``None`` for a token not seen yet (call :meth:`verify`)."""
        return self._known(token, self._epoch_clock())

    def _known(self, token: str, now: float) -> AccessClaims | None:
        known = self._verified.get(token)
        if known is None:
            return None
        valid_until, kid, claims = known
        key = self.keys.key_set.verification.get(kid)
        if now > valid_until or key is None or not key.accepts_at(now):
            raise InvalidAccessToken
        return claims

    def _verify(self, token: str, now: float) -> tuple[str, AccessClaims]:
        try:
            header = jwt.get_unverified_header(token)
            kid = header.get("kid")
            if not isinstance(kid, str) or header.get("typ") != TOKEN_TYPE:
                raise InvalidAccessToken
            key = self.keys.find(kid)
            if key is None or header.get("alg") != key.algorithm or not key.accepts_at(now):
                raise InvalidAccessToken
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options=_DECODE_OPTIONS,
            )
            for name in REQUIRED_STRING_CLAIMS:
                if not isinstance(claims.get(name), str):
                    raise InvalidAccessToken
            issued, expires = int(claims["iat"]), int(claims["exp"])
            if key.issued_before is not None and (
                issued > key.issued_before
                or expires - issued > self.ttl.total_seconds() + LEEWAY_SECONDS
            ):
                # A legacy HS256 key under an asymmetric algorithm: only what it signed
                # before the switch, and nothing longer-lived than a token ever was.
                raise InvalidAccessToken
            client_id = claims.get("client_id")
            return kid, AccessClaims(
                user_id=claims["sub"],
                session_id=claims["sid"],
                token_id=str(claims["jti"]),
                expires_at=datetime.fromtimestamp(expires, UTC),
                issued_at=datetime.fromtimestamp(issued, UTC),
                client_id=client_id if isinstance(client_id, str) else None,
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
