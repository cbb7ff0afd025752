"""Configuration, read once at start-up from the environment and ``.env``.

Every setting is documented in ``.env.example``. In production the loader refuses unsafe
values and names the setting at fault; in development it fills in safe local defaults.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from dotenv import dotenv_values

from auth.errors import ConfigurationError
from auth.hashing import usable_cores
from auth.ratelimit import validate_limit, validate_storage_uri

log = logging.getLogger("authgraph.settings")

Environment = Literal["development", "production"]
RefreshTransport = Literal["body", "cookie"]

MIN_SECRET_BYTES = 32
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


class Secret:
    """A string that never shows itself in ``repr``, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """All of authgraph's settings. Build one with :func:`load_settings` or :meth:`from_env`."""

    env: Environment = "development"
    database_url: str = "sqlite:///./authgraph.db"
    db_connect_timeout_seconds: float = 5.0
    db_statement_timeout_seconds: float = 10.0
    jwt_secret: Secret = field(default_factory=lambda: Secret(secrets.token_urlsafe(48)))
    jwt_previous_secrets: tuple[Secret, ...] = ()
    jwt_issuer: str = "authgraph"
    jwt_audience: str = "authgraph"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    session_max_age_seconds: int = 90 * 24 * 3600
    refresh_reuse_grace_seconds: int = 10
    refresh_token_transport: RefreshTransport = "body"
    bcrypt_rounds: int = 12
    # -- the hash lane (auth.hashing): bcrypt on its own threads, refused when queued deep --
    # Threads that hash; None: the cores this process may run on.
    hash_workers: int | None = None
    # Admitted hashing calls that may wait beyond those running; None: 4 x the workers.
    hash_queue_limit: int | None = None
    # Added to the hashing threads' nice value (Linux): cheap calls get a busy core first.
    hash_niceness: int = 10
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    session_prune_interval_seconds: int = 3600
    log_level: str = "INFO"
    rate_limit_storage: str = "memory://"
    rate_limit_key_prefix: str = "authgraph"
    rate_limit_timeout_seconds: float = 1.0
    login_rate_limit: str = "10/15minutes"
    login_ip_rate_limit: str = "100/15minutes"
    signup_rate_limit: str = "20/hour"
    refresh_rate_limit: str = "120/minute"
    email_rate_limit: str = "5/hour"
    email_ip_rate_limit: str = "20/hour"
    max_query_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 1000
    max_mutation_fields: int = 3
    max_body_bytes: int = 64 * 1024
    # None: on in development, off in production.
    graphql_introspection: bool | None = None
    # None: on in development, off in production. GraphiQL at GET /graphql (local assets).
    graphiql: bool | None = None
    # None: on in development, off in production. FastAPI's /docs loads Swagger UI from a CDN.
    api_docs: bool | None = None
    # -- account lifecycle mail (SMTP_URL unset: messages go to the log and MAIL_DIR) --
    smtp_url: Secret | None = None
    email_from: str = "authgraph <no-reply@localhost>"
    app_url: str = "http://localhost:3000"
    email_verification_ttl_seconds: int = 24 * 3600
    password_reset_ttl_seconds: int = 3600
    email_change_ttl_seconds: int = 24 * 3600
    outbox_poll_interval_seconds: float = 5.0
    outbox_max_attempts: int = 10
    outbox_retry_base_seconds: float = 5.0
    outbox_retry_max_seconds: float = 3600.0
    smtp_timeout_seconds: float = 30.0
    mail_dir: str = "var/mail"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def introspection_enabled(self) -> bool:
        """``GRAPHQL_INTROSPECTION``, or by default on in development and off in production."""
        if self.graphql_introspection is None:
            return not self.is_production
        return self.graphql_introspection

    @property
    def graphiql_enabled(self) -> bool:
        """``GRAPHIQL``, or by default on in development and off in production."""
        return not self.is_production if self.graphiql is None else self.graphiql

    @property
    def api_docs_enabled(self) -> bool:
        """``API_DOCS``, or by default on in development and off in production."""
        return not self.is_production if self.api_docs is None else self.api_docs

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

    @property
    def cookie_mode(self) -> bool:
        """Whether refresh tokens travel in an HttpOnly cookie instead of the body."""
        return self.refresh_token_transport == "cookie"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from a mapping of environment variables, validating every value."""
        env = _choice(environ, "AUTHGRAPH_ENV", ("development", "production"), "development")
        production = env == "production"
        settings = cls(
            env=env,  # type: ignore[arg-type]
            database_url=database_url(environ),
            db_connect_timeout_seconds=_float(
                environ, "DB_CONNECT_TIMEOUT_SECONDS", cls.db_connect_timeout_seconds, minimum=1
            ),
            db_statement_timeout_seconds=_float(
                environ,
                "DB_STATEMENT_TIMEOUT_SECONDS",
                cls.db_statement_timeout_seconds,
                minimum=0.1,
            ),
            jwt_secret=_jwt_secret(environ, production),
            jwt_previous_secrets=tuple(
                Secret(s) for s in _list(environ.get("JWT_PREVIOUS_SECRETS", ""))
            ),
            jwt_issuer=environ.get("JWT_ISSUER") or cls.jwt_issuer,
            jwt_audience=environ.get("JWT_AUDIENCE") or cls.jwt_audience,
            access_token_ttl_seconds=_int(
                environ, "ACCESS_TOKEN_TTL_SECONDS", cls.access_token_ttl_seconds, minimum=1
            ),
            refresh_token_ttl_seconds=_int(
                environ, "REFRESH_TOKEN_TTL_SECONDS", cls.refresh_token_ttl_seconds, minimum=60
            ),
            session_max_age_seconds=_int(
                environ, "SESSION_MAX_AGE_SECONDS", cls.session_max_age_seconds, minimum=60
            ),
            refresh_reuse_grace_seconds=_int(
                environ,
                "REFRESH_REUSE_GRACE_SECONDS",
                cls.refresh_reuse_grace_seconds,
                minimum=0,
                maximum=300,
            ),
            refresh_token_transport=_choice(  # type: ignore[arg-type]
                environ, "REFRESH_TOKEN_TRANSPORT", ("body", "cookie"), cls.refresh_token_transport
            ),
            bcrypt_rounds=_int(environ, "BCRYPT_ROUNDS", cls.bcrypt_rounds, minimum=4, maximum=31),
            hash_workers=_optional_int(environ, "HASH_WORKERS", minimum=1, maximum=256),
            hash_queue_limit=_optional_int(environ, "HASH_QUEUE_LIMIT", minimum=0, maximum=10_000),
            hash_niceness=_int(environ, "HASH_NICENESS", cls.hash_niceness, minimum=0, maximum=19),
            cors_origins=_origins(environ.get("CORS_ORIGINS", "")),
            trusted_proxies=_networks(environ.get("TRUSTED_PROXIES", "")),
            session_prune_interval_seconds=_int(
                environ,
                "SESSION_PRUNE_INTERVAL_SECONDS",
                cls.session_prune_interval_seconds,
                minimum=0,
            ),
            log_level=(environ.get("LOG_LEVEL") or cls.log_level).upper(),
            rate_limit_storage=validate_storage_uri(
                "RATE_LIMIT_STORAGE", environ.get("RATE_LIMIT_STORAGE") or cls.rate_limit_storage
            ),
            rate_limit_key_prefix=environ.get("RATE_LIMIT_KEY_PREFIX") or cls.rate_limit_key_prefix,
            rate_limit_timeout_seconds=_float(
                environ,
                "RATE_LIMIT_TIMEOUT_SECONDS",
                cls.rate_limit_timeout_seconds,
                minimum=0.05,
            ),
            login_rate_limit=_limit(environ, "LOGIN_RATE_LIMIT", cls.login_rate_limit),
            login_ip_rate_limit=_limit(environ, "LOGIN_IP_RATE_LIMIT", cls.login_ip_rate_limit),
            signup_rate_limit=_limit(environ, "SIGNUP_RATE_LIMIT", cls.signup_rate_limit),
            refresh_rate_limit=_limit(environ, "REFRESH_RATE_LIMIT", cls.refresh_rate_limit),
            email_rate_limit=_limit(environ, "EMAIL_RATE_LIMIT", cls.email_rate_limit),
            email_ip_rate_limit=_limit(environ, "EMAIL_IP_RATE_LIMIT", cls.email_ip_rate_limit),
            max_query_depth=_int(environ, "MAX_QUERY_DEPTH", cls.max_query_depth, minimum=2),
            max_aliases=_int(environ, "MAX_ALIASES", cls.max_aliases, minimum=0),
            max_tokens=_int(environ, "MAX_TOKENS", cls.max_tokens, minimum=50),
            max_mutation_fields=_int(
                environ, "MAX_MUTATION_FIELDS", cls.max_mutation_fields, minimum=1
            ),
            max_body_bytes=_int(environ, "MAX_BODY_BYTES", cls.max_body_bytes, minimum=1024),
            graphql_introspection=_bool(environ, "GRAPHQL_INTROSPECTION"),
            graphiql=_bool(environ, "GRAPHIQL"),
            api_docs=_bool(environ, "API_DOCS"),
            smtp_url=_smtp_url(environ, production),
            email_from=_email_from(environ.get("EMAIL_FROM", "").strip() or cls.email_from),
            app_url=_app_url(environ, production),
            email_verification_ttl_seconds=_int(
                environ,
                "EMAIL_VERIFICATION_TTL_SECONDS",
                cls.email_verification_ttl_seconds,
                minimum=60,
            ),
            password_reset_ttl_seconds=_int(
                environ, "PASSWORD_RESET_TTL_SECONDS", cls.password_reset_ttl_seconds, minimum=60
            ),
            email_change_ttl_seconds=_int(
                environ, "EMAIL_CHANGE_TTL_SECONDS", cls.email_change_ttl_seconds, minimum=60
            ),
            outbox_poll_interval_seconds=_float(
                environ,
                "OUTBOX_POLL_INTERVAL_SECONDS",
                cls.outbox_poll_interval_seconds,
                minimum=0.05,
            ),
            outbox_max_attempts=_int(
                environ, "OUTBOX_MAX_ATTEMPTS", cls.outbox_max_attempts, minimum=1
            ),
            outbox_retry_base_seconds=_float(
                environ, "OUTBOX_RETRY_BASE_SECONDS", cls.outbox_retry_base_seconds, minimum=0.01
            ),
            outbox_retry_max_seconds=_float(
                environ, "OUTBOX_RETRY_MAX_SECONDS", cls.outbox_retry_max_seconds, minimum=0.01
            ),
            smtp_timeout_seconds=_float(
                environ, "SMTP_TIMEOUT_SECONDS", cls.smtp_timeout_seconds, minimum=1
            ),
            mail_dir=environ.get("MAIL_DIR", "").strip() or cls.mail_dir,
        )
        if production and settings.bcrypt_rounds < MIN_PRODUCTION_BCRYPT_ROUNDS:
            raise ConfigurationError(
                f"BCRYPT_ROUNDS is {settings.bcrypt_rounds}; production needs at least "
                f"{MIN_PRODUCTION_BCRYPT_ROUNDS}."
            )
        return settings

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"Settings({shown})"


def load_environment(env_file: Path | None = None) -> dict[str, str]:
    """``.env`` (if present) under the real environment: the one source every loader reads.

    Variables already set in the environment win over the file, as with python-dotenv's
    ``load_dotenv``; the process environment itself is left untouched.
    """
    path = env_file or Path(os.environ.get("AUTHGRAPH_ENV_FILE", ".env"))
    file_values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    return {**file_values, **os.environ}


def load_settings(env_file: Path | None = None) -> Settings:
    """Every setting, from :func:`load_environment`, validated."""
    return Settings.from_env(load_environment(env_file))


def load_database_url(env_file: Path | None = None) -> str:
    """``DATABASE_URL`` alone, validated: what ``authgraph migrate`` needs, and nothing else."""
    return database_url(load_environment(env_file))


# sqlite:///path, postgresql://..., with an optional +driver; nothing else is supported.
_DATABASE_URL_RE = re.compile(r"(sqlite|postgresql|postgres)(\+[a-z0-9_]+)?://.*", re.DOTALL)


def database_url(environ: Mapping[str, str]) -> str:
    """``DATABASE_URL`` (default SQLite ``./authgraph.db``), or an error that names it."""
    value = environ.get("DATABASE_URL", "").strip() or Settings.database_url
    if not _DATABASE_URL_RE.fullmatch(value):
        # The value is not echoed: it may hold a password.
        raise ConfigurationError(
            "DATABASE_URL must be a sqlite:/// or postgresql:// URL, e.g. "
            "sqlite:///./authgraph.db or postgresql://user:password@host:5432/authgraph."
        )
    return value


def _jwt_secret(environ: Mapping[str, str], production: bool) -> Secret:
    value = environ.get("JWT_SECRET", "")
    if value:
        problem = _secret_problem(value)
        if problem and production:
            raise ConfigurationError(f"JWT_SECRET {problem}.")
        if problem:
            log.warning("JWT_SECRET %s; this is refused in production.", problem)
        return Secret(value)
    if production:
        raise ConfigurationError(
            "JWT_SECRET is not set. Production needs at least 32 random bytes, e.g. "
            'python -c "import secrets; print(secrets.token_urlsafe(48))"'
        )
    return Secret(
        _dev_secret(Path(environ.get("AUTHGRAPH_DEV_SECRET_FILE", ".authgraph-dev-secret")))
    )


def _secret_problem(value: str) -> str | None:
    if value.strip().lower() in KNOWN_PLACEHOLDER_SECRETS:
        return "is a well-known placeholder"
    if len(value.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    if len(set(value)) < 8:
        return "repeats too few distinct characters to be random"
    return None


def _dev_secret(path: Path) -> str:
    # Kept in a file so that tokens survive a restart of `make run`.
    if path.exists():
        value = path.read_text().strip()
        if value and _secret_problem(value) is None:
            return value
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    log.warning(
        "JWT_SECRET is not set: generated a development secret in %s. "
        "Set JWT_SECRET before running in production.",
        path.resolve(),
    )
    return value


def _int(
    environ: Mapping[str, str],
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} must be at most {maximum}, got {value}.")
    return value


def _optional_int(
    environ: Mapping[str, str], name: str, *, minimum: int, maximum: int
) -> int | None:
    """``name`` as a bounded whole number, or None when unset (a default decided later)."""
    if not environ.get(name, "").strip():
        return None
    return _int(environ, name, 0, minimum=minimum, maximum=maximum)


def _bool(environ: Mapping[str, str], name: str) -> bool | None:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}.")


def _limit(environ: Mapping[str, str], name: str, default: str) -> str:
    return validate_limit(name, environ.get(name, "").strip() or default)


def _choice(environ: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = environ.get(name, "").strip().lower() or default
    if value not in allowed:
        raise ConfigurationError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.")
    return value


def _list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _networks(raw: str) -> tuple[str, ...]:
    networks = _list(raw)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigurationError(
                f"TRUSTED_PROXIES entry {network!r} is not an IP address or network."
            ) from None
    return tuple(networks)


def _origins(raw: str) -> tuple[str, ...]:
    origins = _list(raw)
    for origin in origins:
        if origin == "*" or "*" in origin:
            # Starlette would echo any origin with credentials: never for an auth API.
            raise ConfigurationError(
                "CORS_ORIGINS must list exact origins (scheme://host[:port]); '*' is refused "
                "because cookies and Authorization headers would be sent from any site."
            )
        if not origin.startswith(("http://", "https://")) or origin.endswith("/"):
            raise ConfigurationError(
                f"CORS_ORIGINS entry {origin!r} must look like https://app.example.com "
                "(scheme and host, no path, no trailing slash)."
            )
    return tuple(origins)


@dataclass(frozen=True)
class SmtpEndpoint:
    """Where and how to deliver mail, parsed from ``SMTP_URL``."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: Secret | None


