"""``python -m bench.cpu [--requests N] [--profile]``: CPU time per `viewer` request, by document
kind, with each ASGI app called directly in this process (no HTTP, no wrk).

What a request costs the server's own process (all its threads: ``time.process_time``),
which another process's load on the machine changes far less than throughput. Leaves out
uvicorn's HTTP work (the same for every server). SQLite, one request at a time, best of 3.
``--profile`` writes a pyinstrument profile of trusted-document requests (the lean path) to
``bench/out/lean-profile.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

from bench.measure import server_env
from bench.seed import fresh_database, seed
from graph.documents import document_hash

VIEWER = "{ viewer { id email } }"
DIGEST = document_hash(VIEWER)
OUT = Path(__file__).resolve().parent / "out"
Body = Callable[[int], bytes]
_LIFESPANS: list[asyncio.Task[None]] = []

BODIES: dict[str, Body] = {
    "ad hoc": lambda i: json.dumps({"query": f"{VIEWER} # {i}"}).encode(),
    "cached": lambda i: json.dumps({"query": VIEWER}).encode(),
    "APQ": lambda i: json.dumps(
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": DIGEST}}}
    ).encode(),
    "trusted": lambda i: json.dumps({"documentId": f"sha256:{DIGEST}"}).encode(),
}


async def _call(app: Any, body: bytes, token: str) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _started(app: Any) -> asyncio.Task[None]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app({"type": "lifespan"}, inbox.get, outbox.put))
    # Kept: a task nothing refers to may be collected, and its app shut down with it.
    _LIFESPANS.append(task)
    message = await outbox.get()
    if message["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the app did not start: {message}")
    return task


async def _cpu_per_request(app: Any, body: Body, tokens: list[str], requests: int) -> float:
    status, answer = await _call(app, body(-1), tokens[0])
    if status != 200 or b'"email"' not in answer:
        raise RuntimeError(f"unexpected answer {status}: {answer[:200]!r}")
    best = float("inf")
    for attempt in range(3):
        start = time.process_time()
        for i in range(requests):
            await _call(app, body(attempt * requests + i), tokens[i % len(tokens)])
        best = min(best, (time.process_time() - start) / requests)
    return best


async def measure(requests: int, profile: bool) -> dict[str, float]:
    from bench.references import raw_floor, same_layer
    from graph.app import create_app
    from graph.settings import Settings

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="authgraph-cpu-") as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'bench.db'}"
        env = server_env(url, secrets.token_urlsafe(48), workdir)
        manifest = workdir / "manifest.json"
        manifest.write_text(json.dumps({DIGEST: VIEWER}))
        env["TRUSTED_DOCUMENTS"] = str(manifest)
        os.environ.update(env)  # the reference apps read the environment
        fresh_database(url)
        seeded = seed(Settings.from_env(env), workdir, users=500, tokens=200)
        tokens = seeded.tokens_file.read_text().split()
        lean = create_app(Settings.from_env(env))
        full = create_app(Settings.from_env({**env, "LEAN_EXECUTION": "false"}))
        apps = {"lean": lean, "full": full, "layer": same_layer(), "raw": raw_floor()}
        for app in apps.values():
            await _started(app)
        register = {"query": VIEWER, "extensions": json.loads(BODIES["APQ"](0))["extensions"]}
        await _call(lean, json.dumps(register).encode(), tokens[0])
        for kind, body in BODIES.items():
            figures[f"{kind} (lean path)"] = await _cpu_per_request(lean, body, tokens, requests)
        figures["cached, full pipeline"] = await _cpu_per_request(
            full, BODIES["cached"], tokens, requests
        )
        figures["ad hoc, full pipeline"] = await _cpu_per_request(
            full, BODIES["ad hoc"], tokens, requests
        )
        figures["same-layer route"] = await _cpu_per_request(
            apps["layer"], BODIES["cached"], tokens, requests
        )
        figures["raw floor"] = await _cpu_per_request(
            apps["raw"], BODIES["cached"], tokens, requests
        )
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002, async_mode="disabled")
            profiler.start()
            for i in range(requests):
                await _call(lean, BODIES["trusted"](i), tokens[i % len(tokens)])
            profiler.stop()
            OUT.mkdir(exist_ok=True)
            (OUT / "lean-profile.txt").write_text(profiler.output_text(show_all=False))
    return figures


async def memory(counts: tuple[int, ...]) -> list[tuple[int, float]]:
    """Peak RSS of this process after sending the lean app ``counts`` distinct unknown
    documents in turn (APQ registrations of new valid texts: parsed, validated, offered to
    the plan cache and the APQ store; no database work)."""
    from graph.app import create_app
    from graph.settings import Settings

    peaks = []
    with tempfile.TemporaryDirectory(prefix="authgraph-memory-") as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'bench.db'}"
        env = server_env(url, secrets.token_urlsafe(48), workdir)
        fresh_database(url)
        app = create_app(Settings.from_env(env))
        await _started(app)
        sent = 0
        for target in counts:
            while sent < target:
                text = f"query Q{sent} {{ __typename }}"
                extensions = {"persistedQuery": {"version": 1, "sha256Hash": document_hash(text)}}
                body = json.dumps({"query": text, "extensions": extensions}).encode()
                status, _ = await _call(app, body, "")
                if status != 200:
                    raise RuntimeError(f"document {sent} answered {status}")
                sent += 1
            peaks.append((sent, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--memory",
        type=int,
        default=0,
        help="instead: peak RSS after 1,000 and after this many distinct unknown documents",
    )
    args = parser.parse_args()
    if args.memory:
        peaks = uvloop.run(memory((1_000, args.memory)))
        for sent, peak in peaks:
            print(f"| {sent:,} documents | {peak:.1f} MiB | {peak / peaks[0][1]:.2f} |")
        return
    figures = uvloop.run(measure(args.requests, args.profile))
    raw, layer = figures["raw floor"], figures["same-layer route"]
    print("| document | CPU per request | raw floor / this | same-layer / this |")
    print("|---|---:|---:|---:|")
    for name, seconds in figures.items():
        print(f"| {name} | {seconds * 1e6:.0f} us | {raw / seconds:.2f} | {layer / seconds:.2f} |")


if __name__ == "__main__":
    main()
