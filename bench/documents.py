"""The document kinds (issue 17): ad hoc, cached, APQ and trusted `viewer`, one worker and two,
and peak memory after many distinct unknown documents.

Phases ``documents`` (kinds, workers) and ``memory`` of ``python -m bench.run``. Every figure
is a ratio to runs of the same round, seconds apart: on a shared machine only those hold up.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import httpx

from bench import wrk
from bench.measure import DatabaseReport, Options, log, running, tokens_of
from bench.seed import Seeded
from bench.servers import AUTHGRAPH_SERVER, RAW_FLOOR, SAME_LAYER, Variant
from graph.documents import document_hash

VIEWER = "{ viewer { id email } }"
DIGEST = document_hash(VIEWER)
LEAN = replace(AUTHGRAPH_SERVER, name="authgraph")
FULL = replace(
    AUTHGRAPH_SERVER, name="authgraph LEAN_EXECUTION=false", env=(("LEAN_EXECUTION", "false"),)
)
TWO_WORKERS = replace(
    AUTHGRAPH_SERVER,
    name="authgraph --workers 2",
    argv=(*AUTHGRAPH_SERVER.argv[:-1], "--workers", "2", "--port"),
)
# (server, kind as viewer.lua names it, the table's label)
RUNS = (
    (LEAN, "adhoc", "ad hoc (a new text each request)"),
    (LEAN, "query", "cached (the same text)"),
    (LEAN, "apq", "APQ (hash only)"),
    (LEAN, "trusted", "trusted (documentId)"),
    (FULL, "query", "cached, full pipeline"),
    (SAME_LAYER, "query", "same-layer route"),
    (RAW_FLOOR, "query", "raw floor"),
)


def manifest_env(env: Mapping[str, str], workdir: Path) -> dict[str, str]:
    path = workdir / "trusted-documents.json"
    path.write_text(json.dumps({DIGEST: VIEWER}))
    return {**env, "TRUSTED_DOCUMENTS": str(path)}


def _register(url: str, token: str) -> None:
    body = {"query": VIEWER, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": DIGEST}}}
    answer = httpx.post(f"{url}/graphql", json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text


def measure_documents(
    report: DatabaseReport, options: Options, env: Mapping[str, str], workdir: Path, seeded: Seeded
) -> list[str]:
    """The kinds table's markdown rows for this database, and the workers row."""
    env = manifest_env(env, workdir)
    variants = (LEAN, FULL, SAME_LAYER, RAW_FLOOR)
    by_label: dict[str, list[float]] = {label: [] for _, _, label in RUNS}
    p99: dict[str, list[float]] = {label: [] for _, _, label in RUNS}
    with running(
        variants, cpus=options.server_cpu, env=env, workdir=workdir, seeded=seeded
    ) as servers:
        url_of = {s.variant.name: s.url for s in servers}
        token = tokens_of(LEAN, seeded).read_text().split("\n", 1)[0]
        _register(url_of[LEAN.name], token)
        for round_no in range(options.rounds):
            for variant, kind, label in RUNS:
                result = wrk.run(
                    url_of[variant.name],
                    "viewer.lua",
                    seconds=options.seconds,
                    connections=options.connections,
                    cpus=options.load_cpu,
                    script_args=[str(tokens_of(variant, seeded)), kind, DIGEST],
                )
                by_label[label].append(result.requests_per_second)
                p99[label].append(result.p99_ms)
                rps = result.requests_per_second
                log(f"{report.database} round {round_no + 1} {label}: {rps:.0f} req/s")
    raw = by_label["raw floor"]
    layer = by_label["same-layer route"]
    rows = []
    for _, _, label in RUNS:
        runs = by_label[label]
        median = statistics.median(runs)
        spread = (max(runs) - min(runs)) / median if median else 0.0
        to_raw = statistics.median(a / r for a, r in zip(runs, raw, strict=True))
        to_layer = statistics.median(a / r for a, r in zip(runs, layer, strict=True))
        rows.append(
            f"| {report.database} | {label} | {median:.0f} | {spread:.0%} | "
            f"{statistics.median(p99[label]):.1f} | {to_raw:.2f} | {to_layer:.2f} |"
        )
    try:
        rows.append(_workers(report, options, env, workdir, seeded))
    except RuntimeError as exc:  # two workers may not start in time on a loaded machine
        log(f"{report.database} workers: not measured ({str(exc).splitlines()[0]})")
        rows.append(f"| {report.database} | `--workers 2` / one worker | not measured | | | | |")
    return rows


def _workers(
    report: DatabaseReport, options: Options, env: Mapping[str, str], workdir: Path, seeded: Seeded
) -> str:
    """``--workers 2`` on both cores against one worker on one, trusted `viewer`, alternated."""
    ratios = []
    for _ in range(options.rounds):
        figures = []
        for variant, cpus in ((LEAN, options.server_cpu), (TWO_WORKERS, "0,1")):
            with running((variant,), cpus=cpus, env=env, workdir=workdir, seeded=seeded) as servers:
                result = wrk.run(
                    servers[0].url,
                    "viewer.lua",
                    seconds=options.seconds,
                    connections=options.connections,
                    cpus=options.load_cpu,
                    script_args=[str(tokens_of(variant, seeded)), "trusted", DIGEST],
                )
                figures.append(result.requests_per_second)
        ratios.append(figures[1] / figures[0])
        log(f"{report.database} workers: 1 = {figures[0]:.0f}, 2 = {figures[1]:.0f} req/s")
    ratio = statistics.median(ratios)
    return f"| {report.database} | `--workers 2` / one worker (trusted), x | | | | {ratio:.2f} | |"


def measure_memory(
    report: DatabaseReport, options: Options, env: Mapping[str, str], workdir: Path, seeded: Seeded
) -> str:
    """Peak RSS after 1,000 and after 100,000 distinct unknown documents (each sent as an APQ
    registration of a new valid text, so it is parsed, validated and offered to both stores)."""
    variant: Variant = LEAN
    peaks = []
    with running(
        (variant,), cpus=options.server_cpu, env=env, workdir=workdir, seeded=seeded
    ) as servers:
        server = servers[0]
        sent = 0
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for target in (1_000, 100_000):
                while sent < target:
                    text = f"query Q{sent} {{ __typename }}"
                    body = {
                        "query": text,
                        "extensions": {
                            "persistedQuery": {"version": 1, "sha256Hash": document_hash(text)}
                        },
                    }
                    client.post("/graphql", json=body)
                    sent += 1
                peaks.append(server.peak_rss_mb())
                log(f"{report.database} memory: {sent} documents, peak RSS {peaks[-1]:.1f} MiB")
    small, large = peaks
    return f"| {report.database} | {small:.1f} MiB | {large:.1f} MiB | {large / small:.2f} |"
