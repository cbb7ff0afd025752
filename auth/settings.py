"""The domain's settings: tokens, sessions, passwords, rate limits and emailed links.

Declared once here (see :mod:`auth.config`); the composition root loads them with the
other layers' sections. In production the loader refuses a missing or weak ``JWT_SECRET`` and
a low ``BCRYPT_ROUNDS`` and names the setting; in development it fills in safe local defaults.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from auth.config import (
    Parse,
    Secret,
    Source,
    Unset,
    check_id,
    comma_list,
    load_keyed,
    load_section,
    render,
    setting,
)
from auth.errors import ConfigurationError
from auth.hashing import usable_cores
from auth.introspection_clients import IntrospectionClient, hash_client_secret
from auth.keys import ALGORITHMS, ASYMMETRIC_ALGORITHMS
from auth.ratelimit import validate_limit, validate_storage_uri

log = logging.getLogger("authgraph.settings")

MIN_SECRET_BYTES = 32
WEBHOOK_SECRET_PREFIX = "whsec_"
MIN_PRODUCTION_BCRYPT_ROUNDS = 10
HASH_QUEUE_PER_WORKER = 4
# Values copied from examples and tutorials; a deployment that kept one is not secret.
KNOWN_PLACEHOLDER_SECRETS = frozenset(
    {
        "secret",
        "changeme",
        "change-me",
        "change_me",
        "supersecret",
        "your-secret-key",
        "your_secret_key",
        "jwt_secret",
        "jwt-secret",
        "replace-me-with-at-least-32-random-bytes",
        "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",
    }
)


HOW_TO_GENERATE = 'e.g. python -c "import secrets; print(secrets.token_urlsafe(48))"'


def _checked_secret(name: str) -> Parse:
    """A key's parser: refused in production when weak (naming it), a warning in development."""

    def parse(raw: str, source: Source) -> Secret:
        problem = secret_problem(raw)
        if problem and source.production:
            raise ConfigurationError(f"{name} {problem}.")
        if problem:
            log.warning("%s %s; this is refused in production.", name, problem)
        return Secret(raw)

    return parse


def _checked_secrets(name: str) -> Parse:
    """A comma-separated list of older keys, each held to the same checks as the current one."""
    check = _checked_secret(name)

    def parse(raw: str, source: Source) -> tuple[Secret, ...]:
        return tuple(check(key, source) for key in comma_list(raw))

    return parse


def _generated_in_development(name: str, file_variable: str, default_file: str, need: str) -> Unset:
    """A key left unset: production refuses to start (naming it and ``need``); development
    generates one and keeps it in a file, so that what it protects survives a restart."""

    def unset(source: Source) -> Secret:
        if source.production:
            raise ConfigurationError(f"{name} is not set. {need}, {HOW_TO_GENERATE}")
        path = Path(source.environ.get(file_variable, default_file))
        return Secret(_dev_secret(path, name))

    return unset


_jwt_secret = _checked_secret("JWT_SECRET")
_jwt_secret_unset = _generated_in_development(
    "JWT_SECRET",
    "AUTHGRAPH_DEV_SECRET_FILE",
    ".authgraph-dev-secret",
    "Production needs at least 32 random bytes",
)


def _jwt_algorithm(raw: str, source: Source) -> str:
    choice = raw.upper()
    if choice not in ALGORITHMS:
        raise ConfigurationError(
            f"JWT_ALGORITHM must be one of {', '.join(ALGORITHMS)}; got {raw!r}."
        )
    return choice


def _asymmetric(source: Source) -> bool:
    raw = source.environ.get("JWT_ALGORITHM", "").strip().upper()
    return (raw or AuthSettings.jwt_algorithm) in ASYMMETRIC_ALGORITHMS


_key_encryption_key = _checked_secret("KEY_ENCRYPTION_KEY")
_generated_key_encryption_key = _generated_in_development(
    "KEY_ENCRYPTION_KEY",
    "AUTHGRAPH_DEV_KEK_FILE",
    ".authgraph-dev-key-encryption-key",
    "Production with an asymmetric JWT_ALGORITHM needs it to encrypt the private signing "
    "keys: at least 32 random bytes, kept apart from the database",
)


def _key_encryption_key_unset(source: Source) -> Secret | None:
    # HS256 signs with JWT_SECRET: there is no private key to encrypt.
    return _generated_key_encryption_key(source) if _asymmetric(source) else None


