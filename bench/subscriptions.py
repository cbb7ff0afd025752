"""200 open subscriptions, then a logout: how long until every socket closed.

Run: ``.venv/bin/python -m bench.subscriptions [--connections 200] [--database-url URL]
[--instances N] [--redis-url URL]``. It starts ``--instances`` ``authgraph serve`` processes
(one by default) on one database (SQLite in a temporary folder unless a URL is given; with
``--redis-url`` as their RATE_LIMIT_STORAGE, which also carries revocation between them),
opens N graphql-transport-ws connections of one user's session spread over the instances,
each subscribed to ``viewerSessionEvents``, ends the session with ``logout`` on the first
instance, and prints the time from the logout's answer to each connection's 4403 close, as
ratios of ``SUBSCRIPTION_REVOCATION_SECONDS``, for the connections on the instance that
logged out and for those on the others (which learn of it by PostgreSQL NOTIFY or Redis).
A benchmark, not a test: it prints, it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bench.servers import AUTHGRAPH, free_port

PROTOCOL = Subprotocol("graphql-transport-ws")
PASSWORD = "correct horse battery staple"


def _env(database_url: str, folder: Path, bound: float, connections: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "KEY_"))}
    env.update(
        DATABASE_URL=database_url,
        JWT_SECRET="bench-subscriptions-secret-0123456789-abcdefghijklmnop",
        KEY_ENCRYPTION_KEY="bench-subscriptions-kek-0123456789-abcdefghijklmnopq",
        BCRYPT_ROUNDS="4",
        MAIL_DIR=str(folder / "mail"),
        SUBSCRIPTION_REVOCATION_SECONDS=str(bound),
        SUBSCRIPTION_CONNECTIONS_PER_USER=str(connections),
        SESSION_PRUNE_INTERVAL_SECONDS="0",
    )
    return env


async def _closed_after(socket: Any, since: list[float]) -> float:
    try:
        while True:
            await socket.recv()
    except ConnectionClosed as exc:
        ended = time.monotonic()
        code = exc.rcvd.code if exc.rcvd is not None else -1
        if code != 4403:
            return float("nan")
    return ended - since[0]


async def measure(bases: list[str], connections: int) -> list[float]:
    """The close delays of ``connections`` sockets, the i-th on ``bases[i % len(bases)]``."""
    async with httpx.AsyncClient(base_url=bases[0], timeout=60) as client:
        body = {
            "query": "mutation($e: String!, $p: String!) { signup(input: {email: $e, "
            "password: $p}) { ... on AuthPayload { accessToken } } }",
            "variables": {"e": f"bench{time.time_ns()}@example.com", "p": PASSWORD},
        }
        token = (await client.post("/graphql", json=body)).json()["data"]["signup"]["accessToken"]
        urls = [base.replace("http://", "ws://") + "/graphql" for base in bases]
        sockets = []
        for i in range(connections):
            socket = await websockets.connect(urls[i % len(urls)], subprotocols=[PROTOCOL])
            await socket.send(
                json.dumps(
                    {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
                )
            )
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            await socket.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": "subscription { viewerSessionEvents { kind } }"},
                    }
                )
            )
            sockets.append(socket)
        await asyncio.sleep(1.0)  # every subscription started
        since = [0.0]
        waiters = [asyncio.create_task(_closed_after(s, since)) for s in sockets]
        await client.post(
            "/graphql",
            json={"query": "mutation { logout(scope: ALL) { __typename } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        since[0] = time.monotonic()
        return list(await asyncio.gather(*waiters))


def _wait_until_up(base: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the server at {base} did not start")
        time.sleep(0.2)


def _report(label: str, delays: list[float], bound: float) -> None:
    closed = [d for d in delays if d == d]  # NaN: closed otherwise than with 4403
    ratios = sorted(d / bound for d in closed)
    print(f"{label}: connections {len(delays)}, closed with 4403: {len(closed)}")
    if ratios:
        print(
            f"{label}: close after logout / SUBSCRIPTION_REVOCATION_SECONDS: "
            f"median {statistics.median(ratios):.3f}, max {ratios[-1]:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--bound", type=float, default=2.0)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--redis-url", default=None, help="RATE_LIMIT_STORAGE of every instance")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
        env = _env(url, folder, args.bound, args.connections)
        if args.redis_url:
            env["RATE_LIMIT_STORAGE"] = args.redis_url
        subprocess.run([AUTHGRAPH, "migrate"], env=env, cwd=folder, check=True)
        servers: list[subprocess.Popen[bytes]] = []
        bases = []
        try:
            for n in range(args.instances):
                port = free_port()
                with open(folder / f"server-{n}.log", "wb") as log:
                    servers.append(
                        subprocess.Popen(
                            [AUTHGRAPH, "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env,
                            cwd=folder,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
                bases.append(f"http://127.0.0.1:{port}")
            for base in bases:
                _wait_until_up(base)
            delays = asyncio.run(measure(bases, args.connections))
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
    _report("all", delays, args.bound)
    if args.instances > 1:
        _report("the instance that logged out", delays[:: args.instances], args.bound)
        others = [d for i, d in enumerate(delays) if i % args.instances]
        _report("the other instances", others, args.bound)


if __name__ == "__main__":
    main()
