"""How committed security events reach every instance's live connections (graph.live).

One :class:`LiveBus` per process fans events out to its connections by user. It is fed by
PostgreSQL ``LISTEN``/``NOTIFY`` when the database is PostgreSQL (the NOTIFY is part of the
event's transaction: sent at commit, never for a rollback), else by Redis pub/sub when
``RATE_LIMIT_STORAGE`` is a Redis URL (published right after the commit), else in process
only: a single instance.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("authgraph.live")

Message = dict[str, Any]


class LiveBus:
    """This process's subscribers by user; fed by whichever broadcast the deployment has."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[Callable[[Message], None]]] = collections.defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        # An event can arrive twice (a reconnecting listener); each is handed out once.
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish_threadsafe(self, message: Message) -> None:
        """From any thread (a committing worker, a listener thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.deliver, message)

    def deliver(self, message: Message) -> None:
        event_id = str(message.get("id"))
        if event_id in self._seen:
            return
        self._seen[event_id] = None
        if len(self._seen) > 10_000:
            self._seen.popitem(last=False)
        for listener in list(self._listeners.get(str(message.get("user_id")), ())):
            listener(message)

    def subscribe(self, user_id: str, listener: Callable[[Message], None]) -> Callable[[], None]:
        self._listeners[user_id].add(listener)

        def unsubscribe() -> None:
            listeners = self._listeners.get(user_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[user_id]

        return unsubscribe

    def connections(self, user_id: str) -> int:
        return len(self._listeners.get(user_id, ()))


class RedisBroadcast:
    """Redis pub/sub between instances: publish after commit, listen on a thread."""

    CHANNEL = "authgraph:security-events"

    def __init__(self, url: str, bus: LiveBus) -> None:
        import redis  # the limits[redis] dependency

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.bus = bus
        self._stop = threading.Event()

    def publish(self, message: Message) -> None:
        try:
            self.client.publish(self.CHANNEL, json.dumps(message, separators=(",", ":")))
        except Exception as exc:
            # The change is committed; only its live broadcast is lost (sessions are still
            # checked on every request and every subscribe).
            log.warning("could not publish a security event to Redis: %s", exc)

    def stop(self) -> None:
        self._stop.set()

    def listen(self, stop: threading.Event) -> None:
        """Feed the bus until ``stop`` (on a thread of its own); reconnects after a failure."""
        self._stop = stop
        while not self._stop.is_set():
            try:
                pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(self.CHANNEL)
                while not self._stop.is_set():
                    item = pubsub.get_message(timeout=0.5)
                    if item is not None and item.get("type") == "message":
                        self.bus.publish_threadsafe(json.loads(item["data"]))
                pubsub.close()
            except Exception as exc:
                log.warning("Redis live listener: %s; reconnecting", exc)
                self._stop.wait(1.0)
