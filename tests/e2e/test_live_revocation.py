"""Subscriptions over graphql-transport-ws against real servers, and revocation reaching them.

The client is the ``websockets`` package speaking the protocol by hand. The cross-instance
case runs two ``authgraph serve`` processes on one database: the logout goes to one, the
subscription lives on the other (on PostgreSQL, LISTEN/NOTIFY carries it; on SQLite with
Redis as RATE_LIMIT_STORAGE, Redis pub/sub). No test asserts a timing: each waits at most
a generous bound for what must happen.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.conftest import empty_postgres, skip_or_fail
from tests.factories import LOGOUT, gql, login, mutate, signup, unique_email
from tests.servers import RELAXED_LIMITS, authgraph_env, run_cli, serve

SECRET = "live-revocation-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
KEK = "live-revocation-kek-0123456789-abcdefghijklmnopqrstuvwxyz-0123"
BOUND = 20.0  # seconds: generous, not a measured figure
PROTOCOL = Subprotocol("graphql-transport-ws")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")

SESSION_EVENTS = "subscription { viewerSessionEvents { kind sessionId } }"
SECURITY_EVENTS = "subscription { viewerSecurityEvents { kind detail current } }"


@pytest.fixture(params=["postgresql", "sqlite+redis"])
def backend(request: pytest.FixtureRequest) -> str:
    """PostgreSQL (LISTEN/NOTIFY), and SQLite with Redis pub/sub."""
    param: str = request.param
    return param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if backend == "postgresql":
        yield from empty_postgres(request)
    else:
        yield f"sqlite:///{tmp_path / 'live.db'}"


@contextmanager
def servers(database_url: str, backend: str, tmp_path: Path, count: int) -> Iterator[list[str]]:
    extra: dict[str, str] = {}
    if backend == "sqlite+redis":
        try:
            import redis

            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except Exception as exc:
            skip_or_fail(f"Redis is not reachable at {REDIS_URL}: {type(exc).__name__}")
        extra["RATE_LIMIT_STORAGE"] = REDIS_URL
        extra["RATE_LIMIT_KEY_PREFIX"] = f"live-{os.getpid()}"
    env = authgraph_env(
        DATABASE_URL=database_url,
        JWT_SECRET=SECRET,
        KEY_ENCRYPTION_KEY=KEK,
        MAIL_DIR=str(tmp_path / "mail"),
        CORS_ORIGINS="https://app.example.com",
        **RELAXED_LIMITS,
        **extra,
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with ExitStack() as stack:
        yield [stack.enter_context(serve(env, tmp_path)) for _ in range(count)]


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/graphql"


async def connect(base: str, token: str | None, **headers: str) -> Any:
    """A connection that sent connection_init (with ``token``, if any)."""
    socket = await websockets.connect(
        ws_url(base), subprotocols=[PROTOCOL], additional_headers=headers or None
    )
    payload = {"Authorization": f"Bearer {token}"} if token else {}
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    return socket


async def next_message(socket: Any) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), BOUND))
        if message["type"] != "ping":
            return message


async def closed_code(socket: Any) -> int:
    """Read until the server closes; its close code."""
    try:
        while True:
            await asyncio.wait_for(socket.recv(), BOUND)
    except ConnectionClosed as exc:
        received = exc.rcvd
    return -1 if received is None else int(received.code)


async def subscribe(socket: Any, op_id: str, query: str) -> None:
    await socket.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query}}))


def test_logout_on_one_instance_closes_the_subscription_on_another(
    database_url: str, backend: str, tmp_path: Path
) -> None:
    with servers(database_url, backend, tmp_path, 2) as (first, second):
        with httpx.Client(base_url=first, timeout=30) as client:
            email = unique_email("live")
            watched = signup(client, email=email)
            other = login(client, email)

        async def scenario() -> tuple[list[dict[str, Any]], int]:
            socket = await connect(second, watched["accessToken"])
            assert (await next_message(socket))["type"] == "connection_ack"
            await subscribe(socket, "s", SESSION_EVENTS)
            await subscribe(socket, "e", SECURITY_EVENTS)
            # Another session's logout is news, and the connection stays.
            await asyncio.to_thread(
                lambda: mutate(
                    httpx.Client(base_url=first, timeout=30),
                    LOGOUT,
                    {"scope": "CURRENT"},
                    token=other["accessToken"],
                )
            )
            seen = [await next_message(socket), await next_message(socket)]
            # This session's end: told, then closed with 4403.
            await asyncio.to_thread(
                lambda: mutate(
                    httpx.Client(base_url=first, timeout=30),
                    LOGOUT,
                    {"scope": "CURRENT"},
                    token=watched["accessToken"],
                )
            )
            seen += [await next_message(socket), await next_message(socket)]
            return seen, await closed_code(socket)

        seen, code = asyncio.run(scenario())
    payloads = {(m["id"], json.dumps(m["payload"]["data"], sort_keys=True)) for m in seen}
    assert (
        "e",
        json.dumps(
            {"viewerSecurityEvents": {"current": False, "detail": "current", "kind": "SIGNED_OUT"}},
            sort_keys=True,
        ),
    ) in payloads
    kinds = [m["payload"]["data"]["viewerSessionEvents"]["kind"] for m in seen if m["id"] == "s"]
    assert kinds == ["OTHER_SESSION_REVOKED", "SESSION_REVOKED"]
    assert code == 4403


def test_a_bad_token_or_a_foreign_origin_is_refused(
    database_url: str, backend: str, tmp_path: Path
) -> None:
    with servers(database_url, backend, tmp_path, 1) as (base,):
        with httpx.Client(base_url=base, timeout=30) as client:
            session = signup(client)
            assert gql(client, "{ viewer { id } }", token=session["accessToken"])["data"]

        async def scenario() -> list[int]:
            codes = []
            for token, headers in (
                (None, {}),
                ("not-a-token", {}),
                (session["accessToken"], {"Origin": "https://evil.example.com"}),
            ):
                socket = await connect(base, token, **headers)
                codes.append(await closed_code(socket))
            # An allowed origin and a good token: acknowledged.
            socket = await connect(base, session["accessToken"], Origin="https://app.example.com")
            ack = await next_message(socket)
            await socket.close()
            codes.append(0 if ack["type"] == "connection_ack" else -1)
            return codes

        assert asyncio.run(scenario()) == [4401, 4401, 4403, 0]