def _introspection_clients(raw: str, source: Source) -> tuple[IntrospectionClient, ...]:
    clients = []
    for pair in comma_list(raw):
        client_id, sep, secret = pair.partition(":")
        if not sep or not client_id.strip() or not secret:
            # The value is not echoed: it holds secrets.
            raise ConfigurationError(
                "INTROSPECTION_CLIENTS must be comma-separated client_id:client_secret pairs."
            )
        problem = secret_problem(secret)
        if problem and source.production:
            raise ConfigurationError(
                f"INTROSPECTION_CLIENTS: the secret of {client_id.strip()!r} {problem}."
            )
        clients.append(IntrospectionClient(client_id.strip(), hash_client_secret(secret)))
    return tuple(clients)


_mfa_key = _checked_secret("MFA_ENCRYPTION_KEY")
_mfa_key_unset = _generated_in_development(
    "MFA_ENCRYPTION_KEY",
    "AUTHGRAPH_DEV_MFA_KEY_FILE",
    ".authgraph-dev-mfa-key",
    "Production needs at least 32 random bytes of its own (not JWT_SECRET) to encrypt TOTP secrets",
)


def _app_url(raw: str, source: Source) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ConfigurationError(f"APP_URL must start with http:// or https://, got {raw!r}.")
    return raw.rstrip("/")


def _app_url_unset(source: Source) -> str:
    if source.production:
        raise ConfigurationError(
            "APP_URL is not set. Production needs the base URL of the links in emails, "
            "e.g. https://app.example.com."
        )
    return AuthSettings.app_url


DEV_WEBAUTHN_RP_ID = "localhost"
# `make run` (GraphiQL) and `make spa` (the example SPA).
DEV_WEBAUTHN_ORIGINS = ("http://localhost:8000", "http://localhost:5173")


def _webauthn_rp_id(raw: str, source: Source) -> str:
    value = raw.strip().lower()
    if "/" in value or ":" in value:
        raise ConfigurationError(
            f"WEBAUTHN_RP_ID is a domain (example.com), not a URL or host:port; got {raw!r}."
        )
    return value


def _webauthn_rp_id_unset(source: Source) -> str:
    # Production: passkeys are off unless configured. Development: fit make run / make spa.
    return "" if source.production else DEV_WEBAUTHN_RP_ID


def _webauthn_origins(raw: str, source: Source) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
            raise ConfigurationError(
                f"WEBAUTHN_ORIGINS takes exact origins (https://app.example.com), got {origin!r}."
            )
    return origins


def _webauthn_origins_unset(source: Source) -> tuple[str, ...]:
    return () if source.production else DEV_WEBAUTHN_ORIGINS


def webhook_key(secret: Secret) -> bytes:
    """The HMAC key of a ``whsec_...`` secret (the bytes its base64 part encodes)."""
    return base64.b64decode(secret.reveal().removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)


def _webhook_secret(raw: str, source: Source) -> Secret:
    if not raw.startswith(WEBHOOK_SECRET_PREFIX):
        raise ConfigurationError("WEBHOOK_SECRET must start with whsec_ (Standard Webhooks).")
    try:
        key = webhook_key(Secret(raw))
    except (ValueError, binascii.Error):
        raise ConfigurationError("WEBHOOK_SECRET: after whsec_ must come base64.") from None
    if len(key) < MIN_SECRET_BYTES:
        problem = f"WEBHOOK_SECRET's key is shorter than {MIN_SECRET_BYTES} bytes"
        if source.production:
            raise ConfigurationError(f"{problem}.")
        log.warning("%s; this is refused in production.", problem)
    return Secret(raw)


def _webhook_url(raw: str, source: Source) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError("WEBHOOK_URL must be an http(s):// URL.")
    if source.production and parts.scheme != "https":
        raise ConfigurationError("WEBHOOK_URL must be https:// in production.")
    return raw


def _limit(name: str) -> Parse:
    return lambda raw, source: validate_limit(name, raw)


OAuthKind = Literal["oidc", "google", "github"]
GOOGLE_ISSUER = "https://accounts.google.com"
GITHUB_WEB_URL = "https://github.com"
GITHUB_API_URL = "https://api.github.com"
OIDC_SCOPES = "openid email profile"
# GitHub is OAuth 2 without OpenID: its scopes for the profile and the email addresses.
GITHUB_SCOPES = "read:user user:email"


