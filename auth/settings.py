"""The domain's settings: tokens, sessions, passwords, rate limits and emailed links.

Declared once here (see :mod:`auth.config`); the composition root loads them with the
other layers' sections. In production the loader refuses a missing or weak ``JWT_SECRET`` and
a low ``BCRYPT_ROUNDS`` and names the setting; in development it fills in safe local defaults.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from auth.config import Parse, Secret, Source, Unset, comma_list, load_section, render, setting
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

    mfa_encryption_key: Secret = setting(
        "MFA_ENCRYPTION_KEY",
        doc="Key that TOTP secrets are encrypted with at rest (AES-256-GCM, derived with "
        "HKDF), at least 32 random bytes and not JWT_SECRET. Unset in development: generated "
        "and kept in .authgraph-dev-mfa-key. Changing it makes enrolled factors unusable.",
        default_factory=lambda: Secret(secrets.token_urlsafe(48)),
        parse=_mfa_key,
        unset=_mfa_key_unset,
        example="",
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
        if source.production and settings.bcrypt_rounds < MIN_PRODUCTION_BCRYPT_ROUNDS:
            raise ConfigurationError(
                f"BCRYPT_ROUNDS is {settings.bcrypt_rounds}; production needs at least "
                f"{MIN_PRODUCTION_BCRYPT_ROUNDS}."
            )
        if settings.webhook_url is not None and settings.webhook_secret is None:
            raise ConfigurationError(
                "WEBHOOK_SECRET is not set; WEBHOOK_URL needs it: whsec_ and the base64 of at "
                f"least {MIN_SECRET_BYTES} random bytes."
            )
        if source.production and settings.mfa_encryption_key == settings.jwt_secret:
            raise ConfigurationError(
                "MFA_ENCRYPTION_KEY equals JWT_SECRET; production needs a key of its own."
            )
        return settings

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
