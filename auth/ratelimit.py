"""Rate limits on the ``limits`` library, shared by every worker and instance through its storage.

The API other modules rely on (keep it stable)::

    limiter = RateLimiter("memory://")           # or "redis://127.0.0.1:6379" to share counts
    retry = limiter.hit(settings.email_rate_limit, "email", address)
    if retry is not None:
        raise RateLimited(retry)                  # auth.errors; becomes the GraphQL `RateLimited`

- ``hit(limit, *key_parts)`` consumes one unit of ``limit`` for the key and returns ``None`` when
  allowed, else the whole seconds until a retry can succeed. A refused hit consumes nothing, so
  a lock never extends itself: it ends one window after the hits that filled it.
- ``check(limit, *key_parts)`` gives the same answer without consuming anything.
- ``clear(limit, *key_parts)`` forgets the key's hits (e.g. failed logins after a success).
- ``hit_all((limit, *key_parts), ...)`` hits several limits in order and stops at the first
  refusal, so a request refused per IP spends nothing of its per-account budget.

``limit`` is the ``limits`` notation (``"10/15minutes"``, ``"20 per hour"``; several joined by
``;`` must all allow). By convention the first key part names the counter (``"login"``,
``"signup-ip"``, ``"email"``, ``"email-ip"``): counters with different names never share
counts. Key parts are hashed before they reach the storage, so emails are not stored in
clear and a long input cannot make a long key. A ``None`` part (no client address) counts as
one shared "unknown" value.

Counting uses the moving-window strategy: no burst of twice the limit across a window edge.
Calls block on the storage (a Redis round trip): the use cases that call it already run in a
worker thread. A storage that fails to answer (refused, timed out, or answering with an
error) raises :class:`auth.errors.ServiceUnavailable`: limits cannot be counted, so the
call fails closed.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from limits import RateLimitItem, parse_many
from limits._storage_scheme import SCHEMES
from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from auth.errors import ConfigurationError, ServiceUnavailable

KeyPart = str | None
DEFAULT_KEY_PREFIX = "authgraph"
STORAGE = "rate-limit storage"


@functools.lru_cache(maxsize=64)
def parse_limit(limit: str) -> tuple[RateLimitItem, ...]:
    """Parse ``limits`` notation; raises ``ValueError`` for bad notation or a zero amount."""
    items = tuple(parse_many(limit))
    if not items:
        raise ValueError(f"no rate limit in {limit!r}")
    for item in items:
        if item.amount < 1:
            raise ValueError(f"{limit!r} allows nothing; use at least 1")
    return items


def validate_limit(name: str, value: str) -> str:
    """Return ``value`` if it is valid ``limits`` notation, else raise naming setting ``name``."""
    try:
        parse_limit(value)
    except ValueError as exc:
        raise ConfigurationError(
            f"{name} must be in the limits notation, e.g. 10/15minutes or 20 per hour; "
            f"got {value!r} ({exc})."
        ) from None
    return value


def validate_storage_uri(name: str, value: str) -> str:
    """Return ``value`` if ``limits`` has a synchronous storage for its scheme."""
    scheme = urllib.parse.urlparse(value).scheme
    if scheme not in SCHEMES or scheme.startswith("async+"):
        raise ConfigurationError(
            f"{name} must be a limits storage URI such as memory:// or redis://host:6379; "
            f"got {value!r}."
        )
    return value


class RateLimiter:
    """Counts hits per key in a ``limits`` storage (see the module docstring for the API)."""

    def __init__(
        self,
        storage_uri: str,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        timeout_seconds: float | None = None,
    ) -> None:
        validate_storage_uri("RATE_LIMIT_STORAGE", storage_uri)
        # A hung Redis must not hold every rate-limited call: bound connect and each command.
        options: dict[str, float] = {}
        if timeout_seconds is not None and storage_uri.startswith(("redis", "rediss")):
            options = {"socket_timeout": timeout_seconds, "socket_connect_timeout": timeout_seconds}
        try:
            self.storage: Storage = storage_from_string(  # type: ignore[assignment]
                storage_uri, wrap_exceptions=True, **options
            )
        except LimitsConfigurationError as exc:
            raise ConfigurationError(f"RATE_LIMIT_STORAGE {storage_uri!r}: {exc}") from None
        self.storage_uri = storage_uri
        self.key_prefix = key_prefix
        self._strategy = MovingWindowRateLimiter(self.storage)
        # Called after each call the storage answered: how an outage's end is noticed.
        self.on_answer: Callable[[], None] | None = None

    def hit(self, limit: str, *key_parts: KeyPart) -> int | None:
        """Consume one hit; ``None`` when allowed, else seconds until a retry can succeed."""
        return self.hit_all((limit, *key_parts))

    def hit_all(self, *checks: tuple[str, *tuple[KeyPart, ...]]) -> int | None:
        """Hit each ``(limit, *key_parts)`` in order; stop at the first refusal and return it."""
        with self._answering():
            return self._hit_all(checks)

    def _hit_all(self, checks: tuple[tuple[str, *tuple[KeyPart, ...]], ...]) -> int | None:
        for limit, *parts in checks:
            key = self._key(parts)
            items = parse_limit(limit)
            # Test every item first so that a refusal by one spends nothing of the others.
            if (retry := self._retry_after(items, key)) is not None:
                return retry
            for item in items:
                if not self._strategy.hit(item, key):
                    return self._retry_after(items, key) or 1
        return None

    def check(self, limit: str, *key_parts: KeyPart) -> int | None:
        """Like :meth:`hit` but consumes nothing: is the key over its limit right now?"""
        with self._answering():
            return self._retry_after(parse_limit(limit), self._key(key_parts))

    def clear(self, limit: str, *key_parts: KeyPart) -> None:
        """Forget every hit of the key under ``limit``."""
        key = self._key(key_parts)
        with self._answering():
            for item in parse_limit(limit):
                self._strategy.clear(item, key)

    def healthy(self) -> bool:
        """Whether the storage answers (always true for ``memory://``)."""
        try:
            return bool(self.storage.check())
        except Exception:
            return False

    @contextmanager
    def _answering(self) -> Iterator[None]:
        """Storage failures become ServiceUnavailable; answers are reported to ``on_answer``."""
        try:
            yield
        except StorageError as exc:
            cause = exc.storage_error
            raise ServiceUnavailable(STORAGE, f"{type(cause).__name__}: {cause}") from exc
        if self.on_answer is not None:
            self.on_answer()

    def _key(self, parts: tuple[KeyPart, ...] | list[KeyPart]) -> str:
        name, *rest = parts or ("default",)
        digest = hashlib.sha256(
            "\x1f".join("\x00unknown" if p is None else p for p in rest).encode()
        ).hexdigest()[:32]
        return f"{self.key_prefix}:{name}:{digest}"

    def _retry_after(self, items: tuple[RateLimitItem, ...], key: str) -> int | None:
        waits = []
        for item in items:
            if not self._strategy.test(item, key):
                reset, _ = self._strategy.get_window_stats(item, key)
                waits.append(max(1, math.ceil(reset - time.time())))
        return max(waits) if waits else None