def _https_url(name: str) -> Parse:
    """An absolute http(s) URL with no query or fragment, its trailing ``/`` dropped."""

    def parse(raw: str, source: Source) -> str:
        parts = urlsplit(raw)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.query
            or parts.fragment
        ):
            raise ConfigurationError(f"{name} must be an absolute http(s) URL, got {raw!r}.")
        if source.production and parts.scheme != "https":
            raise ConfigurationError(f"{name} must be https in production, got {raw!r}.")
        return raw.rstrip("/")

    return parse


@dataclass(frozen=True, repr=False)
class OAuthProviderSettings:
    """Social sign-in: one OAuth 2 / OpenID Connect provider per id in OAUTH_PROVIDERS."""

    EXAMPLE_ID: ClassVar[str] = "acme"
    EXAMPLE_NOTE: ClassVar[str] = (
        "One block per id in OAUTH_PROVIDERS, the id upper-cased in the names; here for an "
        "id acme (OAUTH_PROVIDERS=acme)."
    )

    id: str = ""
    kind: OAuthKind = setting(
        "OAUTH_{ID}_KIND",
        "oidc",
        doc="oidc (any OpenID Connect issuer, by discovery), google (OIDC preset) or github "
        "(OAuth 2 with GitHub's user and emails APIs).",
    )
    issuer: str | None = setting(
        "OAUTH_{ID}_ISSUER",
        None,
        doc="The OpenID issuer URL (kind oidc; its /.well-known/openid-configuration is read). "
        "For github: the web base URL (default https://github.com, or a GitHub Enterprise host).",
        example="https://login.acme.example",
    )
    api_url: str | None = setting(
        "OAUTH_{ID}_API_URL",
        None,
        doc="kind github only: the REST API's base URL (default https://api.github.com).",
    )
    client_id: str = setting(
        "OAUTH_{ID}_CLIENT_ID",
        "",
        doc="The client id the provider gave this application.",
        example="authgraph",
    )
    client_secret: Secret = setting(
        "OAUTH_{ID}_CLIENT_SECRET",
        doc="The client secret (client_secret_basic); masked in logs and repr.",
        default_factory=lambda: Secret(""),
        example="",
    )
    scopes: str = setting(
        "OAUTH_{ID}_SCOPES",
        "",
        doc="Space-separated scopes; default openid email profile (github: read:user user:email).",
        example=OIDC_SCOPES,
    )
    name: str = setting(
        "OAUTH_{ID}_NAME",
        "",
        doc="The button label (Query.oauthProviders); default Google, GitHub or the id.",
        example="Acme",
    )

    @property
    def scope(self) -> str:
        """The scopes asked for: ``OAUTH_X_SCOPES`` or the kind's default."""
        return self.scopes or (GITHUB_SCOPES if self.kind == "github" else OIDC_SCOPES)

    @property
    def label(self) -> str:
        """The button label: ``OAUTH_X_NAME`` or the kind's default."""
        if self.name:
            return self.name
        return {"google": "Google", "github": "GitHub"}.get(self.kind, self.id)

    @property
    def issuer_url(self) -> str:
        """The issuer (oidc, google) or GitHub's web base URL."""
        if self.kind == "google":
            return self.issuer or GOOGLE_ISSUER
        if self.kind == "github":
            return self.issuer or GITHUB_WEB_URL
        return self.issuer or ""

    @property
    def github_api_url(self) -> str:
        return self.api_url or GITHUB_API_URL

    @classmethod
    def load(cls, source: Source, provider_id: str) -> OAuthProviderSettings:
        """One provider's settings, checked; errors name the variable as set."""
        loaded = load_keyed(cls, source, check_id("OAUTH_PROVIDERS", provider_id))
        upper = provider_id.upper()
        for name, value in (("ISSUER", loaded.issuer), ("API_URL", loaded.api_url)):
            if value is not None:
                _https_url(f"OAUTH_{upper}_{name}")(value, source)
        for name, missing in (
            ("CLIENT_ID", not loaded.client_id),
            ("CLIENT_SECRET", not loaded.client_secret.reveal()),
        ):
            if missing:
                raise ConfigurationError(f"OAUTH_{upper}_{name} is not set.")
        if loaded.kind == "oidc" and not loaded.issuer:
            raise ConfigurationError(f"OAUTH_{upper}_ISSUER is not set (needed for kind oidc).")
        if loaded.kind != "github" and loaded.api_url:
            raise ConfigurationError(f"OAUTH_{upper}_API_URL is for kind github only.")
        return dataclasses.replace(
            loaded,
            id=provider_id,
            issuer=loaded.issuer.rstrip("/") if loaded.issuer else None,
            api_url=loaded.api_url.rstrip("/") if loaded.api_url else None,
        )

    def __repr__(self) -> str:
        return render(self)


