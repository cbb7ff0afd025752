"""Mail's settings: the SMTP endpoint (parsed once, here), the sender and the outbox's pace."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from auth.config import Secret, Source, load_section, render, setting
from auth.errors import ConfigurationError


@dataclass(frozen=True)
class SmtpEndpoint:
    """Where and how to deliver mail, parsed from ``SMTP_URL`` (the password stays masked)."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: Secret | None


def smtp_endpoint(url: str) -> SmtpEndpoint:
    """Parse ``smtp://[user:pass@]host[:port]`` (STARTTLS when offered) or ``smtps://`` (TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigurationError(
            "SMTP_URL must look like smtp://user:password@host:587 or smtps://host:465."
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError("SMTP_URL has an invalid port.") from None
    implicit_tls = parts.scheme == "smtps"
    return SmtpEndpoint(
        host=parts.hostname,
        port=port or (465 if implicit_tls else 25),
        implicit_tls=implicit_tls,
        username=unquote(parts.username) if parts.username else None,
        password=Secret(unquote(parts.password)) if parts.password else None,
    )


def _smtp_unset(source: Source) -> None:
    if source.production:
        raise ConfigurationError(
            "SMTP_URL is not set. Production must deliver mail: smtp://user:pass@host:587."
        )


def _email_from(raw: str, source: Source) -> str:
    if "@" not in raw or "\n" in raw or "\r" in raw:
        raise ConfigurationError("EMAIL_FROM must be an address like 'App <no-reply@x.com>'.")
    return raw


@dataclass(frozen=True, repr=False)
class MailSettings:
    """Mail: the SMTP server, the sender address and the outbox's retries."""

    smtp: SmtpEndpoint | None = setting(
        "SMTP_URL",
        None,
        doc="Mail server for account emails: smtp://user:pass@host:587 (STARTTLS when offered) "
        "or smtps://host:465. Unset in development: mail goes to the log and MAIL_DIR. "
        "Required in production.",
        parse=lambda raw, source: smtp_endpoint(raw),
        unset=_smtp_unset,
    )
    email_from: str = setting(
        "EMAIL_FROM",
        "authgraph <no-reply@localhost>",
        doc="Sender of account emails (From header).",
        parse=_email_from,
    )
    smtp_timeout_seconds: float = setting(
        "SMTP_TIMEOUT_SECONDS", 30.0, doc="Timeout of each SMTP operation, in seconds.", minimum=1
    )
    outbox_poll_interval_seconds: float = setting(
        "OUTBOX_POLL_INTERVAL_SECONDS",
        5.0,
        doc="Seconds between polls of the mail outbox (a commit that queues mail also wakes the "
        "sender at once).",
        minimum=0.05,
    )
    outbox_max_attempts: int = setting(
        "OUTBOX_MAX_ATTEMPTS",
        10,
        doc="Delivery attempts of one message before it is marked failed and logged.",
        minimum=1,
    )
    outbox_retry_base_seconds: float = setting(
        "OUTBOX_RETRY_BASE_SECONDS",
        5.0,
        doc="First retry delay in seconds after a failed delivery; it doubles with each attempt.",
        minimum=0.01,
    )
    outbox_retry_max_seconds: float = setting(
        "OUTBOX_RETRY_MAX_SECONDS",
        3600.0,
        doc="Longest delay between two delivery attempts, in seconds.",
        minimum=0.01,
    )
    mail_lease_seconds: int = setting(
        "MAIL_LEASE_SECONDS",
        30,
        doc="Seconds a sender's claim on a message lasts unless renewed; a live sender renews it "
        "every third of that, a dead one's mail is taken over once it runs out.",
        # Under 2 s a renewal's own round trip could outlast the lease; over 10 minutes a dead
        # process's mail would wait longer than it did before leases were renewed.
        minimum=2,
        maximum=600,
    )
    mail_dir: str = setting(
        "MAIL_DIR",
        "var/mail",
        doc="Development only (no SMTP_URL): folder where each message is also written as an "
        ".eml file.",
    )

    @classmethod
    def load(cls, source: Source) -> MailSettings:
        return load_section(cls, source)

    def __repr__(self) -> str:
        return render(self)
