"""A hung Redis (a private redis-server stopped with SIGSTOP) does not hang rate-limited calls.

The shared Redis is never touched: the test starts its own on a free loopback port.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import skip_or_fail
from tests.factories import signup
from tests.servers import authgraph_env, free_port, run_cli, serve

SECRET = "frozen-redis-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
LOGIN = (
    'mutation { login(input: {email: "nobody@example.com", password: "wrong guess"}) '
    "{ __typename } }"
)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    binary = shutil.which("redis-server")
    if binary is None:
        skip_or_fail("redis-server is not installed")
        raise AssertionError  # unreachable: skip_or_fail raises
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    for _ in range(50):
        try:
            client.ping()
            break
        except redis.RedisError:
            time.sleep(0.1)
    try:
        yield url, process
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)


def test_login_with_frozen_redis_fails_closed_without_hanging(
    tmp_path: Path, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, redis_process = private_redis
    env = authgraph_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'frozen.db'}",
        JWT_SECRET=SECRET,
        RATE_LIMIT_STORAGE=url,
        RATE_LIMIT_TIMEOUT_SECONDS="0.5",
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    # The client's own timeout is far above the setting: only a server that hangs reaches it.
    with serve(env, tmp_path) as base, httpx.Client(base_url=base, timeout=8) as client:
        signup(client)
        redis_process.send_signal(signal.SIGSTOP)
        try:
            answer = client.post("/graphql", json={"query": LOGIN})
            # Fails closed: no login is let through uncounted.
            assert answer.status_code == 200
            assert answer.json()["data"] is None
            assert answer.json()["errors"][0]["message"] == "Unexpected error."
            assert client.get("/readyz").status_code == 503
            assert client.get("/healthz").status_code == 200
            assert client.post("/graphql", json={"query": "{ __typename }"}).json() == {
                "data": {"__typename": "Query"}
            }
        finally:
            redis_process.send_signal(signal.SIGCONT)
        # Once Redis answers again, so does login.
        recovered = client.post("/graphql", json={"query": LOGIN}).json()
        assert recovered == {"data": {"login": {"__typename": "InvalidCredentials"}}}
