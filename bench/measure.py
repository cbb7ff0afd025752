"""The measurements of the benchmark: servers under wrk, in alternating rounds.

What each phase records goes into a :class:`DatabaseReport`; :mod:`bench.report` renders
those, :mod:`bench.run` is the command line.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import wrk
from bench.seed import PASSWORD, Seeded
from bench.servers import AUTHGRAPH_HS256, AUTHGRAPH_SERVER, RAW_FLOOR, SAME_LAYER, Server, Variant
from db.engine import normalize_database_url


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
    phases: tuple[str, ...] = ("viewer", "logins", "p99", "mix")
    mix_seconds: float = 15
    mix_clients: int = 200
    mix_think_ms: int = 250
    mix_login_think_ms: int = 1000


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
class Latency:
    """p50 and p95 of one kind of request in one run, in milliseconds, and its errors."""

    p50_ms: float
    p95_ms: float
    requests: int
    errors: int
    timeouts: int

    @classmethod
    def of(cls, result: wrk.WrkResult) -> Latency:
        assert result.p95_ms is not None, "mix.lua prints the 95th percentile"
        return cls(result.p50_ms, result.p95_ms, result.requests, result.errors, result.timeouts)


@dataclass
class MixRound:
    """One round of the mixed-load phase: each kind alone, then all of them together."""

    viewer_alone: Latency
    refresh_alone: Latency
    viewer_mixed: Latency
    refresh_mixed: Latency
    logins_mixed: Latency
    logins_served: int
    logins_rate_limited: int


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
    mix: list[MixRound] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    # Markdown rows of the document-kind and memory phases (bench/documents.py).
    documents: list[str] = field(default_factory=list)
    memory: list[str] = field(default_factory=list)


# -- running things ----------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def server_env(database_url: str, secret: str, workdir: Path) -> dict[str, str]:
    """Production costs (bcrypt 12), no access log, no pruning during a run.

    Development mode, so that no SMTP server is needed: nothing measured here sends mail,
    and the modes differ only in checks made at start-up and in error messages.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "KEY_", "AUTHGRAPH_"))}
    env.update(
        AUTHGRAPH_ENV="development",
        AUTHGRAPH_ENV_FILE=str(workdir / "no.env"),
        MAIL_DIR=str(workdir / "mail"),
        GRAPHQL_INTROSPECTION="false",  # as in production: one more validation rule
        # wrk sends every login from 127.0.0.1: the per-client limit would answer RateLimited
        # after 100. The limiter still runs (and costs what it costs) on every login.
        LOGIN_IP_RATE_LIMIT="1000000/minute",
        REFRESH_RATE_LIMIT="1000000/minute",  # the same for the mixed load's refreshes
        DATABASE_URL=database_url,
        JWT_SECRET=secret,
        # Derived from the run's secret: the seeder and every server open the same keys.
        KEY_ENCRYPTION_KEY="kek-" + secret,
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
    email = seeded.emails_file.read_text().split("\n", 1)[0]
    servers: list[Server] = []
    try:
        for variant in variants:
            servers.append(Server(variant, cpus=cpus, env=env, cwd=workdir))
        for server in servers:
            token = tokens_of(server.variant, seeded).read_text().split("\n", 1)[0]
            server.wait_ready(token, email)
        yield servers
    finally:
        for server in servers:
            server.stop()


def tokens_of(variant: Variant, seeded: Seeded) -> Path:
    """The access tokens a variant verifies: ES256 (the default) or HS256."""
    return seeded.hs256_tokens_file if variant.hs256 else seeded.tokens_file


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
    variants = (AUTHGRAPH_SERVER, AUTHGRAPH_HS256, SAME_LAYER, RAW_FLOOR)
    with running(variants, cpus=options.server_cpu, env=env, workdir=workdir, seeded=seeded) as (
        servers
    ):
        for server in servers:  # warm-up: caches, pools, the CPU's frequency
            wrk.run(
                server.url,
                "viewer.lua",
                seconds=2,
                connections=options.connections,
                cpus=options.load_cpu,
                script_args=[str(tokens_of(server.variant, seeded))],
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
                    script_args=[str(tokens_of(server.variant, seeded))],
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


def mix_split(clients: int) -> tuple[int, int, int]:
    """Connections for logins, refreshes and viewers: half log in, a quarter each for the rest."""
    logins = max(1, clients // 2)
    refreshes = max(1, (clients - logins) // 2)
    return logins, refreshes, max(1, clients - logins - refreshes)


def measure_mix(
    report: DatabaseReport, options: Options, env: Mapping[str, str], workdir: Path, seeded: Seeded
) -> None:
    """Logins mixed with refreshToken and viewer, against each of the latter two alone.

    The server has both cores (one free for hashing, as it should be deployed), the three
    wrk processes run on the load core. Every client waits a think time between calls:
    refreshes and viewers ``mix_think_ms`` (a load the server carries easily alone), logins
    ``mix_login_think_ms`` (about a refused login's ``retryAfter``), and half the clients
    log in: far more than the cores can hash. What is measured is how much the logins slow
    the calls that hash nothing, and how the logins themselves are answered.
    """
    all_cpus = f"{options.server_cpu},{options.load_cpu}"
    logins, refreshes, viewers = mix_split(options.mix_clients)
    think, login_think = str(options.mix_think_ms), str(options.mix_login_think_ms)
    # A refresh token goes back into a run's pool each time it is rotated, but a run that
    # ends leaves its last tokens spent or unknown: every run gets tokens of its own, or the
    # next would present spent ones and be answered (rightly) as a theft.
    refresh_runs = 1 + 2 * options.rounds
    refresh_files = iter(_split_lines(seeded.refresh_tokens_file, refresh_runs, workdir))
    connections = {"login": logins, "refresh": refreshes, "viewer": viewers}

    def script_args(name: str) -> list[str]:
        if name == "login":
            return ["login", str(seeded.emails_file), PASSWORD, login_think]
        if name == "refresh":
            return ["refresh", str(next(refresh_files)), think]
        return ["viewer", str(seeded.tokens_file), think]

    with running(
        [AUTHGRAPH_SERVER], cpus=all_cpus, env=env, workdir=workdir, seeded=seeded
    ) as servers:
        url = servers[0].url

        def load(*names: str, seconds: float) -> dict[str, wrk.WrkResult]:
            with ThreadPoolExecutor(len(names)) as pool:
                futures = {
                    name: pool.submit(
                        wrk.run,
                        url,
                        "mix.lua",
                        seconds=seconds,
                        connections=connections[name],
                        cpus=options.load_cpu,
                        script_args=script_args(name),
                    )
                    for name in names
                }
                return {name: future.result() for name, future in futures.items()}

        load("viewer", "refresh", seconds=2)  # warm-up: caches, pools, the CPU's frequency
        for round_no in range(options.rounds):
            viewer_alone = load("viewer", seconds=options.mix_seconds)["viewer"]
            refresh_alone = load("refresh", seconds=options.mix_seconds)["refresh"]
            mixed = load("login", "refresh", "viewer", seconds=options.mix_seconds)
            login = mixed["login"]
            figures = MixRound(
                viewer_alone=Latency.of(viewer_alone),
                refresh_alone=Latency.of(refresh_alone),
                viewer_mixed=Latency.of(mixed["viewer"]),
                refresh_mixed=Latency.of(mixed["refresh"]),
                logins_mixed=Latency.of(login),
                logins_served=login.served or 0,
                logins_rate_limited=login.rate_limited or 0,
            )
            report.mix.append(figures)
            log(
                f"{report.database} round {round_no + 1} mix: refresh p50 "
                f"{figures.refresh_mixed.p50_ms:.1f} ms, viewer p50 "
                f"{figures.viewer_mixed.p50_ms:.1f} ms (alone {figures.viewer_alone.p50_ms:.1f}); "
                f"logins served {figures.logins_served}, RateLimited "
                f"{figures.logins_rate_limited}, errors {login.errors}"
            )
            # Let the logins still queued when wrk stopped finish before the next round.
            _drain(url, seeded.emails_file.read_text().split("\n", 1)[0])
        report.peak_rss_mb = max(report.peak_rss_mb, servers[0].peak_rss_mb())


def _split_lines(path: Path, parts: int, directory: Path) -> list[Path]:
    """``parts`` files holding disjoint, equal shares of ``path``'s lines."""
    lines = path.read_text().split()
    share = len(lines) // parts
    if share < 1:
        raise ValueError(f"{path} has {len(lines)} lines: too few for {parts} runs")
    files = []
    for n in range(parts):
        part = directory / f"{path.stem}-{n}.txt"
        part.write_text("\n".join(lines[n * share : (n + 1) * share]) + "\n")
        files.append(part)
    return files


def _drain(url: str, email: str, seconds: float = 120) -> None:
    """Log in until a login is served: the logins still queued when wrk stopped are done.

    A server that does not catch up within ``seconds`` is logged and left: the next round's
    figures then show it.
    """
    query = (
        "mutation L($e: String!, $p: String!) { login(input: {email: $e, password: $p}) "
        "{ __typename ... on RateLimited { retryAfter } } }"
    )
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            try:
                body = client.post(
                    "/graphql", json={"query": query, "variables": {"e": email, "p": PASSWORD}}
                ).json()
            except httpx.TimeoutException:
                continue
            result = body.get("data", {}).get("login") or {}
            if result.get("__typename") != "RateLimited":
                return
            time.sleep(result["retryAfter"])
    log(f"the server did not serve a login within {seconds:.0f} s of the mixed load's end")


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
