"""200 open subscriptions on one instance, then a logout: how long until every socket closed.

Run: ``.venv/bin/python -m bench.subscriptions [--connections 200] [--database-url URL]``.
It starts one ``authgraph serve`` (SQLite in a temporary folder unless a URL is given), opens
N graphql-transport-ws connections of one user's session, each subscribed to
``viewerSessionEvents``, ends the session with ``logout``, and prints the time from the
logout's answer to each connection's 4403 close, as ratios of
``SUBSCRIPTION_REVOCATION_SECONDS``. A benchmark, not a test: it prints, it asserts nothing.
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


async def measure(base: str, connections: int) -> list[float]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        body = {
            "query": "mutation($e: String!, $p: String!) { signup(input: {email: $e, "
            "password: $p}) { ... on AuthPayload { accessToken } } }",
            "variables": {"e": f"bench{time.time_ns()}@example.com", "p": PASSWORD},
        }
        token = (await client.post("/graphql", json=body)).json()["data"]["signup"]["accessToken"]
        url = base.replace("http://", "ws://") + "/graphql"
        sockets = []
        for _ in range(connections):
            socket = await websockets.connect(url, subprotocols=[PROTOCOL])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--bound", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
        env = _env(url, folder, args.bound, args.connections)
        subprocess.run([AUTHGRAPH, "migrate"], env=env, cwd=folder, check=True)
        port = free_port()
        with open(folder / "server.log", "wb") as log:
            server = subprocess.Popen(
                [AUTHGRAPH, "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            base = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit("the server did not start")
                    time.sleep(0.2)
                delays = asyncio.run(measure(base, args.connections))
            finally:
                server.terminate()
                server.wait(timeout=30)
    closed = [d for d in delays if d == d]  # NaN: closed otherwise than with 4403
    ratios = sorted(d / args.bound for d in closed)
    print(f"connections: {args.connections}, closed with 4403: {len(closed)}")
    if ratios:
        print(
            "close after logout / SUBSCRIPTION_REVOCATION_SECONDS: "
            f"median {statistics.median(ratios):.3f}, max {ratios[-1]:.3f}"
        )


if __name__ == "__main__":
    main()
