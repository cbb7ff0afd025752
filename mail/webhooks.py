"""Webhook delivery: each security event POSTed to ``WEBHOOK_URL``, signed per Standard Webhooks.

Deliveries sit in the outbox (channel ``webhook``), written in the transaction of the event,
and are drained by a :class:`WebhookSender`: the mail sender's lease, retries and backoff,
with HTTP instead of SMTP. At least once: a receiver that is down gets every event when it
is back (after ``OUTBOX_MAX_ATTEMPTS`` attempts a delivery is marked failed and logged), and
deduplicates on ``webhook-id``, the same on every retry. A ``Retry-After`` (seconds or an
HTTP date) on a refusal is honoured. The signature (https://www.standardwebhooks.com):
``webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>``, ``key`` the
bytes of ``WEBHOOK_SECRET`` after ``whsec_``; the timestamp is the attempt's, in seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from auth.ports import OutboxRecord, OutboxStore
from mail.sender import OutboxSender, RetryLater
from mail.settings import MailSettings
from mail.transport import PermanentFailure

log = logging.getLogger("authgraph.webhooks")

USER_AGENT = "authgraph-webhooks"
# Answers that will not change by retrying: the receiver does not want this (or any) event.
PERMANENT = frozenset({400, 401, 403, 404, 405, 410, 413, 422})


def sign(key: bytes, webhook_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    signed = f"{webhook_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header as seconds from ``now`` (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class WebhookSender(OutboxSender):
    """Drains the outbox's webhook channel to one URL."""

    noun = "webhook"

    def __init__(
        self,
        store: OutboxStore,
        url: str,
        key: bytes,
        settings: MailSettings,
        timeout_seconds: float = 10.0,
        on_outage: Callable[[str, str], None] | None = None,
    ) -> None:
        super().__init__(store, None, settings, on_outage=on_outage)
        self.url = url
        self.destination = url
        self.key = key
        self.timeout = timeout_seconds
        self._client: httpx.AsyncClient | None = None

    async def send(self, record: OutboxRecord) -> None:
        timestamp = int(self.clock().timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": record.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self.key, record.id, timestamp, record.body_text),
        }
        if self._client is None:
            # Redirects are not followed: the signature is for the configured URL only.
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        response = await self._client.post(
            self.url, content=record.body_text.encode(), headers=headers
        )
        status = response.status_code
        if 200 <= status < 300:
            return
        reason = f"HTTP {status} from the webhook receiver"
        delay = retry_after_seconds(response.headers.get("retry-after"), self.clock())
        if delay is not None and status in (429, 503):
            raise RetryLater(reason, delay)
        if status in PERMANENT:
            raise PermanentFailure(reason)
        raise RuntimeError(reason)

    async def run_forever(self) -> None:
        try:
            await super().run_forever()
        finally:
            if self._client is not None:
                await self._client.aclose()
