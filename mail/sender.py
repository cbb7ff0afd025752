"""The background sender: delivers outbox messages with retries and exponential backoff.

Each server process runs one. Messages are claimed with a lease (see
:class:`db.outbox.SqlOutboxStore`), so processes sharing a database never send one message
twice, and a message claimed by a process that died is retried when its lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from auth.ports import OutboxRecord, OutboxStore
from mail.settings import MailSettings
from mail.transport import MailTransport, PermanentFailure, build_message

log = logging.getLogger("authgraph.mail")

BATCH_SIZE = 10


def _utcnow() -> datetime:
    return datetime.now(UTC)


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones: doubling, capped."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


class OutboxSender:
    """Drains the outbox; :meth:`wake` asks for a pass now instead of at the next poll."""

    def __init__(
        self,
        store: OutboxStore,
        transport: MailTransport,
        settings: MailSettings,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.transport = transport
        self.settings = settings
        self.clock = clock
        self._wakeup = asyncio.Event()
        self._stopping = False
        # Long enough for a whole batch to time out one message after another.
        self.lease = timedelta(seconds=BATCH_SIZE * settings.smtp_timeout_seconds * 2 + 60)

    def wake(self) -> None:
        """Call on the event loop after a commit that queued mail, for prompt delivery."""
        self._wakeup.set()

    def stop(self) -> None:
        """Ask :meth:`run_forever` to return after the pass in progress."""
        self._stopping = True
        self._wakeup.set()

    async def run_once(self) -> int:
        """Claim due messages and try each once; return how many were sent."""
        claim_id = str(uuid.uuid4())
        now = self.clock()
        records = await asyncio.to_thread(
            self.store.claim_due,
            now=now,
            lease_until=now + self.lease,
            claim_id=claim_id,
            limit=BATCH_SIZE,
        )
        sent = 0
        for record in records:
            sent += await self._deliver(record, claim_id)
        return sent

    async def run_forever(self) -> None:
        """Deliver until :meth:`stop`: at once when woken, else every poll interval."""
        interval = self.settings.outbox_poll_interval_seconds
        while not self._stopping:
            self._wakeup.clear()
            try:
                while await self.run_once() >= BATCH_SIZE and not self._stopping:
                    pass  # a full batch: there may be more due right now
            except Exception:
                log.exception("outbox pass failed; will retry")
            if self._stopping:
                return
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives as the event is set, and the sender would then never stop.
            try:
                async with asyncio.timeout(interval):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    async def _deliver(self, record: OutboxRecord, claim_id: str) -> int:
        message = build_message(record, self.settings.email_from)
        try:
            await self.transport.send(message)
        except Exception as exc:
            await self._failed(record, claim_id, exc)
            return 0
        await asyncio.to_thread(
            self.store.mark_sent, record.id, claim_id=claim_id, now=self.clock()
        )
        return 1

    async def _failed(self, record: OutboxRecord, claim_id: str, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        now = self.clock()
        if (
            isinstance(exc, PermanentFailure)
            or record.attempts >= self.settings.outbox_max_attempts
        ):
            log.error(
                "giving up on mail %s to %s after %d attempts: %s",
                record.id,
                record.recipient,
                record.attempts,
                error,
            )
            await asyncio.to_thread(
                self.store.mark_failed, record.id, claim_id=claim_id, now=now, error=error
            )
            return
        delay = retry_delay(
            record.attempts,
            self.settings.outbox_retry_base_seconds,
            self.settings.outbox_retry_max_seconds,
        )
        log.warning(
            "mail %s to %s failed (attempt %d), retrying in %.1fs: %s",
            record.id,
            record.recipient,
            record.attempts,
            delay,
            error,
        )
        await asyncio.to_thread(
            self.store.mark_retry,
            record.id,
            claim_id=claim_id,
            next_attempt_at=now + timedelta(seconds=delay),
            error=error,
        )
