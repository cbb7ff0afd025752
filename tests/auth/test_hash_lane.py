"""The hash lane on its own: its threads, its admission and the settings that size it."""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import ExitStack

import pytest

from auth.config import Source
from auth.errors import RateLimited
from auth.hashing import MAX_RETRY_AFTER, HashLane, usable_cores
from auth.passwords import PasswordHasher
from auth.settings import AuthSettings


def test_admit_refuses_past_capacity_with_retry_after_and_frees_on_exit() -> None:
    lane = HashLane(workers=1, queue_limit=2)
    with ExitStack() as held:
        for _ in range(lane.capacity):
            held.enter_context(lane.admit())
        assert lane.admitted == 3
        with pytest.raises(RateLimited) as refused:
            held.enter_context(lane.admit())
        assert 1 <= refused.value.retry_after <= MAX_RETRY_AFTER
        assert lane.refused == 1
    assert lane.admitted == 0
    with lane.admit():
        assert lane.admitted == 1
    lane.close()


def test_a_zero_queue_limit_admits_only_the_workers() -> None:
    lane = HashLane(workers=2, queue_limit=0)
    with lane.admit(), lane.admit(), pytest.raises(RateLimited), lane.admit():
        pass
    lane.close()


def test_admit_refuses_a_caller_that_would_wait_too_long_at_the_recent_pace() -> None:
    lane = HashLane(workers=1, queue_limit=10, max_wait_seconds=0.02)
    lane.run(lambda: time.sleep(0.05))  # the pace: a hash now takes tens of milliseconds
    # A free thread: no wait; then one whole hash ahead: longer than allowed.
    with lane.admit(), pytest.raises(RateLimited), lane.admit():
        pass
    with lane.admit():  # the thread is free again
        assert lane.refused == 1
    lane.close()


def test_hasher_hashes_and_verifies_on_the_lane_threads() -> None:
    lane = HashLane(workers=1, queue_limit=0)
    seen: list[str] = []
    hasher = PasswordHasher(rounds=4, lane=lane)
    stored = hasher.hash("correct horse battery staple")
    assert hasher.verify("correct horse battery staple", stored) == (True, None)
    assert hasher.verify("wrong horse battery staple", stored) == (False, None)
    hasher.dummy_verify()
    lane.run(lambda: seen.append(threading.current_thread().name))
    assert seen[0].startswith("hash-lane")
    assert threading.current_thread().name not in seen
    lane.close()


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_lane_threads_hash_at_a_lower_cpu_priority() -> None:
    lane = HashLane(workers=1, queue_limit=0, niceness=10)
    plain = HashLane(workers=1, queue_limit=0)

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert lane.run(niceness) == min(19, niceness() + 10)
    assert plain.run(niceness) == niceness()
    lane.close()
    plain.close()


def test_lane_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="worker"):
        HashLane(workers=0, queue_limit=4)


def test_settings_size_the_lane_to_the_usable_cores_by_default() -> None:
    # A JWT_SECRET, so that loading writes no development secret file.
    secret = {"JWT_SECRET": "lane-0123456789-abcdefghijklmnopqrstuvwxyz"}
    settings = AuthSettings.load(Source(secret, production=False))
    assert settings.hash_worker_count == usable_cores() == len(os.sched_getaffinity(0))
    assert settings.hash_queue_bound == 4 * settings.hash_worker_count
    assert settings.hash_niceness == 10
    chosen = AuthSettings.load(
        Source({**secret, "HASH_WORKERS": "3", "HASH_QUEUE_LIMIT": "0"}, production=False)
    )
    assert (chosen.hash_worker_count, chosen.hash_queue_bound) == (3, 0)