def _oauth_providers(raw: str, source: Source) -> tuple[OAuthProviderSettings, ...]:
    ids = comma_list(raw)
    if len(set(ids)) != len(ids):
        raise ConfigurationError("OAUTH_PROVIDERS names a provider twice.")
    return tuple(OAuthProviderSettings.load(source, i) for i in ids)


def _redirect_uris(raw: str, source: Source) -> tuple[str, ...]:
    uris = comma_list(raw)
    for uri in uris:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise ConfigurationError(
                f"OAUTH_REDIRECT_URIS: {uri!r} is no absolute http(s) URL without a fragment."
            )
        loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
        if source.production and parts.scheme != "https" and not loopback:
            raise ConfigurationError(f"OAUTH_REDIRECT_URIS: {uri!r} must be https in production.")
    return uris


@dataclass(frozen=True, repr=False)
class AuthSettings:
    """Domain: tokens, sessions, passwords, rate limits and emailed links."""

    jwt_secret: Secret = setting(
        "JWT_SECRET",
        doc="HS256 signing key (JWT_ALGORITHM=HS256; with ES256 it keys CSRF tokens and "
        "verifies the HS256 tokens issued before the switch), at least 32 random bytes. Unset "
        "in development: generated and kept in .authgraph-dev-secret.",
        default_factory=lambda: Secret(secrets.token_urlsafe(48)),
        parse=_jwt_secret,
        unset=_jwt_secret_unset,
        example="",
    )
    jwt_previous_secrets: tuple[Secret, ...] = setting(
        "JWT_PREVIOUS_SECRETS",
        (),
        doc="Comma-separated previous signing keys, still accepted during a key rotation "
        "(new tokens use JWT_SECRET).",
        parse=lambda raw, source: tuple(Secret(s) for s in comma_list(raw)),
    )
    jwt_algorithm: str = setting(
        "JWT_ALGORITHM",
        "ES256",
        doc="Access-token signature: ES256 (keys in the database, public ones at "
        "/.well-known/jwks.json) or HS256 (JWT_SECRET; for a single service).",
        parse=_jwt_algorithm,
    )
    key_encryption_key: Secret | None = setting(
        "KEY_ENCRYPTION_KEY",
        doc="Encrypts the private signing keys in the database (ES256), at least 32 random "
        "bytes. Unset in development: generated and kept in .authgraph-dev-key-encryption-key.",
        default_factory=lambda: Secret(secrets.token_urlsafe(48)),
        parse=_key_encryption_key,
        unset=_key_encryption_key_unset,
        example="",
    )
    key_encryption_previous_keys: tuple[Secret, ...] = setting(
        "KEY_ENCRYPTION_PREVIOUS_KEYS",
        (),
        doc="Comma-separated previous KEY_ENCRYPTION_KEYs, still tried for decryption during a "
        "rotation (encryption uses KEY_ENCRYPTION_KEY); remove them after `authgraph keys "
        "reencrypt`.",
        parse=_checked_secrets("KEY_ENCRYPTION_PREVIOUS_KEYS"),
    )
    key_refresh_seconds: float = setting(
        "KEY_REFRESH_SECONDS",
        60.0,
        doc="Seconds between re-reads of the signing keys by each process (a token naming an "
        "unknown kid also triggers one, at most once a second).",
        minimum=1,
        maximum=3600,
    )
    jwt_issuer: str = setting(
        "JWT_ISSUER",
        "authgraph",
        doc="Issuer (iss) written into and required of every access token.",
    )
    jwt_audience: str = setting(
        "JWT_AUDIENCE",
        "authgraph",
        doc="Audience (aud) written into and required of every access token.",
    )
    access_token_ttl_seconds: int = setting(
        "ACCESS_TOKEN_TTL_SECONDS", 900, doc="Access token lifetime in seconds.", minimum=1
    )
    refresh_token_ttl_seconds: int = setting(
        "REFRESH_TOKEN_TTL_SECONDS",
        30 * 24 * 3600,
        doc="Refresh token lifetime in seconds (sliding: each rotation starts it again); 30 days.",
        minimum=60,
    )
    session_max_age_seconds: int = setting(
        "SESSION_MAX_AGE_SECONDS",
        90 * 24 * 3600,
        doc="Absolute session lifetime in seconds, however often it is refreshed; 90 days.",
        minimum=60,
    )
    refresh_reuse_grace_seconds: int = setting(
        "REFRESH_REUSE_GRACE_SECONDS",
        10,
        doc="Seconds during which a just-spent refresh token may be presented again (two tabs, "
        "a retry) without counting as theft.",
        minimum=0,
        maximum=300,
    )
    bcrypt_rounds: int = setting(
        "BCRYPT_ROUNDS",
        12,
        doc="bcrypt cost factor (passlib bcrypt_sha256); at least 10 in production.",
        minimum=4,
        maximum=31,
    )
    # -- the hash lane (auth.hashing): bcrypt on its own threads, refused when queued deep --
    hash_workers: int | None = setting(
        "HASH_WORKERS",
        None,
        doc="Threads that hash passwords (bcrypt); empty = the cores this process may run on.",
        minimum=1,
        maximum=256,
    )
    hash_queue_limit: int | None = setting(
        "HASH_QUEUE_LIMIT",
        None,
        doc="Hashing calls that may wait beyond those running; past it a login answers "
        "RateLimited at once (/token 429). Empty = 4 x HASH_WORKERS.",
        minimum=0,
        maximum=10_000,
    )
    hash_niceness: int = setting(
        "HASH_NICENESS",
        10,
        doc="Added to the hashing threads' nice value (Linux), so cheap calls get a busy core "
        "first; 0 turns it off.",
        minimum=0,
        maximum=19,
    )
    rate_limit_storage: str = setting(
        "RATE_LIMIT_STORAGE",
        "memory://",
        doc="Where rate-limit counts live: memory:// (one process) or redis://host:6379 (shared "
        "by every worker and instance).",
        parse=lambda raw, source: validate_storage_uri("RATE_LIMIT_STORAGE", raw),
    )
    rate_limit_key_prefix: str = setting(
        "RATE_LIMIT_KEY_PREFIX",
        "authgraph",
        doc="Prefix of every rate-limit key in the storage (lets several deployments share one "
        "Redis).",
    )
    rate_limit_timeout_seconds: float = setting(
        "RATE_LIMIT_TIMEOUT_SECONDS",
        1.0,
        doc="Seconds a Redis rate-limit storage may take to connect or to answer one command; "
        "past it the call fails closed instead of hanging.",
        minimum=0.05,
    )
    login_rate_limit: str = setting(
        "LOGIN_RATE_LIMIT",
        "10/15minutes",
        doc="Failed logins per account (since its last success) before it is locked for the "
        "rest of the window; limits notation.",
        parse=_limit("LOGIN_RATE_LIMIT"),
    )
    login_ip_rate_limit: str = setting(
        "LOGIN_IP_RATE_LIMIT",
        "100/15minutes",
        doc="Login attempts per client IP.",
        parse=_limit("LOGIN_IP_RATE_LIMIT"),
    )
    signup_rate_limit: str = setting(
        "SIGNUP_RATE_LIMIT",
        "20/hour",
        doc="Signup attempts per client IP.",
        parse=_limit("SIGNUP_RATE_LIMIT"),
    )
    refresh_rate_limit: str = setting(
        "REFRESH_RATE_LIMIT",
        "120/minute",
        doc="refreshToken calls per client IP.",
        parse=_limit("REFRESH_RATE_LIMIT"),
    )
    email_rate_limit: str = setting(
        "EMAIL_RATE_LIMIT",
        "5/hour",
        doc="Emails sent per address by the email-sending mutations (verification, password "
        "reset).",
        parse=_limit("EMAIL_RATE_LIMIT"),
    )
    email_ip_rate_limit: str = setting(
        "EMAIL_IP_RATE_LIMIT",
        "20/hour",
        doc="Email-sending mutation calls per client IP.",
        parse=_limit("EMAIL_IP_RATE_LIMIT"),
    )
    introspection_clients: tuple[IntrospectionClient, ...] = setting(
        "INTROSPECTION_CLIENTS",
        (),
        doc="Comma-separated client_id:client_secret pairs allowed to call POST /introspect "
        "(client_secret_basic); empty = introspection off. Held only as hashes.",
        parse=_introspection_clients,
    )
    introspection_rate_limit: str = setting(
        "INTROSPECTION_RATE_LIMIT",
        "600/minute",
        doc="POST /introspect calls per client IP, counted before the client is checked.",
        parse=_limit("INTROSPECTION_RATE_LIMIT"),
    )
    app_url: str = setting(
        "APP_URL",
        "http://localhost:3000",
        doc="Base URL of the links in emails (your SPA): APP_URL/verify-email?token=..., "
        "/reset-password, /confirm-email-change. Required in production.",
        parse=_app_url,
        unset=_app_url_unset,
    )
    email_verification_ttl_seconds: int = setting(
        "EMAIL_VERIFICATION_TTL_SECONDS",
        24 * 3600,
        doc="Lifetime of an email verification link, in seconds (24 hours).",
        minimum=60,
    )
    password_reset_ttl_seconds: int = setting(
        "PASSWORD_RESET_TTL_SECONDS",
        3600,
        doc="Lifetime of a password reset link, in seconds (1 hour).",
        minimum=60,
    )
    email_change_ttl_seconds: int = setting(
        "EMAIL_CHANGE_TTL_SECONDS",
        24 * 3600,
        doc="Lifetime of an email change confirmation link, in seconds (24 hours).",
        minimum=60,
    )

    sign_in_codes_enabled: bool = setting(
        "SIGN_IN_CODES_ENABLED",
        True,
        doc="Whether accounts may sign in with a one-time code mailed to their address "
        "(requestSignInCode, signInWithCode).",
    )

    webauthn_rp_id: str = setting(
        "WEBAUTHN_RP_ID",
        DEV_WEBAUTHN_RP_ID,
        doc="Passkeys' relying party ID: the registrable domain they are bound to "
        "(example.com). Production: passkeys are on when this and WEBAUTHN_ORIGINS are set. "
        "Development default: localhost.",
        parse=_webauthn_rp_id,
        unset=_webauthn_rp_id_unset,
        example="",
    )
    webauthn_rp_name: str = setting(
        "WEBAUTHN_RP_NAME",
        "authgraph",
        doc="The name a browser shows when it creates a passkey.",
    )
    webauthn_origins: tuple[str, ...] = setting(
        "WEBAUTHN_ORIGINS",
        DEV_WEBAUTHN_ORIGINS,
        doc="Comma-separated exact origins passkey ceremonies may come from "
        "(https://app.example.com). Development default: http://localhost:8000 and "
        "http://localhost:5173.",
        parse=_webauthn_origins,
        unset=_webauthn_origins_unset,
        example="",
    )
    max_passkeys_per_user: int = setting(
        "MAX_PASSKEYS_PER_USER",
        10,
        doc="How many passkeys one account may register.",
        minimum=1,
        maximum=100,
    )

    mfa_encryption_key: Secret = setting(
        "MFA_ENCRYPTION_KEY",
        doc="Key that TOTP secrets are encrypted with at rest (AES-256-GCM, derived with "
        "HKDF), at least 32 random bytes and not JWT_SECRET. Unset in development: generated "
        "and kept in .authgraph-dev-mfa-key. To change it, put the old one in "
        "MFA_ENCRYPTION_PREVIOUS_KEYS and run `authgraph mfa reencrypt`.",
        default_factory=lambda: Secret(secrets.token_urlsafe(48)),
        parse=_mfa_key,
        unset=_mfa_key_unset,
        example="",
    )
    mfa_encryption_previous_keys: tuple[Secret, ...] = setting(
        "MFA_ENCRYPTION_PREVIOUS_KEYS",
        (),
        doc="Comma-separated previous MFA_ENCRYPTION_KEYs, still tried to open TOTP secrets "
        "during a rotation (sealing uses MFA_ENCRYPTION_KEY); remove them after `authgraph mfa "
        "reencrypt`.",
        parse=_checked_secrets("MFA_ENCRYPTION_PREVIOUS_KEYS"),
    )
    mfa_issuer: str = setting(
        "MFA_ISSUER",
        "authgraph",
        doc="Issuer shown by authenticator apps (the otpauth:// URI's issuer and label prefix).",
    )
    mfa_rate_limit: str = setting(
        "MFA_RATE_LIMIT",
        "10/15minutes",
        doc="Second-factor code attempts per account (verifyMfa, confirmTotpEnrollment, "
        "reauthenticate), cleared by a success; limits notation.",
        parse=_limit("MFA_RATE_LIMIT"),
    )
    reauth_max_age_seconds: int = setting(
        "REAUTH_MAX_AGE_SECONDS",
        300,
        doc="How recent an authentication must be for factor changes, recovery codes and (with "
        "MFA) password, email change and deletion; older answers ReauthenticationRequired.",
        minimum=30,
        maximum=24 * 3600,
    )
    admin_require_mfa: bool = setting(
        "ADMIN_REQUIRE_MFA",
        True,
        doc="Administration (Query.admin, the admin* mutations) needs a session signed in with a "
        "second factor (aal2); false allows an admin's password-only session.",
    )
    audit_retention_days: int = setting(
        "AUDIT_RETENTION_DAYS",
        365,
        doc="Days security events (the audit trail, User.securityEvents) are kept; older ones "
        "are deleted with the rest by prune-sessions and the hourly prune.",
        minimum=1,
        maximum=36500,
    )
    notify_new_device_sign_in: bool = setting(
        "NOTIFY_NEW_DEVICE_SIGN_IN",
        True,
        doc="Mail the user a notice of a sign-in from a device the account had not used "
        "(never for the account's first device).",
    )
    notify_password_changed: bool = setting(
        "NOTIFY_PASSWORD_CHANGED",
        True,
        doc="Mail the user a notice of a password change.",
    )
    notify_mfa_enabled: bool = setting(
        "NOTIFY_MFA_ENABLED",
        True,
        doc="Mail the user a notice of two-step verification turned on.",
    )
    notify_mfa_disabled: bool = setting(
        "NOTIFY_MFA_DISABLED",
        True,
        doc="Mail the user a notice of two-step verification turned off.",
    )
    notify_refresh_token_reused: bool = setting(
        "NOTIFY_REFRESH_TOKEN_REUSED",
        True,
        doc="Mail the user a notice of a reused refresh token, whose session was ended "
        "(possible theft).",
    )
    notify_passkey_added: bool = setting(
        "NOTIFY_PASSKEY_ADDED",
        True,
        doc="Mail the user a notice of a passkey added.",
    )
    notify_identity_linked: bool = setting(
        "NOTIFY_IDENTITY_LINKED",
        True,
        doc="Mail the user a notice of a sign-in identity linked.",
    )
    webhook_url: str | None = setting(
        "WEBHOOK_URL",
        None,
        doc="Where every security event is also POSTed (Standard Webhooks: webhook-id, "
        "webhook-timestamp, webhook-signature), at least once, through the outbox; unset = off.",
        parse=_webhook_url,
    )
    webhook_secret: Secret | None = setting(
        "WEBHOOK_SECRET",
        None,
        doc="The webhooks' signing key in the Standard Webhooks format: whsec_ and the base64 "
        "of the key (production: at least 32 bytes). Required with WEBHOOK_URL.",
        parse=_webhook_secret,
        example="",
    )

    oauth_providers: tuple[OAuthProviderSettings, ...] = setting(
        "OAUTH_PROVIDERS",
        (),
        doc="Comma-separated ids of the social sign-in providers (e.g. google,github,acme); each "
        "is configured by its OAUTH_<ID>_* settings below. Empty = social sign-in off.",
        parse=_oauth_providers,
        example="",
    )
    oauth_redirect_uris: tuple[str, ...] = setting(
        "OAUTH_REDIRECT_URIS",
        (),
        doc="Comma-separated SPA callback URLs a provider may return to, compared exactly (no "
        "prefix or wildcard); each must be registered at the providers too.",
        parse=_redirect_uris,
    )
    oauth_timeout_seconds: float = setting(
        "OAUTH_TIMEOUT_SECONDS",
        5.0,
        doc="Seconds each call to a provider (discovery, keys, token, user info) may take to "
        "connect and to answer; past it the sign-in answers OAuthProviderError.",
        minimum=0.1,
        maximum=60,
    )
    oauth_rate_limit: str = setting(
        "OAUTH_RATE_LIMIT",
        "30/minute",
        doc="startOAuthSignIn, completeOAuthSignIn and linkIdentity calls per client IP.",
        parse=_limit("OAUTH_RATE_LIMIT"),
    )

    @property
    def passkeys_enabled(self) -> bool:
        """Whether passkeys are on: a relying party ID and its origins are configured."""
        return bool(self.webauthn_rp_id and self.webauthn_origins)

    @property
    def hash_worker_count(self) -> int:
        """``HASH_WORKERS``, or by default the cores this process may run on."""
        return self.hash_workers if self.hash_workers is not None else usable_cores()

    @property
    def hash_queue_bound(self) -> int:
        """``HASH_QUEUE_LIMIT``, or by default four waiting per hashing thread.

        Four per thread: a login admitted last starts hashing after at most four hash times
        (about 1 s at cost 12, 0.3 s at cost 10), well inside any client's timeout, while a
        burst of five per core arriving at once is served rather than refused.
        """
        if self.hash_queue_limit is not None:
            return self.hash_queue_limit
        return HASH_QUEUE_PER_WORKER * self.hash_worker_count

    @classmethod
    def load(cls, source: Source) -> AuthSettings:
        """Read and check the domain's settings; production refuses weak ones by name."""
        settings = load_section(cls, source)
        refused = settings.problems(production=source.production)
        if refused:
            raise ConfigurationError(refused[0][2])
        return settings

    def problems(self, *, production: bool) -> list[tuple[str, str, str]]:
        """What start-up refuses beyond each setting's own check, as (code, setting, message):
        ``load`` raises the first, ``authgraph check-config`` reports them all (the code is
        its finding's, in ``graph.check_config.FINDINGS``)."""
        problems = []
        if bool(self.webauthn_rp_id) != bool(self.webauthn_origins):
            missing = "WEBAUTHN_ORIGINS" if self.webauthn_rp_id else "WEBAUTHN_RP_ID"
            problems.append(
                (
                    "passkeys-half-configured",
                    missing,
                    f"{missing} is not set: passkeys need both WEBAUTHN_RP_ID and "
                    "WEBAUTHN_ORIGINS (or neither, to leave them off).",
                )
            )
        if self.webhook_url is not None and self.webhook_secret is None:
            problems.append(
                (
                    "webhook-secret-missing",
                    "WEBHOOK_SECRET",
                    "WEBHOOK_SECRET is not set; WEBHOOK_URL needs it: whsec_ and the base64 of "
                    f"at least {MIN_SECRET_BYTES} random bytes.",
                )
            )
        if not production:
            return problems
        if self.bcrypt_rounds < MIN_PRODUCTION_BCRYPT_ROUNDS:
            problems.append(
                (
                    "bcrypt-rounds-low",
                    "BCRYPT_ROUNDS",
                    f"BCRYPT_ROUNDS is {self.bcrypt_rounds}; production needs at least "
                    f"{MIN_PRODUCTION_BCRYPT_ROUNDS}.",
                )
            )
        if self.mfa_encryption_key == self.jwt_secret:
            problems.append(
                (
                    "mfa-key-is-jwt-secret",
                    "MFA_ENCRYPTION_KEY",
                    "MFA_ENCRYPTION_KEY equals JWT_SECRET; production needs a key of its own.",
                )
            )
        # (check-config may pass a refused value as the raw string: nothing equals then.)
        if any(key == self.jwt_secret for key in self.mfa_encryption_previous_keys):
            problems.append(
                (
                    "mfa-key-is-jwt-secret",
                    "MFA_ENCRYPTION_PREVIOUS_KEYS",
                    "MFA_ENCRYPTION_PREVIOUS_KEYS holds JWT_SECRET; production needs MFA keys "
                    "of their own.",
                )
            )
        return problems

    def __repr__(self) -> str:
        return render(self)


def secret_problem(value: str) -> str | None:
    """Why ``value`` is no secret (a placeholder, too short, too repetitive), or None."""
    if value.strip().lower() in KNOWN_PLACEHOLDER_SECRETS:
        return "is a well-known placeholder"
    if len(value.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    if len(set(value)) < 8:
        return "repeats too few distinct characters to be random"
    return None


def _dev_secret(path: Path, name: str) -> str:
    # Kept in a file so that tokens survive a restart of `make run`.
    if path.exists():
        value = path.read_text().strip()
        if value and secret_problem(value) is None:
            return value
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    log.warning(
        "%s is not set: generated a development secret in %s. Set %s before running in production.",
        name,
        path.resolve(),
        name,
    )
    return value
