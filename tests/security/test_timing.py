"""Login timing must not tell known emails from unknown ones (ASVS 6.3.8, checklist C.16).

A side channel is a property of time, so this test measures time, but only as a loose
security check: with bcrypt at cost 8 (about 15 ms a verification, well above the request's
own cost) a login that skipped the verification for an unknown email would take a small
fraction of a known email's time. The bound (0.5 to 2.0) is far wider than any noise, and
the structural check beside it (every unknown-email login runs one dummy verification)
holds on any machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from auth.passwords import PasswordHasher
from tests.conftest import MakeClient
from tests.factories import login, signup, unique_email

ROUNDS = 8
SAMPLES = 11


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def test_login_timing_is_alike_for_known_and_unknown_emails(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client: TestClient = make_client(
        bcrypt_rounds=ROUNDS,
        login_rate_limit="1000/15minutes",
        login_ip_rate_limit="1000/15minutes",
    )
    known = unique_email()
    signup(client, email=known)
    hasher: PasswordHasher = client.app.state.authgraph.toolkit.hasher  # type: ignore[attr-defined]
    dummy_runs = 0
    real_dummy_verify = hasher.dummy_verify

    def counting_dummy_verify() -> None:
        nonlocal dummy_runs
        dummy_runs += 1
        real_dummy_verify()  # a spy: the real verification still runs and takes its time

    monkeypatch.setattr(hasher, "dummy_verify", counting_dummy_verify)
    login(client, known, "warm-up guess")
    known_times, unknown_times = [], []
    for _ in range(SAMPLES):  # interleaved, so drift in machine load hits both alike
        known_times.append(_timed(lambda: login(client, known, "wrong password guess")))
        unknown_times.append(
            _timed(lambda: login(client, unique_email("nobody"), "wrong password guess"))
        )
    assert dummy_runs == SAMPLES
    ratio = statistics.median(unknown_times) / statistics.median(known_times)
    assert 0.5 < ratio < 2.0, (ratio, known_times, unknown_times)
