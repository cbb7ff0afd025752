"""Outages logged once each: a line when a dependency stops answering, one when it is back.

During an outage every request fails the same way; a traceback per request (hundreds a
second) buries the one fact an operator needs. So the first failed request of an outage
logs "database unavailable: <reason>", later ones only count, and the first answer after
it logs "database available again after N failed requests".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("authgraph.outages")


class OutageLog:
    """Per dependency: down (with a count of failed requests) or up. Thread-safe."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self._log = logger
        self._failed: dict[str, int] = {}
        self._lock = threading.Lock()

    def failed(self, dependency: str, reason: str) -> None:
        """One request failed because ``dependency`` did not answer."""
        with self._lock:
            count = self._failed.get(dependency)
            self._failed[dependency] = 1 if count is None else count + 1
        if count is None:
            self._log.warning("%s unavailable: %s", dependency, reason)

    def answered(self, dependency: str) -> None:
        """``dependency`` answered a call: ends its outage, if one is under way."""
        if dependency not in self._failed:  # the common case, read without the lock
            return
        with self._lock:
            count = self._failed.pop(dependency, None)
        if count is not None:
            self._log.warning(
                "%s available again after %d failed request%s",
                dependency,
                count,
                "" if count == 1 else "s",
            )

    def is_down(self, dependency: str) -> bool:
        return dependency in self._failed

    def listener(self, dependency: str) -> Callable[[], None]:
        """A callback for the dependency's adapter: "it answered"."""

        def answered() -> None:
            if dependency in self._failed:
                self.answered(dependency)

        return answered
