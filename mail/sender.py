"""The background sender: delivers outbox messages with retries and exponential backoff.

Each server process runs one. Messages are claimed with a short lease (``MAIL_LEASE_SECONDS``,
see :class:`db.outbox.SqlOutboxStore`) that the sender renews every third of it for as long
as it is working through the batch: processes sharing a database do not send one message
twice however slow the mail server is, and a message claimed by a process that died is
taken over by another once the lease runs out, within about ``MAIL_LEASE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from auth.errors import ServiceUnavailable
from auth.ports import OutboxRecord, OutboxStore
from mail.settings import MailSettings
from mail.transport import MailTransport, PermanentFailure, build_message

log = logging.getLogger("authgraph.mail")

BATCH_SIZE = 10
# The longest wait a receiver's Retry-After can ask for.
RETRY_AFTER_MAX_SECONDS = 3600.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Claim:
    """What one pass holds: the messages not yet attempted, and until when for sure.

    ``held_until`` is on the monotonic clock, counted from before the claim (or renewal)
    was written, so by this host's clock the database's lease never ends before this process
    believes it does (senders on hosts whose clocks disagree by more than that can still race).
    """

    def __init__(self, claim_id: str, message_ids: Sequence[str], held_until: float) -> None:
        self.claim_id = claim_id
        self.pending = set(message_ids)
        self.held_until = held_until

    def holds(self, message_id: str) -> bool:
        return message_id in self.pending and time.monotonic() < self.held_until


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones: doubling, capped."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


class RetryLater(Exception):
    """A temporary refusal that says when to try again (HTTP ``Retry-After``)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutboxSender:
    """Drains the outbox; :meth:`wake` asks for a pass now instead of at the next poll."""

    # How the log names what it delivers, and where (when records carry no recipient).
    noun = "mail"
    destination = ""

    def __init__(
        self,
        store: OutboxStore,
        # None for a channel that sends no mail (mail.webhooks overrides send).
        transport: MailTransport | None,
        settings: MailSettings,
        clock: Callable[[], datetime] = _utcnow,
        on_outage: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        # Told of each pass a database outage stopped (dependency, reason): the server logs
        # an outage once, not a traceback every poll interval.
        self.on_outage = on_outage
        self.transport = transport
        self.settings = settings
        self.clock = clock
        self._wakeup = asyncio.Event()
        self._stopping = False
        self.lease = timedelta(seconds=settings.mail_lease_seconds)

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
        started = time.monotonic()
        now = self.clock()
        records = await asyncio.to_thread(
            self.store.claim_due,
            now=now,
            lease_until=now + self.lease,
            claim_id=claim_id,
            limit=BATCH_SIZE,
        )
        if not records:
            return 0
        claim = _Claim(claim_id, [r.id for r in records], started + self.lease.total_seconds())
        renewer = asyncio.create_task(self._renew(claim))
        sent = 0
        try:
            for record in records:
                if not claim.holds(record.id):
                    # Not renewed in time (a database outage, a paused process): another
                    # sender may hold it now, and sending it here could send it twice.
                    log.warning(
                        "lease on %s %s ended before its turn; not sending it", self.noun, record.id
                    )
                    continue
                sent += await self._deliver(record, claim)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        return sent

    async def _renew(self, claim: _Claim) -> None:
        """Every third of the lease, extend it on the messages still to be attempted."""
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            asked = sorted(claim.pending)
            if not asked:
                continue
            started = time.monotonic()
            now = self.clock()
            try:
                held = await asyncio.to_thread(
                    self.store.extend_lease,
                    asked,
                    claim_id=claim.claim_id,
                    lease_until=now + self.lease,
                )
            except Exception as exc:
                # Keep the old deadline: past it, the rest of the batch is left alone.
                log.warning("could not renew the lease on %d messages: %s", len(asked), exc)
                continue
            # Those still pending but no longer held were taken over: leave them be.
            lost = (set(asked) - held) & claim.pending
            if lost:
                log.warning("lease on %d messages taken over by another sender", len(lost))
                claim.pending -= lost
            claim.held_until = started + self.lease.total_seconds()

    async def run_forever(self) -> None:
        """Deliver until :meth:`stop`: at once when woken, else every poll interval."""
        interval = self.settings.outbox_poll_interval_seconds
        while not self._stopping:
            self._wakeup.clear()
            try:
                while await self.run_once() >= BATCH_SIZE and not self._stopping:
                    pass  # a full batch: there may be more due right now
            except ServiceUnavailable as exc:
                if self.on_outage is None:
                    log.warning("outbox pass failed (%s unavailable); will retry", exc.dependency)
                else:
                    self.on_outage(exc.dependency, exc.reason)
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

    async def send(self, record: OutboxRecord) -> None:
        """Deliver one record; raise on failure (``PermanentFailure`` if final, ``RetryLater``
        to ask for a delay). A channel other than mail overrides this (mail.webhooks)."""
        if self.transport is None:
            raise RuntimeError("this sender has no mail transport")
        await self.transport.send(build_message(record, self.settings.email_from))

    async def _deliver(self, record: OutboxRecord, claim: _Claim) -> int:
        claim_id = claim.claim_id
        try:
            await self.send(record)
        except Exception as exc:
            claim.pending.discard(record.id)
            await self._failed(record, claim_id, exc)
            return 0
        # Attempted: no more renewals for it (recording the outcome ends the claim anyway).
        claim.pending.discard(record.id)
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
                "giving up on %s %s to %s after %d attempts: %s",
                self.noun,
                record.id,
                record.recipient or self.destination,
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
        if isinstance(exc, RetryLater):
            # The receiver said when (Retry-After): not before, however short our backoff.
            delay = max(delay, min(exc.retry_after, RETRY_AFTER_MAX_SECONDS))
        log.warning(
            "%s %s to %s failed (attempt %d), retrying in %.1fs: %s",
            self.noun,
            record.id,
            record.recipient or self.destination,
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
