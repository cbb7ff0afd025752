"""``python -m bench.run`` (``make bench``): authgraph against bare routes, on loopback.

For each database (SQLite always, PostgreSQL when it answers) it seeds a fresh database,
starts the real ``authgraph serve`` and two reference servers with the same uvicorn
settings (see :mod:`bench.references`), pinned to one core with the load generator (wrk)
on the other, and measures in rounds that alternate the servers so the machine's noise
falls on all of them alike. Then logins against the bcrypt limit, ``viewer`` latency
with and without a stream of logins, and the mixed load: many clients logging in beside
``refreshToken`` and ``viewer`` clients, whose latency is compared with theirs alone. It
prints a Markdown report and keeps it, with the raw figures as JSON, in ``bench/out/``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from bench import wrk
from bench.documents import measure_documents, measure_memory
from bench.measure import (
    DatabaseReport,
    Options,
    log,
    measure_logins,
    measure_mix,
    measure_p99_under_logins,
    measure_viewer,
    postgres_answers,
    server_env,
)
from bench.report import machine, render
from bench.seed import fresh_database, seed
from graph.settings import Settings

OUT_DIR = Path(__file__).resolve().parent / "out"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/authgraph_bench"


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
    parser.add_argument(
        "--mix-seconds", type=float, default=15, help="seconds per run of the mixed-load phase"
    )
    parser.add_argument(
        "--mix-clients",
        type=int,
        default=200,
        help="connections of the mixed load: half log in, a quarter refresh, a quarter viewer",
    )
    parser.add_argument(
        "--mix-think-ms", type=int, default=250, help="pause of refresh and viewer clients"
    )
    parser.add_argument(
        "--mix-login-think-ms", type=int, default=1000, help="pause of login clients"
    )
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
        default="viewer,logins,p99,mix,documents,memory",
        help="which measurements to run, comma-separated (default: "
        "viewer,logins,p99,mix,documents,memory)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.login_seconds, args.users, args.tokens = 1, 2, 3, 200, 50
        args.mix_seconds, args.mix_clients = 3, 40
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
        mix_seconds=args.mix_seconds,
        mix_clients=args.mix_clients,
        mix_think_ms=args.mix_think_ms,
        mix_login_think_ms=args.mix_login_think_ms,
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
            if "mix" in options.phases:
                measure_mix(report, options, env, workdir, seeded)
            if "documents" in options.phases:
                report.documents = measure_documents(report, options, env, workdir, seeded)
            if "memory" in options.phases:
                report.memory = [measure_memory(report, options, env, workdir, seeded)]
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
