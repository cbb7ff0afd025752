"""``authgraph check-config``: every problem of a configuration, and what production needs.

The settings are read as ``serve`` reads them (the environment over ``.env``), but where the
loader stops at the first refusal this reads each setting on its own and reports them all,
then, when the whole configuration loads, checks it against the deployment described on
the command line (``--workers``, ``--instances``, ``--behind-proxy``). An *error* is what
``serve`` refuses, or what would defeat a protection in that deployment (rate limits counted
per process, every client seen as the proxy); a *warning* is a recommendation.

Every finding has a stable code, listed with its level in :data:`FINDINGS` (the README's
table is generated from it, ``tests/graph/test_check_config.py`` has a case for each): the
text output is unchanged by them, ``--json`` carries them as ``code``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from auth.config import Source, comma_list, declarations, load_section
from auth.errors import ConfigurationError
from auth.hashing import usable_cores
from auth.keys import ASYMMETRIC_ALGORITHMS
from auth.settings import (
    MIN_PRODUCTION_BCRYPT_ROUNDS,
    AuthSettings,
    OAuthProviderSettings,
    secret_problem,
)
from graph.documents import Documents
from graph.settings import SECTIONS, DatabaseSettings, HttpSettings, Settings
from mail.settings import MailSettings

Level = Literal["error", "warning"]
SECRETS = ("JWT_SECRET", "KEY_ENCRYPTION_KEY", "MFA_ENCRYPTION_KEY")
# Older keys kept during a rotation (comma-separated): optional, each checked as the current.
PREVIOUS_KEYS = ("KEY_ENCRYPTION_PREVIOUS_KEYS", "MFA_ENCRYPTION_PREVIOUS_KEYS")


@dataclass(frozen=True)
class Finding:
    """A kind of problem: its level, and what it is (a row of the README's table)."""

    level: Level
    what: str


# Every finding check-config can report, by code. A code is stable (automation may match
# it); its level is fixed; the message names the value and what to do.
FINDINGS: dict[str, Finding] = {
    "environment-unknown": Finding(
        "error",
        "`AUTHGRAPH_ENV` is neither development nor production (the rest is then "
        "judged as production)",
    ),
    "setting-refused": Finding(
        "error",
        "anything `serve` refuses, each setting on its own: a missing, short, "
        "placeholder or repetitive key (`JWT_SECRET`, `KEY_ENCRYPTION_KEY`, "
        "`MFA_ENCRYPTION_KEY`, each of `KEY_ENCRYPTION_PREVIOUS_KEYS` and "
        "`MFA_ENCRYPTION_PREVIOUS_KEYS`, `INTROSPECTION_CLIENTS`' secrets) in production, a "
        "missing `SMTP_URL` or `APP_URL` in production, a value out of bounds or unreadable",
    ),
    "passkeys-half-configured": Finding(
        "error", "`WEBAUTHN_RP_ID` without `WEBAUTHN_ORIGINS`, or the other way round"
    ),
    "webhook-secret-missing": Finding("error", "`WEBHOOK_URL` without `WEBHOOK_SECRET`"),
    "bcrypt-rounds-low": Finding("error", "`BCRYPT_ROUNDS` under 10 in production"),
    "mfa-key-is-jwt-secret": Finding(
        "error",
        "`MFA_ENCRYPTION_KEY` equal to `JWT_SECRET`, or `JWT_SECRET` among "
        "`MFA_ENCRYPTION_PREVIOUS_KEYS`, in production",
    ),
    "trusted-documents-unusable": Finding(
        "error",
        "`TRUSTED_DOCUMENTS` missing, unreadable, not JSON or with a wrong hash, or "
        "`TRUSTED_DOCUMENTS_ONLY` without it (each process refuses to start)",
    ),
    "env-file-unreadable": Finding(
        "error",
        "the settings file (`AUTHGRAPH_ENV_FILE`, by default `.env`) cannot be read or is "
        "not UTF-8 (`serve` stops with a traceback)",
    ),
    "env-file-missing": Finding(
        "warning",
        "`AUTHGRAPH_ENV_FILE` names no file (`serve` silently reads nothing from it)",
    ),
    "development-key-unset": Finding(
        "warning", "a key unset in development (generated into a file; production refuses)"
    ),
    "development-key-weak": Finding(
        "warning", "a key short, placeholder or repetitive in development (production refuses)"
    ),
    "development-bcrypt-rounds-low": Finding(
        "warning", "`BCRYPT_ROUNDS` under 10 in development (production refuses)"
    ),
    "sqlite-instances": Finding("error", "SQLite with `--instances` above 1"),
    "sqlite-workers": Finding("warning", "SQLite with `--workers` above 1"),
    "rate-limits-per-process": Finding(
        "error",
        "`RATE_LIMIT_STORAGE=memory://` with more than one process (workers x "
        "instances): each counts on its own",
    ),
    "trusted-proxies-missing": Finding(
        "error",
        "`TRUSTED_PROXIES` empty with `--behind-proxy` (every client has the proxy's address)",
    ),
    "trusted-proxies-unset": Finding(
        "warning", "`TRUSTED_PROXIES` empty in production without `--behind-proxy`"
    ),
    "trusted-proxies-everyone": Finding(
        "error", "`TRUSTED_PROXIES` with `0.0.0.0/0` or `::/0` (anyone may write `X-Forwarded-For`)"
    ),
    "cors-plain-http": Finding("error", "`CORS_ORIGINS` with an `http://` origin in production"),
    "app-url-plain-http": Finding("warning", "`APP_URL` over `http://` in production"),
    "graphiql-on": Finding("warning", "`GRAPHIQL` on in production"),
    "api-docs-on": Finding("warning", "`API_DOCS` on in production"),
    "introspection-on": Finding("warning", "`GRAPHQL_INTROSPECTION` on in production"),
    "hash-workers-oversubscribed": Finding(
        "warning", "`HASH_WORKERS` x workers above the usable cores"
    ),
}


def findings_table() -> str:
    """The README's table of findings (Markdown), from :data:`FINDINGS`."""
    rows = ["| code | level | finding |", "|---|---|---|"]
    rows += [f"| `{code}` | {f.level} | {f.what} |" for code, f in FINDINGS.items()]
    return "\n".join(rows) + "\n"


@dataclass(frozen=True)
class Deployment:
    """How the configuration will run: processes per instance, instances, a proxy in front."""

    workers: int = 1
    instances: int = 1
    behind_proxy: bool = False

    @property
    def processes(self) -> int:
        return self.workers * self.instances


@dataclass(frozen=True)
class Problem:
    """One finding: its level, the setting at fault (empty when none is), what to do, and
    its code in :data:`FINDINGS`."""

    level: Level
    setting: str
    message: str
    code: str


@dataclass
class Report:
    """Everything ``check-config`` found, in the order it checked."""

    environment: str
    deployment: Deployment
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(p.level == "error" for p in self.problems)

    @property
    def warnings(self) -> int:
        return sum(p.level == "warning" for p in self.problems)

    def add(self, code: str, setting: str, message: str) -> None:
        """Record a finding, unless its setting is already in error (once is enough)."""
        if any(p.level == "error" and p.setting == setting for p in self.problems):
            return
        self.problems.append(Problem(FINDINGS[code].level, setting, message, code))

    def as_json(self) -> str:
        return json.dumps(
            {
                "environment": self.environment,
                "deployment": asdict(self.deployment),
                "errors": self.errors,
                "warnings": self.warnings,
                "problems": [asdict(p) for p in self.problems],
            },
            indent=2,
        )

    def as_text(self) -> str:
        d = self.deployment
        lines = [
            f"authgraph check-config: {self.environment}, {d.instances} instance(s) of "
            f"{d.workers} worker(s){', behind a proxy' if d.behind_proxy else ''}"
        ]
        for p in self.problems:
            lines.append(f"{p.level:<7} {p.setting + ': ' if p.setting else ''}{p.message}")
        lines.append(
            f"{self.errors} error(s), {self.warnings} warning(s)"
            if self.problems
            else "no problems found"
        )
        return "\n".join(lines) + "\n"


def check(environ: Mapping[str, str], deployment: Deployment) -> Report:
    """Every problem of the configuration in ``environ`` for ``deployment``."""
    try:
        production = load_section(Settings, Source(environ, production=False)).is_production
        report = Report("production" if production else "development", deployment)
    except ConfigurationError as exc:
        # An unreadable AUTHGRAPH_ENV: judge the rest by production's rules.
        production = True
        report = Report("production", deployment)
        report.add("environment-unknown", "AUTHGRAPH_ENV", str(exc))
    if not production:
        # Development would generate a missing key into a file: report it instead (below),
        # and check the rest with a stand-in, writing nothing.
        _development_secrets(report, environ)
        stand_in = secrets.token_urlsafe(48)
        environ = {
            **environ,
            **{n: stand_in + n for n in SECRETS if not environ.get(n, "").strip()},
        }
    _env_file(report, environ)
    source = Source(environ, production=production)
    sections: dict[type[Any], Any] = {}
    # The fields whose value was refused, by section: (field, the value as set).
    refused: dict[type[Any], dict[str, str]] = {}
    # OAuth providers are read per id by OAUTH_PROVIDERS' own check, not as a section here.
    for section in (s for s in SECTIONS[1:] if s is not OAuthProviderSettings):
        readable = []
        refused[section] = {}
        for f, declared in declarations(section):
            try:
                load_section(section, source, only=[f.name])
                readable.append(f.name)
            except ConfigurationError as exc:
                report.add("setting-refused", declared.env, str(exc))
                refused[section][f.name] = environ.get(declared.env, "").strip()
        # The settings that failed keep their defaults, and what they would say is not judged.
        sections[section] = load_section(section, source, only=readable)
    # But a refused value is set, not unset: the checks between settings (WEBHOOK_URL needs
    # WEBHOOK_SECRET, passkeys need WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS) see it as present,
    # so that fixing it does not reveal a second refusal check-config kept quiet about.
    auth = sections[AuthSettings]
    present: dict[str, Any] = {
        name: raw for name, raw in refused[AuthSettings].items() if raw and not getattr(auth, name)
    }
    for code, setting, message in dataclasses.replace(auth, **present).problems(
        production=production
    ):
        report.add(code, setting, message)
    settings = Settings(
        env="production" if production else "development",
        database=sections[DatabaseSettings],
        auth=sections[AuthSettings],
        http=sections[HttpSettings],
        mail=sections[MailSettings],
    )
    _recommend(report, settings, deployment)
    _trusted_documents(report, settings, refused[HttpSettings])
    if not report.errors:
        # What serve itself does: any refusal the checks above do not know of still shows.
        try:
            Settings.from_env(environ)
        except ConfigurationError as exc:
            report.add("setting-refused", "", str(exc))
    return report


def _env_file(report: Report, environ: Mapping[str, str]) -> None:
    """The settings file serve reads (``AUTHGRAPH_ENV_FILE``, by default ``.env``): one it
    cannot read stops it with a traceback, one that is not there is silently skipped."""
    named = environ.get("AUTHGRAPH_ENV_FILE", "").strip()
    path = Path(named or ".env")
    if path.is_file() or path.is_fifo():
        try:
            path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            report.add(
                "env-file-unreadable",
                "AUTHGRAPH_ENV_FILE",
                f"{path} cannot be read ({reason or exc}): serve stops before reading any setting.",
            )
    elif named:
        report.add(
            "env-file-missing",
            "AUTHGRAPH_ENV_FILE",
            f"{named} is not a file: serve would silently read no settings from it.",
        )


def _trusted_documents(report: Report, settings: Settings, refused: Mapping[str, str]) -> None:
    """The manifest each process loads at start-up (and refuses to start without)."""
    if "trusted_documents" in refused or "trusted_documents_only" in refused:
        return
    try:
        Documents.from_settings(settings)
    except ConfigurationError as exc:
        report.add("trusted-documents-unusable", "TRUSTED_DOCUMENTS", str(exc))


def _recommend(report: Report, settings: Settings, deployment: Deployment) -> None:
    """The deployment's problems and production's recommendations, once everything loads."""
    production = settings.is_production
    http, auth = settings.http, settings.auth
    processes = deployment.processes
    if settings.database.database_url.startswith("sqlite"):
        if deployment.instances > 1:
            report.add(
                "sqlite-instances",
                "DATABASE_URL",
                f"SQLite cannot be shared by {deployment.instances} instances on separate "
                "machines: use PostgreSQL (postgresql://user:password@host/db).",
            )
        elif deployment.workers > 1:
            report.add(
                "sqlite-workers",
                "DATABASE_URL",
                f"SQLite with {deployment.workers} workers: every write takes the one file's "
                "lock, so the workers wait on one another; PostgreSQL is recommended.",
            )
    if auth.rate_limit_storage.startswith("memory") and processes > 1:
        report.add(
            "rate-limits-per-process",
            "RATE_LIMIT_STORAGE",
            f"memory:// with {processes} processes: each counts on its own, so an account gets "
            f"up to {processes} times LOGIN_RATE_LIMIT's failures; use redis://host:6379 so "
            "that every process shares the counts.",
        )
    if deployment.behind_proxy and not http.trusted_proxies:
        report.add(
            "trusted-proxies-missing",
            "TRUSTED_PROXIES",
            "empty behind a proxy: every client has the proxy's address, so the per-IP rate "
            "limits lock everyone out together and sessions record the proxy; set it to the "
            "proxy's address.",
        )
    elif production and not http.trusted_proxies:
        report.add(
            "trusted-proxies-unset",
            "TRUSTED_PROXIES",
            "empty: if a reverse proxy is in front (recommended in production), set it to the "
            "proxy's address and run check-config with --behind-proxy.",
        )
    for network in http.trusted_proxies:
        if ipaddress.ip_network(network, strict=False).prefixlen == 0:
            report.add(
                "trusted-proxies-everyone",
                "TRUSTED_PROXIES",
                f"{network} trusts every address: any client can write X-Forwarded-For and "
                "choose the address its rate limits count; list the proxies only.",
            )
    if production:
        for origin in http.cors_origins:
            if origin.startswith("http://"):
                report.add(
                    "cors-plain-http",
                    "CORS_ORIGINS",
                    f"{origin} is plain HTTP: tokens and cookies would cross the network in "
                    "clear text; production's origins must be https://.",
                )
        if auth.app_url.startswith("http://"):
            report.add(
                "app-url-plain-http",
                "APP_URL",
                f"{auth.app_url} is plain HTTP: the links in emails carry one-time tokens.",
            )
        pages = (
            (
                "graphiql-on",
                "GRAPHIQL",
                settings.graphiql_enabled,
                "GraphiQL is served at GET /graphql",
            ),
            (
                "api-docs-on",
                "API_DOCS",
                settings.api_docs_enabled,
                "/docs loads Swagger UI from a CDN",
            ),
            (
                "introspection-on",
                "GRAPHQL_INTROSPECTION",
                settings.introspection_enabled,
                "the whole schema is readable by anyone",
            ),
        )
        for code, name, enabled, what in pages:
            if enabled:
                report.add(code, name, f"on in production: {what}; leave it unset (off).")
    elif auth.bcrypt_rounds < MIN_PRODUCTION_BCRYPT_ROUNDS:
        report.add(
            "development-bcrypt-rounds-low",
            "BCRYPT_ROUNDS",
            f"{auth.bcrypt_rounds} is refused in production (at least "
            f"{MIN_PRODUCTION_BCRYPT_ROUNDS}).",
        )
    hashing = auth.hash_worker_count * deployment.workers
    if hashing > usable_cores():
        report.add(
            "hash-workers-oversubscribed",
            "HASH_WORKERS",
            f"{auth.hash_worker_count} hashing threads in each of {deployment.workers} workers "
            f"is {hashing} on {usable_cores()} usable cores: set HASH_WORKERS to the cores "
            "divided by the workers.",
        )


def _development_secrets(report: Report, environ: Mapping[str, str]) -> None:
    """Missing or weak keys: development tolerates them (with a generated key), production not."""
    algorithm = environ.get("JWT_ALGORITHM", "").strip().upper() or AuthSettings.jwt_algorithm
    for name in SECRETS:
        if name == "KEY_ENCRYPTION_KEY" and algorithm not in ASYMMETRIC_ALGORITHMS:
            continue
        raw = environ.get(name, "").strip()
        problem = secret_problem(raw) if raw else None
        if not raw:
            report.add(
                "development-key-unset",
                name,
                "not set: development generates one and keeps it in a file; production "
                "refuses to start without it.",
            )
        elif problem:
            report.add("development-key-weak", name, f"{problem}; production refuses it.")
    for name in PREVIOUS_KEYS:
        for position, key in enumerate(comma_list(environ.get(name, "")), start=1):
            problem = secret_problem(key)
            if problem:
                report.add(
                    "development-key-weak",
                    name,
                    f"key {position} {problem}; production refuses it.",
                )
                break


def run(environ: Mapping[str, str], deployment: Deployment, *, as_json: bool) -> tuple[str, int]:
    """The report's text (or JSON) and the exit code: 1 with an error, else 0."""
    report = check(environ, deployment)
    output = report.as_json() + "\n" if as_json else report.as_text()
    return output, 1 if report.errors else 0
