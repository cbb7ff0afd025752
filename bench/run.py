"""``python -m bench.run`` (``make bench``): authgraph against bare routes, on loopback.

For each database (SQLite always, PostgreSQL when it answers) it seeds a fresh database,
starts the real ``authgraph serve`` and two reference servers with the same uvicorn
settings (see :mod:`bench.references`), pinned to one core with the load generator (wrk)
on the other, and measures in rounds that alternate the servers so the machine's noise
falls on all of them alike. Then logins against the bcrypt limit, and ``viewer`` latency
with and without a stream of logins. It prints a Markdown report and keeps it, with the
raw figures as JSON, in ``bench/out/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from auth.settings import Settings
from bench import wrk
from bench.seed import PASSWORD, Seeded, fresh_database, seed
from bench.servers import AUTHGRAPH_SERVER, RAW_FLOOR, SAME_LAYER, Server, Variant
from db.engine import normalize_database_url

OUT_DIR = Path(__file__).resolve().parent / "out"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/authgraph_bench"
PACKAGES = (
    "strawberry-graphql",
    "graphql-core",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "sqlalchemy",
    "psycopg",
    "python-jose",
    "libpass",
    "bcrypt",
)
TARGETS = {
    "viewer vs raw floor": 0.5,
    "viewer vs same-layer route": 0.8,
    "login vs bcrypt limit": 0.9,
}
P99_TARGET = 1.5


@dataclass
class Options:
    rounds: int
    seconds: float
    login_seconds: float
    connections: int
    login_connections: int
    login_rate: float
    users: int
    tokens: int
    server_cpu: str
    load_cpu: str
    postgres_url: str | None
    phases: tuple[str, ...] = ("viewer", "logins", "p99")


@dataclass
class ViewerFigures:
    variant: str
    rps: list[float]
    p50_ms: list[float]
    p99_ms: list[float]
    errors: int

    @property
    def median_rps(self) -> float:
        return statistics.median(self.rps)

    @property
    def spread(self) -> float:
        """(max - min) / median of the rounds' requests per second."""
        return (max(self.rps) - min(self.rps)) / self.median_rps


@dataclass
class DatabaseReport:
    database: str
    viewer: list[ViewerFigures] = field(default_factory=list)
    ratio_raw: list[float] = field(default_factory=list)
    ratio_layer: list[float] = field(default_factory=list)
    verify_ms: list[float] = field(default_factory=list)
    logins: list[dict[str, Any]] = field(default_factory=list)
    p99_quiet_ms: list[float] = field(default_factory=list)
    p99_logins_ms: list[float] = field(default_factory=list)
    trickle_logins: int = 0
    trickle_failures: int = 0
    peak_rss_mb: float = 0.0


