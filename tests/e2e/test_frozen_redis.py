"""A hung or stopped Redis (a private redis-server, frozen with SIGSTOP or terminated) does not
hang rate-limited calls: they answer SERVICE_UNAVAILABLE, and the outage is logged once.

The shared Redis is never touched: the test starts its own on a free loopback port.
"""

from __future__ import annotations

import functools
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import skip_or_fail
from tests.factories import VIEWER, gql, signup
from tests.servers import authgraph_env, free_port, run_cli, serve

SECRET = "frozen-redis-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
LOGIN = (
    'mutation { login(input: {email: "nobody@example.com", password: "wrong guess"}) '
    "{ __typename } }"
)
TOKEN_FORM = {"username": "nobody@example.com", "password": "wrong guess"}


def start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    """A redis-server of the test's own on ``port``, answering once this returns."""
    binary = shutil.which("redis-server")
    if binary is None:
        skip_or_fail("redis-server is not installed")
        raise AssertionError  # unreachable: skip_or_fail raises
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
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=1)
    for _ in range(50):
        try:
            client.ping()
            break
        except redis.RedisError:
            time.sleep(0.1)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGCONT)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    process = start_redis(port, tmp_path)
    try:
        yield f"redis://127.0.0.1:{port}", process
    finally:
        stop(process)


def assert_unavailable(answer: httpx.Response) -> None:
    """A request-level outage answer: 503, Retry-After, the code, and no data entry."""
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["retry-after"]) > 0
    body = answer.json()
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["SERVICE_UNAVAILABLE"]
    assert body["errors"][0]["message"] != "Unexpected error."


def eventually(check: Callable[[], Any], seconds: float = 5) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def outage_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if "rate-limit storage" in line]


def test_login_with_frozen_redis_answers_service_unavailable_without_hanging(
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
        account = signup(client)
        redis_process.send_signal(signal.SIGSTOP)
        try:
            # Fails closed: no login is let through uncounted, and the client is told why.
            for _ in range(3):
                assert_unavailable(client.post("/graphql", json={"query": LOGIN}))
            token = client.post("/token", data=TOKEN_FORM)
            assert token.status_code == 503
            assert int(token.headers["retry-after"]) > 0
            assert client.get("/readyz").status_code == 503
            assert client.get("/healthz").status_code == 200
            assert client.post("/graphql", json={"query": "{ __typename }"}).json() == {
                "data": {"__typename": "Query"}
            }
            # Counting nothing, the viewer needs no Redis.
            viewer = gql(client, VIEWER, token=account["accessToken"])
            assert viewer["data"]["viewer"]["id"] == account["user"]["id"]
        finally:
            redis_process.send_signal(signal.SIGCONT)
        # Once Redis answers again, so does login.
        recovered = client.post("/graphql", json={"query": LOGIN}).json()
        assert recovered == {"data": {"login": {"__typename": "InvalidCredentials"}}}
        log = tmp_path / f"server-{base.rsplit(':', 1)[1]}.log"
        # One line when the outage began, one with the count when it ended: no traceback.
        lines = eventually(lambda: _two_lines(log))
        assert "unavailable" in lines[0]
        assert re.search(r"available again after 4 failed requests", lines[1]), lines
        assert "Traceback" not in log.read_text()


def _two_lines(log: Path) -> list[str]:
    lines = outage_lines(log)
    assert len(lines) == 2, lines
    return lines


def test_stopped_redis_is_one_outage_per_stop_in_the_log(
    tmp_path: Path, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    """Connection refused (Redis not running), twice: two outages, two pairs of lines."""
    url, first = private_redis
    port = int(url.rsplit(":", 1)[1])
    env = authgraph_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'stopped.db'}",
        JWT_SECRET=SECRET,
        RATE_LIMIT_STORAGE=url,
        RATE_LIMIT_TIMEOUT_SECONDS="0.5",
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with serve(env, tmp_path) as base, httpx.Client(base_url=base, timeout=8) as client:
        log = tmp_path / f"server-{base.rsplit(':', 1)[1]}.log"
        running = first
        for outage, failures in enumerate((5, 2), start=1):
            stop(running)
            for _ in range(failures):
                assert_unavailable(client.post("/graphql", json={"query": LOGIN}))
            running = start_redis(port, tmp_path)
            try:
                answer = client.post("/graphql", json={"query": LOGIN}).json()
                assert answer == {"data": {"login": {"__typename": "InvalidCredentials"}}}
                lines = eventually(functools.partial(_lines, log, 2 * outage))
                assert "unavailable" in lines[-2]
                assert f"available again after {failures} failed requests" in lines[-1]
            finally:
                if outage == 2:
                    stop(running)
        assert "Traceback" not in log.read_text()


def _lines(log: Path, count: int) -> list[str]:
    lines = outage_lines(log)
    assert len(lines) == count, lines
    return lines
