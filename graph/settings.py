"""Settings of the HTTP and GraphQL layer and of the process, and the one loader of them all.

:class:`Settings` composes each layer's section (``auth.settings.AuthSettings``,
``mail.settings.MailSettings``, :class:`DatabaseSettings`, :class:`HttpSettings`); every field
is declared once with :func:`auth.config.setting`, and ``.env.example`` is generated from the
declarations (``authgraph env-example``). Each command loads only what it uses.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from auth.config import Source, env_example, load_environment, load_section, render, setting
from auth.config import comma_list as _list
from auth.errors import ConfigurationError
from auth.settings import AuthSettings, OAuthProviderSettings
from mail.settings import MailSettings

Environment = Literal["development", "production"]
RefreshTransport = Literal["body", "cookie"]

# sqlite:///path, postgresql://..., with an optional +driver; nothing else is supported.
_DATABASE_URL_RE = re.compile(r"(sqlite|postgresql|postgres)(\+[a-z0-9_]+)?://.*", re.DOTALL)


def _database_url(raw: str, source: Source) -> str:
    if not _DATABASE_URL_RE.fullmatch(raw):
        # The value is not echoed: it may hold a password.
        raise ConfigurationError(
            "DATABASE_URL must be a sqlite:/// or postgresql:// URL, e.g. "
            "sqlite:///./authgraph.db or postgresql://user:password@host:5432/authgraph."
        )
    return raw


def _origins(raw: str, source: Source) -> tuple[str, ...]:
    origins = _list(raw)
    for origin in origins:
        if "*" in origin:
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
    return origins


def _networks(raw: str, source: Source) -> tuple[str, ...]:
    networks = _list(raw)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigurationError(
                f"TRUSTED_PROXIES entry {network!r} is not an IP address or network."
            ) from None
    return networks


@dataclass(frozen=True)
class DatabaseSettings:
    """Database: where it is and how long a connection or a statement may take."""

    database_url: str = setting(
        "DATABASE_URL",
        "sqlite:///./authgraph.db",
        doc="Plain SQLAlchemy URL; the driver is picked for you (sqlite:///./authgraph.db, "
        "postgresql://user@host/db).",
        parse=_database_url,
    )
    db_connect_timeout_seconds: float = setting(
        "DB_CONNECT_TIMEOUT_SECONDS",
        5.0,
        doc="Seconds a new database connection may take before the request fails (PostgreSQL).",
        minimum=1,
    )
    db_statement_timeout_seconds: float = setting(
        "DB_STATEMENT_TIMEOUT_SECONDS",
        10.0,
        doc="Seconds one statement may run (PostgreSQL statement_timeout; on SQLite, the wait "
        "for a write lock).",
        minimum=0.1,
    )


@dataclass(frozen=True)
class HttpSettings:
    """HTTP and GraphQL: transport, browsers, proxies, document limits and developer pages."""

    refresh_token_transport: RefreshTransport = setting(
        "REFRESH_TOKEN_TRANSPORT",
        "body",
        doc="body (refreshToken in the GraphQL response) or cookie (HttpOnly SameSite=Strict "
        "cookie plus CSRF token, for SPAs).",
    )
    cors_origins: tuple[str, ...] = setting(
        "CORS_ORIGINS",
        (),
        doc="Comma-separated exact origins allowed to call the API from a browser "
        "(https://app.example.com); empty = none. '*' is refused.",
        parse=_origins,
    )
    subscription_revocation_seconds: float = setting(
        "SUBSCRIPTION_REVOCATION_SECONDS",
        2.0,
        doc="Bound on the time from a session's end (logout, revocation, reuse, password "
        "change, deletion) or its token's expiry to the close (4403) of its subscriptions.",
        minimum=0.1,
        maximum=60,
    )
    subscription_connections_per_user: int = setting(
        "SUBSCRIPTION_CONNECTIONS_PER_USER",
        20,
        doc="Open graphql-transport-ws connections one user may have on one instance; the next "
        "is closed with 4429.",
        minimum=1,
        maximum=10_000,
    )
    subscriptions_per_connection: int = setting(
        "SUBSCRIPTIONS_PER_CONNECTION",
        10,
        doc="Subscriptions one connection may run at once; the next closes it with 4429.",
        minimum=1,
        maximum=1000,
    )
    trusted_proxies: tuple[str, ...] = setting(
        "TRUSTED_PROXIES",
        (),
        doc="Comma-separated proxy addresses or networks whose X-Forwarded-For header is "
        "believed; empty = use the socket peer.",
        parse=_networks,
    )
    max_query_depth: int = setting(
        "MAX_QUERY_DEPTH",
        10,
        doc="Deepest nesting of fields a GraphQL operation may have.",
        minimum=2,
    )
    max_aliases: int = setting(
        "MAX_ALIASES", 15, doc="Most aliases a GraphQL document may use.", minimum=0
    )
    max_tokens: int = setting(
        "MAX_TOKENS",
        1000,
        doc="Most tokens a GraphQL document may have (variables not counted; MAX_BODY_BYTES "
        "bounds those).",
        minimum=50,
    )
    max_mutation_fields: int = setting(
        "MAX_MUTATION_FIELDS",
        3,
        doc="Most root fields (aliases included) one mutation operation may select.",
        minimum=1,
    )
    max_body_bytes: int = setting(
        "MAX_BODY_BYTES",
        64 * 1024,
        doc="Largest request body in bytes, chunked bodies included; larger ones get 413.",
        minimum=1024,
    )
    graphql_introspection: bool | None = setting(
        "GRAPHQL_INTROSPECTION",
        None,
        doc="Allow __schema/__type introspection (and field suggestions in errors); empty = on "
        "in development, off in production.",
    )
    graphiql: bool | None = setting(
        "GRAPHIQL",
        None,
        doc="GraphiQL at GET /graphql (pinned local assets); empty = on in development, off in "
        "production.",
    )
    api_docs: bool | None = setting(
        "API_DOCS",
        None,
        doc="FastAPI's /docs and /openapi.json (Swagger UI comes from a CDN, so it stays off the "
        "API's origin in production); empty = on in development, off in production.",
    )
    # -- persisted and trusted documents, and the lean path (graph/documents, graph/lean) --
    trusted_documents: str = setting(
        "TRUSTED_DOCUMENTS",
        "",
        doc="Path of a trusted-documents manifest (JSON: {sha256 hex: document}, or the "
        "apollo-persisted-query-manifest format); requests name them as documentId "
        "sha256:<hex>. Empty = none.",
    )
    trusted_documents_only: bool = setting(
        "TRUSTED_DOCUMENTS_ONLY",
        False,
        doc="Refuse (400) every document that is not in TRUSTED_DOCUMENTS: the strongest "
        "defence against abusive queries, for production APIs whose clients are all known.",
    )
    persisted_queries: bool = setting(
        "PERSISTED_QUERIES",
        True,
        doc="Apollo's automatic persisted queries (extensions.persistedQuery): unknown hashes "
        "answer PERSISTED_QUERY_NOT_FOUND and the client registers the document.",
    )
    persisted_query_max_documents: int = setting(
        "PERSISTED_QUERY_MAX_DOCUMENTS",
        1000,
        doc="Most automatic persisted queries kept per process (least recently used go first).",
        minimum=1,
        maximum=1_000_000,
    )
    persisted_query_max_bytes: int = setting(
        "PERSISTED_QUERY_MAX_BYTES",
        1024 * 1024,
        doc="Most bytes of document text the automatic persisted queries keep per process.",
        minimum=1024,
    )
    persisted_query_registrations_per_minute: int = setting(
        "PERSISTED_QUERY_REGISTRATIONS_PER_MINUTE",
        600,
        doc="New automatic persisted queries a process keeps per minute; past it a document "
        "is answered but not kept (a flood of unique documents cannot churn the store).",
        minimum=1,
    )
    document_cache_size: int = setting(
        "DOCUMENT_CACHE_SIZE",
        256,
        doc="Parsed and validated documents kept per process for the lean path (LRU, keyed "
        "by the exact text).",
        minimum=1,
        maximum=100_000,
    )
    lean_execution: bool = setting(
        "LEAN_EXECUTION",
        True,
        doc="Run valid documents on the lean path (parsed and validated once, executed by "
        "graphql-core without per-request framework work); false = Strawberry's full pipeline.",
    )
    # -- the HTTP server's bounds on a request's head and on slow clients (graph/http_server) --
    max_header_bytes: int = setting(
        "MAX_HEADER_BYTES",
        32 * 1024,
        doc="Largest request head (request line and headers) in bytes; larger ones get 431 "
        "before they are buffered. 32 KiB is what a default nginx forwards.",
        minimum=4096,
        maximum=1024 * 1024,
    )
    max_header_count: int = setting(
        "MAX_HEADER_COUNT",
        100,
        doc="Most headers one request may have; more get 431.",
        minimum=16,
        maximum=10_000,
    )
    header_read_timeout_seconds: float = setting(
        "HEADER_READ_TIMEOUT_SECONDS",
        10.0,
        doc="Seconds from a request's first byte (or a new connection) to the end of its "
        "headers; past it the client gets 408 and the connection is closed.",
        minimum=0.1,
        maximum=300,
    )
    body_read_timeout_seconds: float = setting(
        "BODY_READ_TIMEOUT_SECONDS",
        10.0,
        doc="Longest gap in seconds between two reads of a request body; past it the "
        "connection is closed.",
        minimum=0.1,
        maximum=300,
    )
    session_prune_interval_seconds: int = setting(
        "SESSION_PRUNE_INTERVAL_SECONDS",
        3600,
        doc="Seconds between background prunes of expired and revoked sessions while serving; "
        "0 turns it off.",
        minimum=0,
    )
    log_level: str = setting(
        "LOG_LEVEL",
        "INFO",
        doc="Log level of the server (DEBUG, INFO, WARNING, ERROR).",
        parse=lambda raw, source: raw.upper(),
    )

    @property
    def cookie_mode(self) -> bool:
        """Whether refresh tokens travel in an HttpOnly cookie instead of the body."""
        return self.refresh_token_transport == "cookie"


@dataclass(frozen=True, repr=False)
class Settings:
    """authgraph: the process's mode, and each layer's section of settings."""

    env: Environment = setting(
        "AUTHGRAPH_ENV",
        "development",
        doc="development (default) or production; production refuses a missing or weak "
        "JWT_SECRET, BCRYPT_ROUNDS < 10, and a missing SMTP_URL or APP_URL.",
    )
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    mail: MailSettings = field(default_factory=MailSettings)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def introspection_enabled(self) -> bool:
        """``GRAPHQL_INTROSPECTION``, or by default on in development and off in production."""
        return _by_env(self.http.graphql_introspection, self.is_production)

    @property
    def graphiql_enabled(self) -> bool:
        """``GRAPHIQL``, or by default on in development and off in production."""
        return _by_env(self.http.graphiql, self.is_production)

    @property
    def api_docs_enabled(self) -> bool:
        """``API_DOCS``, or by default on in development and off in production."""
        return _by_env(self.http.api_docs, self.is_production)

    @classmethod
    def from_env(cls, environ: dict[str, str] | Any) -> Settings:
        """Every section from a mapping of environment variables, each value checked."""
        env = load_section(cls, Source(environ, production=False)).env
        source = Source(environ, production=env == "production")
        return cls(
            env=env,
            database=load_section(DatabaseSettings, source),
            auth=AuthSettings.load(source),
            http=load_section(HttpSettings, source),
            mail=MailSettings.load(source),
        )

    def with_values(self, **values: Any) -> Settings:
        """A copy with fields replaced by name, whichever section holds them (for tests)."""
        changes: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for name, value in values.items():
            if name in _TOP_FIELDS:
                top[name] = value
                continue
            section = _SECTION_OF.get(name)
            if section is None:
                raise TypeError(f"no setting named {name!r}")
            changes.setdefault(section, {})[name] = value
        for section, fields in changes.items():
            top[section] = dataclasses.replace(getattr(self, section), **fields)
        return dataclasses.replace(self, **top)

    def __repr__(self) -> str:
        return render(self)


SECTIONS: tuple[type[Any], ...] = (
    Settings,
    DatabaseSettings,
    AuthSettings,
    OAuthProviderSettings,
    HttpSettings,
    MailSettings,
)
_TOP_FIELDS = {f.name for f in dataclasses.fields(Settings)}
_SECTION_OF = {
    f.name: name
    for name, section in (
        ("database", DatabaseSettings),
        ("auth", AuthSettings),
        ("http", HttpSettings),
        ("mail", MailSettings),
    )
    for f in dataclasses.fields(section)
}
# One name, one field: with_values and the README's table rely on it.
assert len(_SECTION_OF) == sum(
    len(dataclasses.fields(s)) for s in (DatabaseSettings, AuthSettings, HttpSettings, MailSettings)
)


def _by_env(choice: bool | None, production: bool) -> bool:
    return not production if choice is None else choice


def load_settings(env_file: Path | None = None) -> Settings:
    """Every setting, from the environment and ``.env``, validated."""
    return Settings.from_env(load_environment(env_file))


def load_database_settings(env_file: Path | None = None) -> DatabaseSettings:
    """The database's settings alone: what ``authgraph migrate`` needs, and nothing else."""
    return load_section(DatabaseSettings, Source(load_environment(env_file), production=False))


# What `authgraph migrate` reads beyond the database: enough to create the first signing key.
KEY_SETTINGS = (
    "jwt_algorithm",
    "key_encryption_key",
    "access_token_ttl_seconds",
    "jwt_issuer",
    "jwt_audience",
)


def load_key_settings(env_file: Path | None = None) -> Settings:
    """The database's settings and the signing keys' (``KEY_SETTINGS``); the rest default."""
    environ = load_environment(env_file)
    env = load_section(Settings, Source(environ, production=False)).env
    source = Source(environ, production=env == "production")
    return Settings(
        env=env,
        database=load_section(DatabaseSettings, source),
        auth=load_section(AuthSettings, source, only=KEY_SETTINGS),
    )


def example_file() -> str:
    """The text of ``.env.example``, generated from every declaration."""
    return env_example(SECTIONS)
