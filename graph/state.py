"""Process-wide objects, made once by the app factory's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from auth.ratelimit import RateLimiter
from auth.service import AuthToolkit
from auth.settings import Settings
from mail.sender import OutboxSender


@dataclass
class AppState:
    settings: Settings
    toolkit: AuthToolkit
    engine: Engine
    session_factory: sessionmaker[Session]
    # The session check's engine (db.engine.create_reader_engine); the main one if unset.
    reader: Engine | None = None
    # Set by the app's lifespan; None where no sender runs (the CLI's one-off commands).
    mail_sender: OutboxSender | None = None

    def wake_mail_sender(self) -> None:
        """Ask for prompt delivery after a commit that queued mail."""
        if self.mail_sender is not None:
            self.mail_sender.wake()

    @property
    def limiter(self) -> RateLimiter:
        """The process's rate limiter (counts in ``RATE_LIMIT_STORAGE``); see auth.ratelimit."""
        return self.toolkit.limiter
