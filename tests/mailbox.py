"""A real SMTP server (aiosmtpd) inside the test process that keeps what it receives."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

WAIT_SECONDS = 15
TOKEN_IN_LINK = re.compile(r"[?&]token=([A-Za-z0-9_\-]+)")


class Mailbox:
    """An aiosmtpd handler: every accepted message, parsed, with a way to wait for more."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []
        self.refuse_code: str | None = None
        # Every RCPT TO seen, answered or not: how many delivery attempts reached the server.
        self.recipients_tried: list[str] = []
        # Set when a stalled RCPT starts waiting (see :meth:`stall`).
        self.stalled = threading.Event()
        self._stalls_left = 0
        self._stall_seconds = 0.0
        self._released = threading.Event()
        self._changed = threading.Condition()

    def stall(self, seconds: float, count: int = 1) -> None:
        """Make the next ``count`` RCPTs wait ``seconds`` (or until :meth:`release`) to answer.

        A slow or hung mail server, before any message content has arrived: a client that
        dies meanwhile has delivered nothing.
        """
        self._stall_seconds = seconds
        self._stalls_left = count

    def release(self) -> None:
        """End every stall now."""
        self._released.set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self._changed:
            self.recipients_tried.append(address)
        if self._stalls_left > 0:
            self._stalls_left -= 1
            self.stalled.set()
            # In a thread: the server's loop goes on serving other connections meanwhile.
            await asyncio.to_thread(self._released.wait, self._stall_seconds)
        if self.refuse_code is not None:
            return self.refuse_code
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
        return "250 Message accepted for delivery"

    def to(self, recipient: str, subject: str = "") -> list[EmailMessage]:
        """Messages received so far for ``recipient`` whose subject contains ``subject``."""
        with self._changed:
            return [
                m
                for m in self.messages
                if m["To"] == recipient and subject.lower() in str(m["Subject"]).lower()
            ]

    def wait_for(self, recipient: str, count: int = 1, subject: str = "") -> list[EmailMessage]:
        """The first ``count`` matching messages (see :meth:`to`), waiting (bounded) for them."""
        deadline = time.monotonic() + WAIT_SECONDS
        with self._changed:
            while len(found := self.to(recipient, subject)) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no mail for {recipient}; got {self.summary()}"
                self._changed.wait(remaining)
            return found[:count]

    def summary(self) -> list[tuple[str, str]]:
        return [(str(m["To"]), str(m["Subject"])) for m in self.messages]


def text_body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def html_body(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def token_from(message: EmailMessage) -> str:
    """The ``token=`` of the link in the plain-text body (the HTML body carries the same link)."""
    match = TOKEN_IN_LINK.search(text_body(message))
    assert match, text_body(message)
    assert f"token={match.group(1)}" in html_body(message)
    return match.group(1)


@contextmanager
def smtp_server(port: int, **smtp_options: Any) -> Iterator[Mailbox]:
    """Run aiosmtpd on 127.0.0.1:``port`` until the block ends."""
    mailbox = Mailbox(port)
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    try:
        yield mailbox
    finally:
        mailbox.release()
        controller.stop()
