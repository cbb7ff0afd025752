"""``authgraph check-config``: every problem of a configuration, and what production needs.

The settings are read as ``serve`` reads them (the environment over ``.env``), but where the
loader stops at the first refusal this reads each setting on its own and reports them all,
then, when the whole configuration loads, checks it against the deployment described on
the command line (``--workers``, ``--instances``, ``--behind-proxy``). An *error* is what
``serve`` refuses, or what would defeat a protection in that deployment (rate limits counted
per process, every client seen as the proxy); a *warning* is a recommendation.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from auth.config import Source, declarations, load_section
from auth.errors import ConfigurationError
from auth.hashing import usable_cores
from auth.keys import ASYMMETRIC_ALGORITHMS
from auth.settings import MIN_PRODUCTION_BCRYPT_ROUNDS, AuthSettings, secret_problem
from graph.settings import SECTIONS, DatabaseSettings, HttpSettings, Settings
from mail.settings import MailSettings

Level = Literal["error", "warning"]
SECRETS = ("JWT_SECRET", "KEY_ENCRYPTION_KEY", "MFA_ENCRYPTION_KEY")


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
    """One finding: its level, the setting at fault (empty when none is), and what to do."""

    level: Level
    setting: str
    message: str


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

    def add(self, level: Level, setting: str, message: str) -> None:
        """Record a finding, unless its setting is already in error (once is enough)."""
        if any(p.level == "error" and p.setting == setting for p in self.problems):
            return
        self.problems.append(Problem(level, setting, message))

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
        report.add("error", "AUTHGRAPH_ENV", str(exc))
    if not production:
        # Development would generate a missing key into a file: report it instead (below),
        # and check the rest with a stand-in, writing nothing.
        _development_secrets(report, environ)
        stand_in = secrets.token_urlsafe(48)
        environ = {
            **environ,
            **{n: stand_in + n for n in SECRETS if not environ.get(n, "").strip()},
        }
    source = Source(environ, production=production)
    sections: dict[type[Any], Any] = {}
    for section in SECTIONS[1:]:
        readable = []
        for f, declared in declarations(section):
            try:
                load_section(section, source, only=[f.name])
                readable.append(f.name)
            except ConfigurationError as exc:
                report.add("error", declared.env, str(exc))
        # The settings that failed keep their defaults, and what they would say is not judged.
        sections[section] = load_section(section, source, only=readable)
    for setting, message in sections[AuthSettings].problems(production=production):
        report.add("error", setting, message)
    settings = Settings(
        env="production" if production else "development",
        database=sections[DatabaseSettings],
        auth=sections[AuthSettings],
        http=sections[HttpSettings],
        mail=sections[MailSettings],
    )
    _recommend(report, settings, deployment)
    if not report.errors:
        # What serve itself does: any refusal the checks above do not know of still shows.
        try:
            Settings.from_env(environ)
        except ConfigurationError as exc:
            report.add("error", "", str(exc))
    return report


def _recommend(report: Report, settings: Settings, deployment: Deployment) -> None:
    """The deployment's problems and production's recommendations, once everything loads."""
    production = settings.is_production
    http, auth = settings.http, settings.auth
    processes = deployment.processes
    if settings.database.database_url.startswith("sqlite"):
        if deployment.instances > 1:
            report.add(
                "error",
                "DATABASE_URL",
                f"SQLite cannot be shared by {deployment.instances} instances on separate "
                "machines: use PostgreSQL (postgresql://user:password@host/db).",
            )
        elif deployment.workers > 1:
            report.add(
                "warning",
                "DATABASE_URL",
                f"SQLite with {deployment.workers} workers: every write takes the one file's "
                "lock, so the workers wait on one another; PostgreSQL is recommended.",
            )
    if auth.rate_limit_storage.startswith("memory") and processes > 1:
        report.add(
            "error",
            "RATE_LIMIT_STORAGE",
            f"memory:// with {processes} processes: each counts on its own, so an account gets "
            f"up to {processes} times LOGIN_RATE_LIMIT's failures; use redis://host:6379 so "
            "that every process shares the counts.",
        )
    if deployment.behind_proxy and not http.trusted_proxies:
        report.add(
            "error",
            "TRUSTED_PROXIES",
            "empty behind a proxy: every client has the proxy's address, so the per-IP rate "
            "limits lock everyone out together and sessions record the proxy; set it to the "
            "proxy's address.",
        )
    elif production and not http.trusted_proxies:
        report.add(
            "warning",
            "TRUSTED_PROXIES",
            "empty: if a reverse proxy is in front (recommended in production), set it to the "
            "proxy's address and run check-config with --behind-proxy.",
        )
    for network in http.trusted_proxies:
        if ipaddress.ip_network(network, strict=False).prefixlen == 0:
            report.add(
                "error",
                "TRUSTED_PROXIES",
                f"{network} trusts every address: any client can write X-Forwarded-For and "
                "choose the address its rate limits count; list the proxies only.",
            )
    if production:
        for origin in http.cors_origins:
            if origin.startswith("http://"):
                report.add(
                    "error",
                    "CORS_ORIGINS",
                    f"{origin} is plain HTTP: tokens and cookies would cross the network in "
                    "clear text; production's origins must be https://.",
                )
        if auth.app_url.startswith("http://"):
            report.add(
                "warning",
                "APP_URL",
                f"{auth.app_url} is plain HTTP: the links in emails carry one-time tokens.",
            )
        pages = (
            ("GRAPHIQL", settings.graphiql_enabled, "GraphiQL is served at GET /graphql"),
            ("API_DOCS", settings.api_docs_enabled, "/docs loads Swagger UI from a CDN"),
            (
                "GRAPHQL_INTROSPECTION",
                settings.introspection_enabled,
                "the whole schema is readable by anyone",
            ),
        )
        for name, enabled, what in pages:
            if enabled:
                report.add("warning", name, f"on in production: {what}; leave it unset (off).")
    elif auth.bcrypt_rounds < MIN_PRODUCTION_BCRYPT_ROUNDS:
        report.add(
            "warning",
            "BCRYPT_ROUNDS",
            f"{auth.bcrypt_rounds} is refused in production (at least "
            f"{MIN_PRODUCTION_BCRYPT_ROUNDS}).",
        )
    hashing = auth.hash_worker_count * deployment.workers
    if hashing > usable_cores():
        report.add(
            "warning",
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
                "warning",
                name,
                "not set: development generates one and keeps it in a file; production "
                "refuses to start without it.",
            )
        elif problem:
            report.add("warning", name, f"{problem}; production refuses it.")


def run(environ: Mapping[str, str], deployment: Deployment, *, as_json: bool) -> tuple[str, int]:
    """The report's text (or JSON) and the exit code: 1 with an error, else 0."""
    report = check(environ, deployment)
    output = report.as_json() + "\n" if as_json else report.as_text()
    return output, 1 if report.errors else 0
