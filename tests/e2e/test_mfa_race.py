"""One TOTP code, several requests at once, against a real server: exactly one wins.

The accepted time step is claimed by compare-and-set on the factor's row, so this holds
across requests, workers and instances sharing the database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.factories import signup, unique_email
from tests.mfa import code_at, enroll, login_mfa, verify
from tests.servers import RELAXED_LIMITS, authgraph_env, run_cli, serve

SECRET = "mfa-race-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
RACERS = 4
ROUNDS = 2


def test_concurrent_verifications_with_one_code_let_exactly_one_win(
    database_url: str, tmp_path: Path
) -> None:
    env = authgraph_env(
        DATABASE_URL=database_url,
        JWT_SECRET=SECRET,
        MFA_RATE_LIMIT="1000/minute",
        **RELAXED_LIMITS,
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with serve(env, tmp_path) as base:
        for _ in range(ROUNDS):
            with httpx.Client(base_url=base, timeout=30) as client:
                email = unique_email("race")
                token = signup(client, email=email)["accessToken"]
                user = enroll(client, email, token, datetime.now(UTC))
                tokens = [login_mfa(client, email)["mfaToken"] for _ in range(RACERS)]
            # The enrollment claimed the current step; the next one is inside the drift
            # window, so every racer presents a code the server accepts once.
            code = code_at(user.secret, datetime.now(UTC) + timedelta(seconds=30))
            start = threading.Barrier(RACERS)

            def race(mfa_token: str, code: str = code, start: threading.Barrier = start) -> str:
                with httpx.Client(base_url=base, timeout=30) as client:
                    start.wait()
                    return str(verify(client, mfa_token, code)["__typename"])

            with ThreadPoolExecutor(RACERS) as pool:
                answers = sorted(pool.map(race, tokens))
            assert answers == ["AuthPayload"] + ["InvalidMfaCode"] * (RACERS - 1), answers
