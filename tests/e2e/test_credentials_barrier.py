"""A credentials change is a barrier: no session proven by the old password outlives it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.factories import (
    CHANGE_PASSWORD,
    DEFAULT_PASSWORD,
    gql,
    login,
    signup,
    unique_email,
    viewer_id,
)
from tests.servers import authgraph_env, run_cli, serve

SECRET = "barrier-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
LOGIN_THREADS = 6
# Logins each thread still sends once the change has answered: bounded, and enough to
# land some in the window between a login's hash check and its session write.
LOGINS_AFTER_CHANGE = 4
ROUNDS = 2


def _env(database_url: str) -> dict[str, str]:
    # Rounds high enough that a login's hash takes a few milliseconds: the race window.
    return authgraph_env(
        DATABASE_URL=database_url,
        JWT_SECRET=SECRET,
        BCRYPT_ROUNDS="6",
        LOGIN_RATE_LIMIT="100000/minute",
        LOGIN_IP_RATE_LIMIT="100000/minute",
    )


def _logins_racing_one_change(base: str) -> tuple[list[str], int]:
    """Old-password logins sent around one changePassword; their access tokens, and failures."""
    email = unique_email("barrier")
    with httpx.Client(base_url=base, timeout=30) as client:
        changer = signup(client, email=email)["accessToken"]
    changed = threading.Event()
    start = threading.Barrier(LOGIN_THREADS + 1)

    def log_in_repeatedly() -> tuple[list[str], int]:
        tokens, refused, after = [], 0, 0
        with httpx.Client(base_url=base, timeout=30) as client:
            start.wait()
            while after < LOGINS_AFTER_CHANGE:
                if changed.is_set():
                    after += 1
                result = login(client, email)
                if result["__typename"] == "AuthPayload":
                    tokens.append(result["accessToken"])
                else:
                    assert result["__typename"] == "InvalidCredentials", result
                    refused += 1
        return tokens, refused

    with ThreadPoolExecutor(LOGIN_THREADS) as pool, httpx.Client(base_url=base, timeout=30) as c:
        futures = [pool.submit(log_in_repeatedly) for _ in range(LOGIN_THREADS)]
        start.wait()
        # A few logins first, so some are mid-hash when the change commits.
        login(c, email)
        body = gql(
            c,
            CHANGE_PASSWORD,
            {"current": DEFAULT_PASSWORD, "new": "a brand new secret"},
            token=changer,
        )
        assert body["data"]["changePassword"]["__typename"] == "AuthPayload", body
        changed.set()
        results = [f.result(timeout=60) for f in futures]
    tokens = [t for ts, _ in results for t in ts]
    return tokens, sum(refused for _, refused in results)


def test_change_password_ends_every_racing_old_password_login(
    database_url: str, tmp_path: Path
) -> None:
    env = _env(database_url)
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with serve(env, tmp_path) as base, httpx.Client(base_url=base, timeout=30) as client:
        survivors, logged_in, refused = 0, 0, 0
        for _ in range(ROUNDS):
            tokens, refusals = _logins_racing_one_change(base)
            logged_in += len(tokens)
            refused += refusals
            survivors += sum(viewer_id(client, token) is not None for token in tokens)
    # Every thread sent logins after the change answered: those must all have been refused.
    assert refused >= LOGIN_THREADS * ROUNDS * (LOGINS_AFTER_CHANGE - 1)
    assert logged_in > 0
    assert survivors == 0


def test_concurrent_change_password_on_one_session_lets_one_win(
    database_url: str, tmp_path: Path
) -> None:
    env = _env(database_url)
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with serve(env, tmp_path) as base:
        with httpx.Client(base_url=base, timeout=30) as client:
            token = signup(client)["accessToken"]
        start = threading.Barrier(2)

        def change(new: str) -> str:
            with httpx.Client(base_url=base, timeout=30) as client:
                start.wait()
                body = gql(
                    client, CHANGE_PASSWORD, {"current": DEFAULT_PASSWORD, "new": new}, token=token
                )
                return str(body["data"]["changePassword"]["__typename"])

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(change, ["first new password!", "second new password"]))
    assert sorted(answers) == ["AuthPayload", "InvalidCredentials"]
