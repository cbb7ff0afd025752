"""Rate limits shared through Redis: two server processes, one account, one lock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import skip_or_fail
from tests.factories import login, signup, unique_email
from tests.servers import authgraph_env, log_problems, run_cli, serve, server_log

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
SECRET = "redis-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A prefix of our own, so runs never share counts; its keys are deleted afterwards."""
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        connection.ping()
    except redis.RedisError as exc:
        skip_or_fail(f"Redis is not reachable at {REDIS_URL}: {type(exc).__name__}")
    prefix = f"authgraph-test-{uuid.uuid4().hex}"
    yield prefix
    for key in connection.scan_iter(match=f"*{prefix}*"):
        connection.delete(key)
    connection.close()


def test_failures_split_across_two_servers_lock_the_account(
    tmp_path: Path, key_prefix: str
) -> None:
    env = authgraph_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'shared.db'}",
        JWT_SECRET=SECRET,
        RATE_LIMIT_STORAGE=REDIS_URL,
        RATE_LIMIT_KEY_PREFIX=key_prefix,
        LOGIN_RATE_LIMIT="4/15minutes",
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with (
        serve(env, tmp_path) as first,
        serve(env, tmp_path) as second,
        httpx.Client(base_url=first) as one,
        httpx.Client(base_url=second) as two,
    ):
        email = unique_email()
        signup(one, email=email)
        # Two failures on each server: each alone has seen only half the limit.
        answers = [login(server, email, "wrong guess")["__typename"] for server in (one, two) * 2]
        assert answers == ["InvalidCredentials"] * 4
        for server in (one, two):
            locked = login(server, email)
            assert locked["__typename"] == "RateLimited"
            assert locked["retryAfter"] > 0
        # Another account is untouched: the lock is per account, not global.
        other = unique_email()
        signup(two, email=other)
        assert login(one, other)["__typename"] == "AuthPayload"


def test_readyz_reports_unreachable_rate_limit_storage(tmp_path: Path) -> None:
    # Nothing listens on port 1: the server starts, but says it is not ready to serve logins.
    env = authgraph_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'ready.db'}",
        JWT_SECRET=SECRET,
        RATE_LIMIT_STORAGE="redis://127.0.0.1:1",
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with serve(env, tmp_path) as base:
        response = httpx.get(f"{base}/readyz", timeout=10)
        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "database": True,
            "database_writable": True,
            "rate_limit_storage": False,
        }
        # A login cannot be counted, so it is not served; the client learns that the service
        # is unavailable, and nothing of the storage (its kind, its address) leaks.
        answer = httpx.post(
            f"{base}/graphql",
            json={
                "query": 'mutation { login(input: {email: "a@b.co", password: "x"}) '
                "{ __typename } }"
            },
            timeout=10,
        )
        assert answer.status_code == 503
        body = answer.json()
        assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "redis" not in str(body).lower()
        assert "127.0.0.1" not in str(body)
    # The shared server's log check (tests/conftest.py live_server) would flag these 503s; the
    # outage itself is one warning line, not a traceback per request.
    log = server_log(tmp_path, base).read_text()
    problems = "\n".join(log_problems(log))
    assert '"GET /readyz HTTP/1.1" 503' in problems
    assert '"POST /graphql HTTP/1.1" 503' in problems
    assert "Traceback (most recent call last)" not in log
    assert "rate-limit storage unavailable" in log
