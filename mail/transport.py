"""How a message leaves the process: SMTP (aiosmtplib), or the log and a folder in development."""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Protocol

import aiosmtplib

from auth.ports import OutboxRecord
from mail.settings import MailSettings, SmtpEndpoint

log = logging.getLogger("authgraph.mail")


class PermanentFailure(Exception):
    """The server refused the message for good (a 5xx answer): retrying will not help."""


class MailTransport(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver one message; raise on failure (:class:`PermanentFailure` if final)."""
        ...


def build_message(record: OutboxRecord, sender: str) -> EmailMessage:
    """A multipart/alternative message; its Message-ID is stable across retries."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = record.recipient
    message["Subject"] = record.subject
    message["Date"] = formatdate(record.created_at.timestamp(), usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "authgraph"
    # Stable, so a receiver can drop the duplicate if a retry follows a lost acknowledgement.
    message["Message-ID"] = f"<{record.id}@{domain}>"
    message.set_content(record.body_text)
    message.add_alternative(record.body_html, subtype="html")
    return message


class SmtpTransport:
    """SMTP with aiosmtplib: implicit TLS for ``smtps://``, STARTTLS whenever offered."""

    def __init__(self, endpoint: SmtpEndpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    async def send(self, message: EmailMessage) -> None:
        endpoint = self.endpoint
        try:
            await aiosmtplib.send(
                message,
                hostname=endpoint.host,
                port=endpoint.port,
                username=endpoint.username,
                password=endpoint.password.reveal() if endpoint.password else None,
                use_tls=endpoint.implicit_tls,
                # None: upgrade with STARTTLS when the server offers it, plain otherwise.
                start_tls=None if not endpoint.implicit_tls else False,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise PermanentFailure(f"{exc.code} {exc.message}") from exc
            raise
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [error.code for error in exc.recipients]
            if codes and all(500 <= code < 600 for code in codes):
                raise PermanentFailure(str(exc)) from exc
            raise


class DevelopmentTransport:
    """No SMTP server: log each message and keep a copy as an ``.eml`` file in ``MAIL_DIR``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: EmailMessage) -> None:
        text = message.get_body(("plain",))
        log.info(
            "development mail (SMTP_URL is not set) to %s: %s\n%s",
            message["To"],
            message["Subject"],
            text.get_content() if isinstance(text, EmailMessage) else "",
        )
        await asyncio.to_thread(self._write, message)

    def _write(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = str(message["Message-ID"]).strip("<>").split("@")[0]
        (self.directory / f"{name}.eml").write_bytes(bytes(message))


def transport_for(settings: MailSettings) -> MailTransport:
    """SMTP when ``SMTP_URL`` is set, else the development log-and-folder transport."""
    if settings.smtp is None:
        return DevelopmentTransport(Path(settings.mail_dir))
    return SmtpTransport(settings.smtp, settings.smtp_timeout_seconds)
