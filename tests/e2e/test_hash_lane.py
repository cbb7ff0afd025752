"""bcrypt has its own bounded lane: a real server with one hashing thread and a queue of one.

Past the lane's capacity, calls that hash answer ``RateLimited`` (429 on ``/token``) at once,
and calls that hash nothing (``refreshToken``, ``viewer``) keep answering while it is full.
The lane is the same whatever the database: SQLite only.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.factories import (
    DEFAULT_PASSWORD,
    LOGIN,
    SIGNUP,
    VIEWER,
    gql,
    refresh,
    signup,
    unique_email,
)
from tests.servers import authgraph_env, run_cli, serve

SECRET = "hash-lane-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
# About half a second per hash here: the lane stays full for as long as a burst lasts.
ROUNDS = "13"
WORKERS, QUEUE_LIMIT = 1, 1
CAPACITY = WORKERS + QUEUE_LIMIT
BURST = 12
# More than the 40 threads the shared pool has: before the lane, these logins alone took
# every one of them and refreshToken waited behind them.
SATURATING_CLIENTS = 48
LIVENESS_SECONDS = 2.0
PROBE_ATTEMPTS = 20

CHECKS = """
mutation Change($current: String!, $new: String!) {
  changePassword(input: {currentPassword: $current, newPassword: $new}) {
    __typename ... on RateLimited { retryAfter }
  }
}
"""
DELETE = """
mutation Delete($password: String!) {
  deleteAccount(password: $password) { __typename ... on RateLimited { retryAfter } }
}
"""
EMAIL_CHANGE = """
mutation Change($email: String!, $password: String!) {
  requestEmailChange(input: {newEmail: $email, password: $password}) {
    __typename ... on RateLimited { retryAfter }
  }
}
"""
RESET = """
mutation Reset($token: String!, $password: String!) {
  resetPassword(input: {token: $token, newPassword: $password}) {
    __typename ... on RateLimited { retryAfter }
  }
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module: each test waits for its own load to end."""
    tmp_path = tmp_path_factory.mktemp("lane")
    env = authgraph_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'lane.db'}",
        JWT_SECRET=SECRET,
        BCRYPT_ROUNDS=ROUNDS,
        HASH_WORKERS=str(WORKERS),
        HASH_QUEUE_LIMIT=str(QUEUE_LIMIT),
        # Every client here is 127.0.0.1, and the probes send wrong passwords on purpose.
        LOGIN_RATE_LIMIT="100000/minute",
        LOGIN_IP_RATE_LIMIT="100000/minute",
        SIGNUP_RATE_LIMIT="100000/minute",
        EMAIL_RATE_LIMIT="100000/minute",
        EMAIL_IP_RATE_LIMIT="100000/minute",
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with serve(env, tmp_path) as base:
        yield base


def _login(base: str, email: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=60) as client:
        return client.post(
            "/graphql",
            json={"query": LOGIN, "variables": {"email": email, "password": DEFAULT_PASSWORD}},
        )


@contextmanager
def _saturated(base: str) -> Iterator[Counter[str]]:
    """Keep more logins than the shared pool has threads coming until the block ends.

    Each client logs in for an unknown address (the dummy verification: a full hash) and
    honours ``retryAfter`` when refused, as a real client would; the counter holds answers.
    """
    answers: Counter[str] = Counter()
    stop = threading.Event()

    def client_loop(n: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            while not stop.is_set():
                body = gql(client, LOGIN, {"email": f"nobody{n}@example.com", "password": "x" * 9})
                result = body["data"]["login"]
                answers[result["__typename"]] += 1
                if result["__typename"] == "RateLimited":
                    stop.wait(min(result["retryAfter"], 1) * (0.5 + n / SATURATING_CLIENTS))

    with ThreadPoolExecutor(SATURATING_CLIENTS) as pool:
        futures = [pool.submit(client_loop, n) for n in range(SATURATING_CLIENTS)]
        time.sleep(0.5)  # every client has sent its first login
        try:
            yield answers
        finally:
            stop.set()
            for future in futures:
                future.result(timeout=60)


def _until_refused(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``call`` until it answers RateLimited (the lane frees a place between hashes)."""
    result: dict[str, Any] = {}
    for _ in range(PROBE_ATTEMPTS):
        result = call()
        if result["__typename"] == "RateLimited":
            return result
    return result


def test_login_burst_past_the_lane_answers_rate_limited_at_once(server: str) -> None:
    with httpx.Client(base_url=server, timeout=60) as client:
        email = signup(client)["user"]["email"]
    start = threading.Barrier(BURST)

    def burst_login(_: int) -> tuple[int, dict[str, Any], float]:
        start.wait()
        started = time.monotonic()
        response = _login(server, email)
        return response.status_code, response.json(), time.monotonic() - started

    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(burst_login, range(BURST)))
    assert all(status == 200 and "errors" not in body for status, body, _ in answers), answers
    results = [body["data"]["login"] for _, body, _ in answers]
    kinds = Counter(r["__typename"] for r in results)
    assert set(kinds) == {"AuthPayload", "RateLimited"}, kinds
    # Only what the lane holds (and what got in as places freed up) was served.
    assert kinds["RateLimited"] >= BURST - 2 * CAPACITY, kinds
    assert all(r["retryAfter"] >= 1 for r in results if r["__typename"] == "RateLimited")


