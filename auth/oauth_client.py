"""Talking to the configured OAuth 2 / OpenID Connect providers.

Authlib does the protocol (the authorization URL, PKCE's S256 challenge, the token request)
and, with joserfc, the ID token's checks: signature by a key of the provider's JWKS with an
algorithm it announces (never ``none`` or an HMAC), ``iss``, ``aud``, ``exp``, ``iat``,
``nonce``, ``azp`` and ``at_hash``. httpx carries the calls, each bounded by
``OAUTH_TIMEOUT_SECONDS`` as a whole (not only per read: an answer dripping in byte by byte is
cut off) and read only up to ``MAX_RESPONSE_BYTES`` (a longer one is not read to its end; a
gzip answer is inflated here, bounded, never past the limit), with redirects not followed
and no proxy from the environment: requests go to the configured
provider's endpoints and nowhere else.

Every failure of a provider (refused, slow, an error status, an answer that is not what the
protocol says, a token that does not verify) is a :class:`ProviderFailure`, whose reason is
for the log only; a code the provider refuses is a :class:`CodeRejected`.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from auth.settings import OAuthProviderSettings

log = logging.getLogger("authgraph.oauth")

# Signature algorithms an ID token may use: asymmetric only (an HMAC would be keyed by the
# client secret, which we hold too), intersected with those the provider announces.
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
# Clock skew allowed on exp and iat.
LEEWAY_SECONDS = 60
# After a failed discovery, how long before a request tries again (others fail at once).
DISCOVERY_RETRY_SECONDS = 5.0
MAX_RESPONSE_BYTES = 1_000_000


class ProviderFailure(Exception):
    """The provider did not answer as the protocol says; ``reason`` is for the log."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason


class CodeRejected(ProviderFailure):
    """The token endpoint refused the code (spent, expired, another client's, wrong verifier)."""


@dataclass(frozen=True, slots=True)
class ProviderIdentity:
    """Who the provider says signed in: its stable subject and what it says of the email."""

    subject: str
    email: str | None
    email_verified: bool


@dataclass(frozen=True, slots=True)
class Endpoints:
    authorization: str
    token: str
    # OIDC
    issuer: str | None = None
    jwks: str | None = None
    userinfo: str | None = None
    algorithms: tuple[str, ...] = ()
    # GitHub
    user: str | None = None
    emails: str | None = None


def new_pkce_verifier() -> str:
    """RFC 7636 code verifier: 43 characters of base64url (256 bits)."""
    return secrets.token_urlsafe(32)