# -- running things ----------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def server_env(database_url: str, secret: str, workdir: Path) -> dict[str, str]:
    """Production costs (bcrypt 12), no access log, no pruning during a run.

    Development mode, so that no SMTP server is needed: nothing measured here sends mail,
    and the modes differ only in checks made at start-up and in error messages.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "AUTHGRAPH_"))}
    env.update(
        AUTHGRAPH_ENV="development",
        AUTHGRAPH_ENV_FILE=str(workdir / "no.env"),
        MAIL_DIR=str(workdir / "mail"),
        GRAPHQL_INTROSPECTION="false",  # as in production: one more validation rule
        # wrk sends every login from 127.0.0.1: the per-client limit would answer RateLimited
        # after 100. The limiter still runs (and costs what it costs) on every login.
        LOGIN_IP_RATE_LIMIT="1000000/minute",
        DATABASE_URL=database_url,
        JWT_SECRET=secret,
        BCRYPT_ROUNDS="12",
        ACCESS_TOKEN_TTL_SECONDS="86400",
        SESSION_PRUNE_INTERVAL_SECONDS="0",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
    )
    return env


@contextmanager
def running(
    variants: Sequence[Variant], *, cpus: str, env: Mapping[str, str], workdir: Path, seeded: Seeded
) -> Iterator[list[Server]]:
    token = seeded.tokens_file.read_text().split("\n", 1)[0]
    email = seeded.emails_file.read_text().split("\n", 1)[0]
    servers: list[Server] = []
    try:
        for variant in variants:
            servers.append(Server(variant, cpus=cpus, env=env, cwd=workdir))
        for server in servers:
            server.wait_ready(token, email)
        yield servers
    finally:
        for server in servers:
            server.stop()


def verify_ms(options: Options, env: Mapping[str, str]) -> float:
    """One bcrypt verification at the servers' cost, on the server's core, in milliseconds."""
    done = subprocess.run(
        ["taskset", "-c", options.server_cpu, sys.executable, "-m", "bench.verify_cost", "12"],
        env=dict(env),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(done.stdout.strip()) * 1000


class LoginTrickle:
    """Logins at a steady rate from a background thread, one at a time."""

    def __init__(self, url: str, emails: Sequence[str], rate: float) -> None:
        self.url, self.emails, self.interval = url, emails, 1 / rate
        self.done = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LoginTrickle:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        query = (
            "mutation L($e: String!, $p: String!) { login(input: {email: $e, password: $p}) "
            "{ __typename } }"
        )
        with httpx.Client(base_url=self.url, timeout=30) as client:
            next_at = time.monotonic()
            while not self._stop.is_set():
                email = self.emails[self.done % len(self.emails)]
                body = client.post(
                    "/graphql", json={"query": query, "variables": {"e": email, "p": PASSWORD}}
                ).json()
                self.done += 1
                if body.get("data", {}).get("login", {}).get("__typename") != "AuthPayload":
                    self.failures += 1
                next_at += self.interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))


# -- the phases ------------------------------------------------------------------------------


def measure_viewer(
    report: DatabaseReport, options: Options, env: Mapping[str, str], workdir: Path, seeded: Seeded
) -> None:
    variants = (AUTHGRAPH_SERVER, SAME_LAYER, RAW_FLOOR)
    with running(variants, cpus=options.server_cpu, env=env, workdir=workdir, seeded=seeded) as (
        servers
    ):
        tokens = [str(seeded.tokens_file)]
        for server in servers:  # warm-up: caches, pools, the CPU's frequency
            wrk.run(
                server.url,
                "viewer.lua",
                seconds=2,
                connections=options.connections,
                cpus=options.load_cpu,
                script_args=tokens,
            )
        results: dict[str, list[wrk.WrkResult]] = {s.variant.name: [] for s in servers}
        for round_no in range(options.rounds):
            for server in servers:
                result = wrk.run(
                    server.url,
                    "viewer.lua",
                    seconds=options.seconds,
                    connections=options.connections,
                    cpus=options.load_cpu,
                    script_args=tokens,
                )
                results[server.variant.name].append(result)
                log(
                    f"{report.database} round {round_no + 1} {server.variant.name}: "
                    f"{result.requests_per_second:.0f} req/s, p99 {result.p99_ms:.1f} ms"
                )
        report.peak_rss_mb = max(report.peak_rss_mb, servers[0].peak_rss_mb())
    for name, runs in results.items():
        report.viewer.append(
            ViewerFigures(
                variant=name,
                rps=[r.requests_per_second for r in runs],
                p50_ms=[r.p50_ms for r in runs],
                p99_ms=[r.p99_ms for r in runs],
                errors=sum(r.errors for r in runs),
            )
        )
    ours = results[AUTHGRAPH_SERVER.name]
    # Ratios per round, of runs seconds apart, then the median: drift cancels out.
    report.ratio_raw = [
        a.requests_per_second / r.requests_per_second
        for a, r in zip(ours, results[RAW_FLOOR.name], strict=True)
    ]
    report.ratio_layer = [
        a.requests_per_second / r.requests_per_second
        for a, r in zip(ours, results[SAME_LAYER.name], strict=True)
    ]


def measure_logins(
    report: DatabaseReport, options: Options, env: Mapping[str, str], workdir: Path, seeded: Seeded
) -> None:
    emails = [str(seeded.emails_file), PASSWORD]
    all_cpus = f"{options.server_cpu},{options.load_cpu}"
    for cpus in (options.server_cpu, all_cpus):
        cores = len(cpus.split(","))
        with running(
            [AUTHGRAPH_SERVER], cpus=cpus, env=env, workdir=workdir, seeded=seeded
        ) as servers:
            cost = verify_ms(options, env)
            cpu_before, started = servers[0].cpu_seconds(), time.monotonic()
            result = wrk.run(
                servers[0].url,
                "login.lua",
                seconds=options.login_seconds,
                connections=options.login_connections * cores,
                cpus=options.load_cpu,
                script_args=emails,
            )
            # The share of its cores the server got: below 1, something else took CPU time.
            cpu_share = (servers[0].cpu_seconds() - cpu_before) / (
                (time.monotonic() - started) * cores
            )
            cost = statistics.median([cost, verify_ms(options, env)])
            report.verify_ms.append(cost)
            limit = cores / (cost / 1000)
            report.logins.append(
                {
                    "cores": cores,
                    "verify_ms": cost,
                    "limit_per_s": limit,
                    "logins_per_s": result.requests_per_second,
                    "ratio": result.requests_per_second / limit,
                    "p50_ms": result.p50_ms,
                    "cpu_share": cpu_share,
                    "errors": result.errors,
                }
            )
            log(
                f"{report.database} logins on {cores} core(s): {result.requests_per_second:.2f}/s, "
                f"limit {limit:.2f}/s (verify {cost:.0f} ms)"
            )
            report.peak_rss_mb = max(report.peak_rss_mb, servers[0].peak_rss_mb())


def measure_p99_under_logins(
    report: DatabaseReport, options: Options, env: Mapping[str, str], workdir: Path, seeded: Seeded
) -> None:
    """Server on both cores (one free for hashing), wrk on one; logins trickle in or not."""
    all_cpus = f"{options.server_cpu},{options.load_cpu}"
    emails = seeded.emails_file.read_text().split()
    tokens = [str(seeded.tokens_file)]
    with running(
        [AUTHGRAPH_SERVER], cpus=all_cpus, env=env, workdir=workdir, seeded=seeded
    ) as servers:
        url = servers[0].url

        def viewer_p99() -> float:
            result = wrk.run(
                url,
                "viewer.lua",
                seconds=options.seconds,
                connections=options.connections,
                cpus=options.load_cpu,
                script_args=tokens,
            )
            return result.p99_ms

        viewer_p99()  # warm-up
        for round_no in range(options.rounds):
            report.p99_quiet_ms.append(viewer_p99())
            with LoginTrickle(url, emails, options.login_rate) as trickle:
                report.p99_logins_ms.append(viewer_p99())
            report.trickle_logins += trickle.done
            report.trickle_failures += trickle.failures
            log(
                f"{report.database} round {round_no + 1} p99 quiet "
                f"{report.p99_quiet_ms[-1]:.1f} ms, with logins {report.p99_logins_ms[-1]:.1f} ms"
            )
        report.peak_rss_mb = max(report.peak_rss_mb, servers[0].peak_rss_mb())


# -- the report --------------------------------------------------------------------------------


def postgres_answers(url: str) -> bool:
    engine = create_engine(
        make_url(normalize_database_url(url)).set(database="postgres"),
        connect_args={"connect_timeout": 3},
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def machine() -> dict[str, Any]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "-"
    wrk_version = subprocess.run(
        [wrk.wrk_path(), "-v"], capture_output=True, text=True, check=False
    ).stdout.split("\n", 1)[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "wrk": wrk_version.strip(),
        "packages": versions,
        "load_average_before": os.getloadavg(),
    }


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _spread(ratios: Sequence[float]) -> str:
    """The median ratio and, in brackets, the lowest and highest of the rounds."""
    if not ratios:
        return "-"
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


def _mark(ok: bool) -> str:
    return "met" if ok else "NOT met"


def render(info: dict[str, Any], options: Options, reports: Sequence[DatabaseReport]) -> str:
    lines = [
        "# authgraph benchmark",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['os']}, Python {info['python']}, "
        f"{info['wrk']}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()) + ".",
        f"Load average before/after: {info['load_average_before']} / {info['load_average_after']}.",
        "",
        f"Servers pinned to CPU {options.server_cpu} (`taskset`), one uvicorn worker, uvloop and "
        f"httptools; wrk (1 thread, {options.connections} connections) on CPU {options.load_cpu}; "
        f"{options.rounds} rounds of {options.seconds:.0f} s alternating the servers; medians. "
        f"{options.users} users, each with a live session; {options.tokens} distinct tokens.",
        "",
        "## `{ viewer { id email } }`",
        "",
        "| database | server | req/s | spread | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        for figures in report.viewer:
            lines.append(
                f"| {report.database} | {figures.variant} | {figures.median_rps:.0f} | "
                f"{figures.spread:.0%} | {_median(figures.p50_ms):.1f} | "
                f"{_median(figures.p99_ms):.1f} | {figures.errors} |"
            )
    lines += [
        "",
        "| database | authgraph / raw floor | authgraph / same-layer route | peak RSS MiB |",
        "|---|---:|---:|---:|",
    ]
    for report in reports:
        lines.append(
            f"| {report.database} | {_spread(report.ratio_raw)} | {_spread(report.ratio_layer)} | "
            f"{report.peak_rss_mb:.0f} |"
        )
    lines += [
        "",
        f"## `login` (bcrypt cost 12, {options.login_connections} connections per core, "
        f"{options.login_seconds:.0f} s)",
        "",
        "| database | server cores | verify ms | bcrypt limit /s | logins /s | ratio | p50 ms "
        "| server CPU share | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        for row in report.logins:
            lines.append(
                f"| {report.database} | {row['cores']} | {row['verify_ms']:.0f} | "
                f"{row['limit_per_s']:.2f} | {row['logins_per_s']:.2f} | {row['ratio']:.2f} | "
                f"{row['p50_ms']:.0f} | {row['cpu_share']:.0%} | {row['errors']} |"
            )
    lines += [
        "",
        f"## `viewer` p99 with a stream of {options.login_rate:g} logins/s "
        f"(server on CPUs {options.server_cpu},{options.load_cpu})",
        "",
        "| database | p99 quiet ms | p99 with logins ms | ratio | logins (failed) |",
        "|---|---:|---:|---:|---:|",
    ]
    for report in reports:
        quiet, busy = _median(report.p99_quiet_ms), _median(report.p99_logins_ms)
        lines.append(
            f"| {report.database} | {quiet:.1f} | {busy:.1f} | {busy / quiet:.2f} | "
            f"{report.trickle_logins} ({report.trickle_failures}) |"
        )
    lines += ["", "## Targets", ""]
    for report in reports:
        raw, layer = _median(report.ratio_raw), _median(report.ratio_layer)
        login = max((row["ratio"] for row in report.logins), default=float("nan"))
        worst_login = min((row["ratio"] for row in report.logins), default=float("nan"))
        p99 = _median(report.p99_logins_ms) / _median(report.p99_quiet_ms)
        lines += [
            f"- {report.database}: viewer/raw floor {raw:.2f} (target 0.5: "
            f"{_mark(raw >= TARGETS['viewer vs raw floor'])}); viewer/same layer {layer:.2f} "
            f"(target 0.8: {_mark(layer >= TARGETS['viewer vs same-layer route'])}); login/limit "
            f"{worst_login:.2f}-{login:.2f} (target 0.9: "
            f"{_mark(worst_login >= TARGETS['login vs bcrypt limit'])}); p99 with/without logins "
            f"{p99:.2f} (target <= 1.5: {_mark(p99 <= P99_TARGET)})",
        ]
    return "\n".join(lines) + "\n"


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per viewer run")
    parser.add_argument("--login-seconds", type=float, default=30, help="seconds per login run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for viewer")
    parser.add_argument(
        "--login-connections",
        type=int,
        default=2,
        help="wrk connections per server core for login: enough to keep every core hashing, "
        "few enough that the logins cut off at the end of the run stay a small share",
    )
    parser.add_argument("--login-rate", type=float, default=2, help="logins/s beside viewer load")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--tokens", type=int, default=2_000)
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="a database the bench may drop and recreate; 'none' to skip PostgreSQL",
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s: checks the harness")
    parser.add_argument(
        "--phases",
        default="viewer,logins,p99",
        help="which measurements to run, comma-separated (default: viewer,logins,p99)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.login_seconds, args.users, args.tokens = 1, 2, 3, 200, 50
    return Options(
        rounds=args.rounds,
        seconds=args.seconds,
        login_seconds=args.login_seconds,
        connections=args.connections,
        login_connections=args.login_connections,
        login_rate=args.login_rate,
        users=args.users,
        tokens=args.tokens,
        server_cpu=args.server_cpu,
        load_cpu=args.load_cpu,
        postgres_url=None if args.postgres == "none" else args.postgres,
        phases=tuple(args.phases.split(",")),
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    for tool in ("taskset",):
        if shutil.which(tool) is None:
            print(
                f"bench: {tool} is missing (Debian: apt-get install -y util-linux)", file=sys.stderr
            )
            return 2
    try:
        wrk.wrk_path()
    except wrk.WrkError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    info = machine()
    databases: list[tuple[str, Callable[[Path], str]]] = [
        ("SQLite", lambda workdir: f"sqlite:///{workdir / 'bench.db'}")
    ]
    if options.postgres_url and postgres_answers(options.postgres_url):
        url = options.postgres_url
        databases.append(("PostgreSQL", lambda _workdir: url))
    elif options.postgres_url:
        log(f"PostgreSQL does not answer at {options.postgres_url}: SQLite only")
    secret = secrets.token_urlsafe(48)
    reports = []
    with tempfile.TemporaryDirectory(prefix="authgraph-bench-") as tmp:
        workdir = Path(tmp)
        for name, make_url_for in databases:
            database_url = make_url_for(workdir)
            env = server_env(database_url, secret, workdir)
            settings = Settings.from_env(env)
            log(f"{name}: seeding {options.users} users")
            fresh_database(database_url)
            seeded = seed(settings, workdir, users=options.users, tokens=options.tokens)
            report = DatabaseReport(name)
            if "viewer" in options.phases:
                measure_viewer(report, options, env, workdir, seeded)
            if "logins" in options.phases:
                measure_logins(report, options, env, workdir, seeded)
            if "p99" in options.phases:
                measure_p99_under_logins(report, options, env, workdir, seeded)
            reports.append(report)
    info["load_average_after"] = os.getloadavg()
    markdown = render(info, options, reports)
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / "latest.md").write_text(markdown)
    (OUT_DIR / "latest.json").write_text(
        json.dumps(
            {"machine": info, "options": asdict(options), "reports": [asdict(r) for r in reports]},
            indent=2,
        )
    )
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