def smtp_endpoint(url: str) -> SmtpEndpoint:
    """Parse ``smtp://[user:pass@]host[:port]`` (STARTTLS when offered) or ``smtps://`` (TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigurationError(
            "SMTP_URL must look like smtp://user:password@host:587 or smtps://host:465."
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError("SMTP_URL has an invalid port.") from None
    implicit_tls = parts.scheme == "smtps"
    return SmtpEndpoint(
        host=parts.hostname,
        port=port or (465 if implicit_tls else 25),
        implicit_tls=implicit_tls,
        username=unquote(parts.username) if parts.username else None,
        password=Secret(unquote(parts.password)) if parts.password else None,
    )


def _smtp_url(environ: Mapping[str, str], production: bool) -> Secret | None:
    value = environ.get("SMTP_URL", "").strip()
    if not value:
        if production:
            raise ConfigurationError(
                "SMTP_URL is not set. Production must deliver mail: smtp://user:pass@host:587."
            )
        return None
    smtp_endpoint(value)
    # Kept as a Secret: the URL may carry the SMTP password.
    return Secret(value)


def _app_url(environ: Mapping[str, str], production: bool) -> str:
    value = environ.get("APP_URL", "").strip()
    if not value:
        if production:
            raise ConfigurationError(
                "APP_URL is not set. Production needs the base URL of the links in emails, "
                "e.g. https://app.example.com."
            )
        return Settings.app_url
    if not value.startswith(("http://", "https://")):
        raise ConfigurationError(f"APP_URL must start with http:// or https://, got {value!r}.")
    return value.rstrip("/")


def _email_from(value: str) -> str:
    if "@" not in value or "\n" in value or "\r" in value:
        raise ConfigurationError("EMAIL_FROM must be an address like 'App <no-reply@x.com>'.")
    return value


def _float(
    environ: Mapping[str, str], name: str, default: float, *, minimum: float | None = None
) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}.")
    return value
