"""``python -m bench.verify_cost ROUNDS``: the median seconds of one password verification.

Run pinned to the server's core by the benchmark, so the bcrypt limit it derives is
measured on the same machine, in the same run, as the login throughput it is compared to.
"""

from __future__ import annotations

import statistics
import sys
import time

from auth.passwords import PasswordHasher

SAMPLES = 7


def verify_seconds(rounds: int, samples: int = SAMPLES) -> float:
    hasher = PasswordHasher(rounds)
    stored = hasher.hash("bench passphrase 7f3a")
    timings = []
    for _ in range(samples):
        start = time.perf_counter()
        ok, _ = hasher.verify("bench passphrase 7f3a", stored)
        timings.append(time.perf_counter() - start)
        if not ok:
            raise RuntimeError("the benchmark password did not verify")
    return statistics.median(timings)


if __name__ == "__main__":
    print(f"{verify_seconds(int(sys.argv[1])):.6f}")
