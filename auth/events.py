"""The security audit trail: what happened to an account, when, from where.

A use case records an event with :func:`record_event` **inside its own unit of work**,
before it commits: the event is stored in the same transaction as the change it describes,
so a committed change always has its event and a rolled-back one never does.

What an event holds is chosen so that it can be shown to the user, mailed and sent to a
webhook as it is: a kind, a time, the user's id, the session it is about, the client's IP
and a device label parsed from the user agent (never the raw user agent), a short
``detail`` (the sign-in method, the sign-out scope, the admin action), and, for admin
actions, the acting admin's id. Never a token, password, code, secret or email address.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Protocol

from auth import errors
from auth.ports import ClientInfo, OutgoingWebhook, UnitOfWork
from auth.tokens import hash_opaque_token
from auth.toolkit import AuthToolkit

DEVICE_MAX = 128
DETAIL_MAX = 64
PAGE_MAX = 100
# A detail is a label, never free text: letters, digits and a few separators only, so
# that nobody passes a secret or an address into the trail by mistake.
_DETAIL = re.compile(r"[A-Za-z0-9_.:+-]{1,64}\Z")


class EventKind(StrEnum):
    """Every kind of security event; GraphQL's ``SecurityEventKind`` has the same names."""

    SIGNED_IN = "signed_in"
    SIGN_IN_FAILED = "sign_in_failed"
    NEW_DEVICE_SIGN_IN = "new_device_sign_in"
    SIGNED_OUT = "signed_out"
    SESSION_REVOKED = "session_revoked"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    EMAIL_CHANGE_REQUESTED = "email_change_requested"
    EMAIL_CHANGED = "email_changed"
    EMAIL_VERIFIED = "email_verified"
    ACCOUNT_DELETED = "account_deleted"
    MFA_ENABLED = "mfa_enabled"
    MFA_DISABLED = "mfa_disabled"
    RECOVERY_CODE_USED = "recovery_code_used"
    RECOVERY_CODES_REGENERATED = "recovery_codes_regenerated"
    PASSKEY_ADDED = "passkey_added"
    PASSKEY_REMOVED = "passkey_removed"
    IDENTITY_LINKED = "identity_linked"
    IDENTITY_UNLINKED = "identity_unlinked"
    ADMIN_ACTION = "admin_action"


# The sign-in methods a SIGNED_IN event's detail names.
SIGNUP = "signup"
PASSWORD = "password"
PASSWORD_TOTP = "password+totp"
PASSWORD_RECOVERY_CODE = "password+recovery_code"
PASSKEY = "passkey"
EMAIL_CODE = "email_code"
IDENTITY = "identity"
# A first factor's RFC 8176 amr value, as a sign-in method's name.
_FIRST_FACTORS = {
    "pwd": PASSWORD,
    "fed": IDENTITY,
    "otp": EMAIL_CODE,
    "hwk": PASSKEY,
    "swk": PASSKEY,
}


def sign_in_method(first_factor: str, second_factor: str | None = None) -> str:
    """The method a SIGNED_IN event names: "password", "identity+totp", ..."""
    first = _FIRST_FACTORS.get(first_factor, first_factor)
    return f"{first}+{second_factor}" if second_factor else first


# The kinds mailed to the user (each unless its NOTIFY_<KIND> setting is false): the
# sentence that says what happened, after "On <date>, ".
NOTICES: dict[EventKind, tuple[str, str]] = {
    EventKind.NEW_DEVICE_SIGN_IN: (
        "New sign-in to your account",
        "your account was signed in to from a device it had not been used on before",
    ),
    EventKind.PASSWORD_CHANGED: (
        "Your password was changed",
        "the password of your account was changed",
    ),
    EventKind.MFA_ENABLED: (
        "Two-step verification is on",
        "two-step verification was turned on for your account",
    ),
    EventKind.MFA_DISABLED: (
        "Two-step verification is off",
        "two-step verification was turned off for your account",
    ),
    EventKind.REFRESH_TOKEN_REUSED: (
        "We ended a session of yours",
        "a sign-in token of your account was used twice, which happens when it has been "
        "copied; we ended that session",
    ),
    EventKind.PASSKEY_ADDED: ("A passkey was added", "a passkey was added to your account"),
    EventKind.IDENTITY_LINKED: (
        "A sign-in method was linked",
        "another sign-in method was linked to your account",
    ),
}


@dataclass(frozen=True, slots=True)
class NewSecurityEvent:
    """An event about to be stored."""

    kind: EventKind
    user_id: str
    occurred_at: datetime
    session_id: str | None = None
    ip_address: str | None = None
    device: str | None = None
    detail: str | None = None
    actor_id: str | None = None


class SecurityEventRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def ip_address(self) -> str | None: ...
    @property
    def device(self) -> str | None: ...
    @property
    def detail(self) -> str | None: ...
    @property
    def actor_id(self) -> str | None: ...


class SecurityEventRepository(Protocol):
    """The stored trail. Rows are not tied to the user's row: they outlive the account."""

    def add(self, event: NewSecurityEvent) -> SecurityEventRecord: ...

    def page(
        self, *, user_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> Sequence[SecurityEventRecord]:
        """Up to ``limit`` of the user's events, newest first (ties by id, descending),
        strictly after the ``(occurred_at, id)`` position ``after`` in that order."""
        ...

    def forget_client(self, *, user_id: str) -> int:
        """Blank the IP and device of every event of the user (the account is going)."""
        ...

    def prune(self, *, before: datetime) -> int:
        """Delete events that occurred before ``before``; return how many."""
        ...

    def remember_device(self, *, user_id: str, device_hash: str, now: datetime) -> bool:
        """Note that the user signed in from this device (its cookie's hash); whether it was
        new to them (False when already known: its last sign-in time moves to ``now``)."""
        ...

    def knows_devices(self, user_id: str) -> bool:
        """Whether any device is remembered for the user."""
        ...


def record_event(
    toolkit: AuthToolkit,
    uow: UnitOfWork,
    kind: EventKind,
    *,
    user_id: str,
    session_id: str | None = None,
    client: ClientInfo | None = None,
    detail: str | None = None,
    actor_id: str | None = None,
) -> SecurityEventRecord:
    """Store one event in ``uow``'s transaction; the caller commits it with its change.

    ``session_id`` is the session the event is about (the one opened, ended or acting),
    ``client`` where the request came from (its IP, and its user agent turned into a
    device label), ``detail`` a short label (see ``_DETAIL``: the sign-in method, the
    logout scope, an admin action's name), ``actor_id`` who acted when it was not the
    user (an admin). Raises ``ValueError`` for a detail that is not a plain label.
    """
    if detail is not None and not _DETAIL.match(detail):
        raise ValueError("an event's detail is a short label (letters, digits, _.:+-)")
    client = client or ClientInfo()
    event = uow.events.add(
        NewSecurityEvent(
            kind=kind,
            user_id=user_id,
            occurred_at=toolkit.clock(),
            session_id=session_id,
            ip_address=client.ip_address,
            device=device_label(client.user_agent),
            detail=detail,
            actor_id=actor_id,
        )
    )
    _queue_notice(toolkit, uow, event)
    if toolkit.settings.webhook_url is not None:
        uow.outbox.enqueue_webhook(webhook_of(event), now=event.occurred_at)
    return event


WEBHOOK_TYPE_PREFIX = "security_event."


def webhook_of(event: SecurityEventRecord) -> OutgoingWebhook:
    """The Standard Webhooks payload of ``event``: ``type``, ``timestamp`` and ``data``.

    ``data`` holds exactly the event's stored fields (no secret is among them); the event's
    id is the ``webhook-id``, the same on every retry.
    """
    kind = EventKind(event.kind)
    payload = {
        "type": WEBHOOK_TYPE_PREFIX + kind.value,
        "timestamp": event.occurred_at.isoformat(),
        "data": {
            "id": event.id,
            "kind": kind.name,
            "occurredAt": event.occurred_at.isoformat(),
            "userId": event.user_id,
            "sessionId": event.session_id,
            "ipAddress": event.ip_address,
            "device": event.device,
            "detail": event.detail,
            "actorId": event.actor_id,
        },
    }
    return OutgoingWebhook(
        id=event.id,
        type=str(payload["type"]),
        body=json.dumps(payload, separators=(",", ":"), sort_keys=True),
    )


def notice_enabled(toolkit: AuthToolkit, kind: EventKind) -> bool:
    """Whether ``kind`` is mailed to the user: one of :data:`NOTICES`, its NOTIFY_<KIND> on."""
    return kind in NOTICES and bool(getattr(toolkit.settings, f"notify_{kind.value}"))


def _queue_notice(toolkit: AuthToolkit, uow: UnitOfWork, event: SecurityEventRecord) -> None:
    """Mail the user about ``event`` in the same transaction (the outbox delivers it)."""
    kind = EventKind(event.kind)
    if not notice_enabled(toolkit, kind):
        return
    user = uow.users.get(event.user_id)
    if user is None:
        return
    subject, what = NOTICES[kind]
    uow.outbox.enqueue(
        toolkit.mail.security_notice(
            user.email,
            subject=subject,
            what=what,
            when=event.occurred_at,
            device=event.device,
            ip_address=event.ip_address,
        ),
        now=event.occurred_at,
    )


def check_device(
    toolkit: AuthToolkit,
    uow: UnitOfWork,
    *,
    user_id: str,
    session_id: str,
    client: ClientInfo,
    method: str,
) -> bool:
    """At a sign-in: remember the client's device cookie for the user, and record
    ``NEW_DEVICE_SIGN_IN`` (mailed) if it is new to them; whether it was.

    The account's first device is no news (the signup, or the first sign-in of an account
    that never had a cookie): nothing is recorded for it. A client sending no cookie has
    been given one by the transport, so it is a new device until it sends it back.
    """
    if client.device_token is None:
        return False
    first = not uow.events.knows_devices(user_id)
    new = uow.events.remember_device(
        user_id=user_id, device_hash=hash_opaque_token(client.device_token), now=toolkit.clock()
    )
    if new and not first and method != SIGNUP:
        record_event(
            toolkit,
            uow,
            EventKind.NEW_DEVICE_SIGN_IN,
            user_id=user_id,
            session_id=session_id,
            client=client,
            detail=method,
        )
    return new and not first


@lru_cache(maxsize=1024)
def device_label(user_agent: str | None) -> str | None:
    """A short, human label for a user agent ("Firefox 120 on Ubuntu"), or ``None``.

    Parsed by ``ua-parser`` (uap-core's maintained rules); an agent it does not know keeps
    only its product token ("python-httpx"), never the whole string.
    """
    if not user_agent:
        return None
    # Imported here: loading the rules costs a moment that processes which never record an
    # event (one-off commands) need not pay.
    import ua_parser

    parsed = ua_parser.parse(user_agent[:512])
    browser = parsed.user_agent
    os = parsed.os
    device = parsed.device
    parts: list[str] = []
    if browser is not None and browser.family != "Other":
        parts.append(f"{browser.family} {browser.major}" if browser.major else browser.family)
    if os is not None and os.family != "Other":
        parts.append(f"on {os.family} {os.major}" if os.major else f"on {os.family}")
    if device is not None and device.family not in ("Other", "Spider") and device.model:
        label = f"{device.brand} {device.model}" if device.brand else device.model
        if label not in " ".join(parts):
            parts.append(f"({label})")
    if not parts:
        product = user_agent.split("/", 1)[0].split(" ", 1)[0].strip()
        return product[:DEVICE_MAX] or None
    return " ".join(parts)[:DEVICE_MAX]


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of a user's events, newest first, and whether more follow."""

    events: Sequence[SecurityEventRecord]
    has_next: bool


def cursor_of(event: SecurityEventRecord) -> str:
    """The opaque position of ``event`` in its user's trail (keyset: time, then id)."""
    raw = f"{event.occurred_at.isoformat()}|{event.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a :func:`cursor_of` cursor names; ``ValidationFailed`` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, event_id = raw.split("|", 1)
        occurred_at = datetime.fromisoformat(when)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise errors.ValidationFailed("after", "Not a cursor of this list.") from None
    if occurred_at.tzinfo is None or not event_id or "\x00" in event_id:
        raise errors.ValidationFailed("after", "Not a cursor of this list.")
    return occurred_at, event_id


class SecurityEvents:
    """Reading the trail, and its retention (``AUDIT_RETENTION_DAYS``)."""

    def __init__(self, toolkit: AuthToolkit, uow: UnitOfWork) -> None:
        self.toolkit = toolkit
        self.uow = uow

    def page(self, user_id: str, *, first: int, after: str | None) -> EventPage:
        """The user's events after the cursor ``after``, at most ``first`` (1 to 100)."""
        if not 1 <= first <= PAGE_MAX:
            raise errors.ValidationFailed("first", f"Ask for 1 to {PAGE_MAX} events.")
        position = parse_cursor(after) if after else None
        rows = self.uow.events.page(user_id=user_id, limit=first + 1, after=position)
        return EventPage(events=rows[:first], has_next=len(rows) > first)

    def prune(self) -> int:
        """Delete events older than ``AUDIT_RETENTION_DAYS`` (the caller commits)."""
        days = self.toolkit.settings.audit_retention_days
        return self.uow.events.prune(before=self.toolkit.clock() - timedelta(days=days))
