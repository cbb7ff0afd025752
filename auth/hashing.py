"""The hash lane: password hashing on its own bounded executor, with admission.

bcrypt is slow on purpose and CPU-bound. Run in the pool every other blocking call shares,
a burst of logins occupies all of its threads and the cores, and a ``refreshToken`` that
hashes nothing waits behind them. So hashing and verification run here instead:

- on an executor of ``HASH_WORKERS`` threads (by default the cores this process may run
  on: more threads than cores only make every hash slower), at a lower CPU priority
  (``HASH_NICENESS``, Linux nice +10 per thread by default) so that the event loop and the
  threads serving cheap calls get a contended core first and hashing takes what is left;
  the wait bound below turns the slower hashing into refusals, not into waiting, and
- behind an admission count: a use case that will hash takes a ticket *before* it starts
  (:meth:`HashLane.admit`). At most ``HASH_WORKERS + HASH_QUEUE_LIMIT`` tickets are out; the
  next caller is refused at once with :class:`RateLimited` and a ``retry_after`` (the time
  the queue ahead needs to drain), instead of waiting behind it. So is one that would wait
  more than :data:`MAX_QUEUE_WAIT_SECONDS` at the recent pace: when the cores are taken by
  other work and each hash takes seconds, the queue shortens instead of the wait growing.

Admission comes before the use case's rate-limit hits, so a refusal here costs the caller
nothing: it is not counted as a failed login against the account.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from auth.errors import RateLimited

T = TypeVar("T")

# Until a hash has been timed: a cost-12 bcrypt verification on the machines we know.
INITIAL_HASH_SECONDS = 0.25
# Weight of the newest duration in the moving average.
EWMA_WEIGHT = 0.2
MAX_RETRY_AFTER = 30
# The longest an admitted caller should wait for a hashing thread, at the recent pace.
MAX_QUEUE_WAIT_SECONDS = 5.0


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), or ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _lower_priority(niceness: int) -> None:
    """Add ``niceness`` to the calling thread's nice value, where the OS allows it (Linux)."""
    if niceness <= 0:
        return
    try:
        # On Linux a thread id names one thread for setpriority (nice is per thread there).
        thread = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + niceness))
    except (AttributeError, OSError):  # elsewhere, or refused: hashing still works
        pass


class HashLane:
    """A bounded executor for password hashing, with non-blocking admission.

    ``workers`` threads hash; up to ``queue_limit`` admitted callers more may wait for one.
    """

    def __init__(
        self,
        workers: int,
        queue_limit: int,
        *,
        niceness: int = 0,
        max_wait_seconds: float = MAX_QUEUE_WAIT_SECONDS,
    ) -> None:
        if workers < 1 or queue_limit < 0:
            raise ValueError("a hash lane needs at least one worker and a queue limit >= 0")
        self.workers = workers
        self.queue_limit = queue_limit
        self.max_wait_seconds = max_wait_seconds
        self._executor = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix="hash-lane",
            initializer=_lower_priority,
            initargs=(niceness,),
        )
        self._lock = threading.Lock()
        self._admitted = 0
        self._refused = 0
        self._hash_seconds = INITIAL_HASH_SECONDS

    @property
    def capacity(self) -> int:
        """How many callers may hold a ticket at once: those hashing and those waiting."""
        return self.workers + self.queue_limit

    @property
    def admitted(self) -> int:
        """Tickets out now."""
        return self._admitted

    @property
    def refused(self) -> int:
        """Callers refused since the lane was made."""
        return self._refused

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold a ticket for the block, or raise :class:`RateLimited` at once when full.

        Never blocks: a caller either gets a place in the queue or learns how long to wait.
        """
        with self._lock:
            if self._admitted >= self.capacity or self._wait_too_long():
                self._refused += 1
                raise RateLimited(self._retry_after())
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on a lane thread and return its result (the caller's thread waits)."""
        return self._executor.submit(self._timed, fn).result()

    def close(self) -> None:
        """Stop the lane's threads once their current work is done."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _timed(self, fn: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return fn()
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self._hash_seconds += EWMA_WEIGHT * (elapsed - self._hash_seconds)

    def _wait_too_long(self) -> bool:
        # Whole rounds of hashing ahead of a newcomer; held under the lock. With a thread
        # free there is no wait, so the pace is always measured again.
        rounds_ahead = self._admitted // self.workers
        return rounds_ahead * self._hash_seconds > self.max_wait_seconds

    def _retry_after(self) -> int:
        # Whole seconds until the queue ahead has drained at the recent pace; held under the
        # lock. A caller that comes back then finds room.
        drain = self._admitted / self.workers * self._hash_seconds
        return max(1, min(MAX_RETRY_AFTER, math.ceil(drain)))