class ProviderClient:
    """One configured provider: discovery (kept once it succeeds), the redirect, the exchange."""

    def __init__(self, config: OAuthProviderSettings, *, timeout_seconds: float) -> None:
        self.config = config
        self.timeout_seconds = timeout_seconds
        self.timeout = httpx.Timeout(timeout_seconds)
        self._lock = threading.Lock()
        self._endpoints: Endpoints | None = None
        self._failed_at: float | None = None
        self._keys: KeySet | None = None

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def is_oidc(self) -> bool:
        return self.config.kind != "github"

    # -- discovery -------------------------------------------------------------------------

    def endpoints(self) -> Endpoints:
        """The provider's endpoints, discovered on first need (and retried after a failure)."""
        if self._endpoints is not None:
            return self._endpoints
        with self._lock:
            if self._endpoints is not None:
                return self._endpoints
            if self._failed_at is not None and (
                time.monotonic() - self._failed_at < DISCOVERY_RETRY_SECONDS
            ):
                raise ProviderFailure(self.id, "discovery failed moments ago")
            try:
                self._endpoints = self._discover()
            except ProviderFailure:
                self._failed_at = time.monotonic()
                raise
            self._failed_at = None
            return self._endpoints

    def discover(self) -> bool:
        """Try discovery now (at start-up); log and answer False if the provider fails."""
        try:
            self.endpoints()
        except ProviderFailure as exc:
            log.warning(
                "OAuth provider %s: discovery failed (%s); retried on use", self.id, exc.reason
            )
            return False
        return True

    def _discover(self) -> Endpoints:
        config = self.config
        if config.kind == "github":
            web, api = config.issuer_url, config.github_api_url
            return Endpoints(
                authorization=f"{web}/login/oauth/authorize",
                token=f"{web}/login/oauth/access_token",
                user=f"{api}/user",
                emails=f"{api}/user/emails",
            )
        issuer = config.issuer_url
        document = self._get_json(f"{issuer}/.well-known/openid-configuration")
        if not isinstance(document, dict):
            raise ProviderFailure(self.id, "discovery document is not a JSON object")
        # OpenID Connect Discovery 1.0, 4.3: the issuer must be exactly the one configured.
        if document.get("issuer") != issuer:
            raise ProviderFailure(self.id, "discovery document names another issuer")
        urls = {}
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            urls[key] = self._endpoint_url(document.get(key), key)
        userinfo = document.get("userinfo_endpoint")
        announced = document.get("id_token_signing_alg_values_supported") or ["RS256"]
        if not isinstance(announced, list):
            raise ProviderFailure(self.id, "discovery document's algorithms are not a list")
        algorithms = tuple(a for a in ID_TOKEN_ALGORITHMS if a in announced)
        if not algorithms:
            raise ProviderFailure(self.id, "no acceptable ID token signature algorithm")
        return Endpoints(
            issuer=issuer,
            authorization=urls["authorization_endpoint"],
            token=urls["token_endpoint"],
            jwks=urls["jwks_uri"],
            userinfo=self._endpoint_url(userinfo, "userinfo_endpoint") if userinfo else None,
            algorithms=algorithms,
        )

    def _endpoint_url(self, value: object, key: str) -> str:
        if not isinstance(value, str):
            raise ProviderFailure(self.id, f"discovery document lacks {key}")
        parts = urlsplit(value)
        issuer_scheme = urlsplit(self.config.issuer_url).scheme
        # An https issuer's endpoints are https too; http only for an http (loopback) issuer.
        if parts.scheme not in ("https", issuer_scheme) or not parts.netloc:
            raise ProviderFailure(self.id, f"discovery document's {key} is not a usable URL")
        return value

    # -- the redirect ----------------------------------------------------------------------

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        """Where to send the browser: PKCE S256 always, and the nonce for OIDC."""
        extra: dict[str, str] = {
            "code_challenge": create_s256_code_challenge(code_verifier),
            "code_challenge_method": "S256",
        }
        if self.is_oidc:
            extra["nonce"] = nonce
        url: str = prepare_grant_uri(
            self.endpoints().authorization,
            client_id=self.config.client_id,
            response_type="code",
            redirect_uri=redirect_uri,
            scope=self.config.scope,
            state=state,
            **extra,
        )
        return url

    # -- the exchange ----------------------------------------------------------------------

    def identity(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> ProviderIdentity:
        """Redeem ``code`` (with the PKCE verifier) and say who signed in."""
        endpoints = self.endpoints()
        token = self._redeem(endpoints, code, redirect_uri, code_verifier)
        access_token = token.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise ProviderFailure(self.id, "token response lacks access_token")
        if not self.is_oidc:
            return self._github_identity(endpoints, access_token)
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise ProviderFailure(self.id, "token response lacks id_token")
        claims = self._verified_claims(endpoints, id_token, nonce, access_token)
        subject = claims["sub"]
        if "email" not in claims and endpoints.userinfo:
            info = self._get_json(endpoints.userinfo, bearer=access_token)
            # OpenID Connect Core 5.3.2: userinfo's sub must be the ID token's.
            if not isinstance(info, dict) or info.get("sub") != subject:
                raise ProviderFailure(self.id, "userinfo answers for another subject")
            claims = {**info, **claims}
        email = claims.get("email")
        return ProviderIdentity(
            subject=str(subject),
            email=email if isinstance(email, str) and email else None,
            email_verified=claims.get("email_verified") is True
            or claims.get("email_verified") == "true",
        )

    def _redeem(
        self, endpoints: Endpoints, code: str, redirect_uri: str, code_verifier: str
    ) -> dict[str, Any]:
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
        )
        status, content = self._call(
            "POST",
            endpoints.token,
            "token endpoint",
            content=body,
            auth=(self.config.client_id, self.config.client_secret.reveal()),
            headers={
                "Accept": "application/json",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        answer = _json_object(content)
        error = answer.get("error") if answer is not None else None
        # RFC 6749 5.2 (GitHub answers 200 with the error in the body).
        if error in ("invalid_grant", "bad_verification_code"):
            raise CodeRejected(self.id, f"token endpoint: {error}")
        if status != 200 or answer is None or error is not None:
            raise ProviderFailure(self.id, f"token endpoint: HTTP {status}")
        return answer

    def _verified_claims(
        self, endpoints: Endpoints, id_token: str, nonce: str, access_token: str
    ) -> dict[str, Any]:
        registry = JWSRegistry(algorithms=list(endpoints.algorithms))
        try:
            try:
                decoded = jwt.decode(id_token, self._key_set(endpoints), registry=registry)
            except InvalidKeyIdError:
                # A key the cached set lacks: the provider rotated; read its JWKS again, once.
                decoded = jwt.decode(
                    id_token, self._key_set(endpoints, fresh=True), registry=registry
                )
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {
                    "iss": {"essential": True, "value": endpoints.issuer or ""},
                    "aud": {"essential": True, "value": self.config.client_id},
                    "nonce": {"essential": True, "value": nonce},
                },
                {"nonce": nonce, "client_id": self.config.client_id, "access_token": access_token},
            )
            claims.validate(now=int(time.time()), leeway=LEEWAY_SECONDS)
        except (JoseError, ValueError) as exc:
            raise ProviderFailure(self.id, f"ID token refused: {type(exc).__name__}") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise ProviderFailure(self.id, "ID token has no subject")
        return dict(claims)

    def _key_set(self, endpoints: Endpoints, *, fresh: bool = False) -> KeySet:
        if self._keys is not None and not fresh:
            return self._keys
        document = self._get_json(endpoints.jwks or "")
        try:
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ProviderFailure(self.id, f"JWKS unusable: {type(exc).__name__}") from None
        self._keys = keys
        return keys

    def _github_identity(self, endpoints: Endpoints, access_token: str) -> ProviderIdentity:
        user = self._get_json(endpoints.user or "", bearer=access_token, github=True)
        emails = self._get_json(endpoints.emails or "", bearer=access_token, github=True)
        if not isinstance(user, dict) or not isinstance(user.get("id"), int):
            raise ProviderFailure(self.id, "GitHub user answer lacks an id")
        if not isinstance(emails, list):
            raise ProviderFailure(self.id, "GitHub emails answer is not a list")
        primary = next(
            (e for e in emails if isinstance(e, dict) and e.get("primary") is True), None
        )
        email = primary.get("email") if primary else None
        return ProviderIdentity(
            # GitHub's numeric id is stable; the login name can be changed and reused.
            subject=str(user["id"]),
            email=email if isinstance(email, str) and email else None,
            email_verified=bool(primary and primary.get("verified") is True),
        )

    # -- HTTP ------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        # Only encodings _call inflates itself (httpx would inflate a chunk to any size).
        return httpx.Client(
            timeout=self.timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"Accept-Encoding": ", ".join(_ENCODINGS)},
        )

    def _get_json(self, url: str, *, bearer: str | None = None, github: bool = False) -> object:
        headers = {"Accept": "application/vnd.github+json" if github else "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        where = f"GET {urlsplit(url).path or '/'}"
        status, content = self._call("GET", url, where, headers=headers)
        if status != 200:
            raise ProviderFailure(self.id, f"{where}: HTTP {status}")
        try:
            return _parse_json(content)
        except ValueError:
            raise ProviderFailure(self.id, f"{where}: not JSON") from None

    def _call(self, method: str, url: str, where: str, **request: Any) -> tuple[int, bytes]:
        """One request: its status and body, read within the timeout and the size limit.

        httpx's timeouts bound each read; the deadline here bounds the whole answer, and the
        body is read only up to MAX_RESPONSE_BYTES (a larger one is dropped unread).
        """
        deadline = time.monotonic() + self.timeout_seconds
        body = bytearray()
        try:
            with self._http() as http, http.stream(method, url, **request) as response:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                    raise ProviderFailure(self.id, f"{where}: answer too large")
                encoding = response.headers.get("content-encoding", "identity").strip().lower()
                make_inflater = _ENCODINGS.get(encoding or "identity")
                if make_inflater is None:
                    raise ProviderFailure(self.id, f"{where}: unasked-for content encoding")
                inflate = make_inflater()
                for chunk in response.iter_raw():
                    body += inflate(chunk, MAX_RESPONSE_BYTES + 1 - len(body))
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise ProviderFailure(self.id, f"{where}: answer too large")
                    if time.monotonic() > deadline:
                        raise ProviderFailure(self.id, f"{where}: answer too slow")
                return response.status_code, bytes(body)
        except httpx.HTTPError as exc:
            raise ProviderFailure(self.id, f"{where}: {type(exc).__name__}") from None
        except zlib.error:
            raise ProviderFailure(self.id, f"{where}: bad compressed answer") from None


Inflate = Callable[[bytes, int], bytes]  # (raw chunk, most bytes wanted) -> bytes


def _identity() -> Inflate:
    return lambda chunk, most: chunk


def _gzip() -> Inflate:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def inflate(chunk: bytes, most: int) -> bytes:
        # max_length bounds the output: a bomb yields at most ``most`` bytes (the caller then
        # refuses the answer as too large); what it did not inflate is dropped.
        return inflater.decompress(chunk, max(1, most))

    return inflate


# Content encodings asked for and inflated here, bounded.
_ENCODINGS: dict[str, Callable[[], Inflate]] = {
    "identity": _identity,
    "gzip": _gzip,
}


def _parse_json(content: bytes) -> object:
    """JSON from a provider; ``ValueError`` for anything else, arrays nested past the parser's
    recursion limit included (``[`` a hundred thousand times is well under the size limit)."""
    try:
        return json.loads(content)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = _parse_json(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class ProviderRegistry:
    """The configured providers, by id, in ``OAUTH_PROVIDERS`` order."""

    def __init__(self, configs: tuple[OAuthProviderSettings, ...], *, timeout_seconds: float):
        self._clients = {c.id: ProviderClient(c, timeout_seconds=timeout_seconds) for c in configs}

    def get(self, provider_id: str) -> ProviderClient | None:
        return self._clients.get(provider_id)

    def all(self) -> list[ProviderClient]:
        return list(self._clients.values())

    def discover_all(self) -> None:
        """Discovery for every OIDC provider now; failures are logged, not fatal."""
        for client in self._clients.values():
            if client.is_oidc:
                client.discover()