def test_token_route_past_the_lane_answers_429_with_retry_after(server: str) -> None:
    with httpx.Client(base_url=server, timeout=60) as client:
        email = signup(client)["user"]["email"]
    start = threading.Barrier(BURST)

    def burst_token(_: int) -> httpx.Response:
        with httpx.Client(base_url=server, timeout=60) as client:
            start.wait()
            return client.post("/token", data={"username": email, "password": DEFAULT_PASSWORD})

    with ThreadPoolExecutor(BURST) as pool:
        responses = list(pool.map(burst_token, range(BURST)))
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) == {200, 429}, statuses
    for response in responses:
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["retry_after"] == int(response.headers["Retry-After"])


def test_refresh_and_viewer_answer_while_the_lane_is_saturated(server: str) -> None:
    with httpx.Client(base_url=server, timeout=60) as client:
        account = signup(client)
        token, refresh_token = account["accessToken"], account["refreshToken"]
        with _saturated(server) as answers:
            for _ in range(5):
                started = time.monotonic()
                result = refresh(client, refresh_token)
                refresh_seconds = time.monotonic() - started
                assert result["__typename"] == "AuthPayload", result
                token, refresh_token = result["accessToken"], result["refreshToken"]
                started = time.monotonic()
                body = gql(client, VIEWER, token=token)
                viewer_seconds = time.monotonic() - started
                assert body["data"]["viewer"]["email"] == account["user"]["email"], body
                # Liveness, not speed: before the lane these waited many seconds.
                assert refresh_seconds < LIVENESS_SECONDS
                assert viewer_seconds < LIVENESS_SECONDS
    assert answers["RateLimited"] > 0, answers
    assert set(answers) <= {"InvalidCredentials", "RateLimited"}, answers


def test_every_call_that_hashes_is_refused_while_the_lane_is_saturated(server: str) -> None:
    wrong = "not the password at all"
    with httpx.Client(base_url=server, timeout=60) as client:
        account = signup(client)
        token = account["accessToken"]
        calls: dict[str, Callable[[], dict[str, Any]]] = {
            "signup": lambda: gql(
                client, SIGNUP, {"email": unique_email("lane"), "password": DEFAULT_PASSWORD}
            )["data"]["signup"],
            "changePassword": lambda: gql(
                client, CHECKS, {"current": wrong, "new": "another fine password"}, token=token
            )["data"]["changePassword"],
            "deleteAccount": lambda: gql(client, DELETE, {"password": wrong}, token=token)["data"][
                "deleteAccount"
            ],
            "requestEmailChange": lambda: gql(
                client,
                EMAIL_CHANGE,
                {"email": unique_email("moved"), "password": wrong},
                token=token,
            )["data"]["requestEmailChange"],
            "resetPassword": lambda: gql(
                client, RESET, {"token": "no-such-token", "password": "another fine password"}
            )["data"]["resetPassword"],
        }
        with _saturated(server):
            answers = {name: _until_refused(call) for name, call in calls.items()}
        # The probes sent wrong proofs: none of them changed the account.
        assert gql(client, VIEWER, token=token)["data"]["viewer"]["id"] == account["user"]["id"]
    for name, result in answers.items():
        assert result["__typename"] == "RateLimited", (name, result)
        assert result["retryAfter"] >= 1, (name, result)
