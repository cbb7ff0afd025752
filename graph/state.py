"""Process-wide objects, made once by the app factory's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from auth.ratelimit import RateLimiter
from auth.service import AuthToolkit
from auth.settings import Settings


@dataclass
class AppState:
    settings: Settings
    toolkit: AuthToolkit
    engine: Engine
    session_factory: sessionmaker[Session]

    @property
    def limiter(self) -> RateLimiter:
        """The process's rate limiter (counts in ``RATE_LIMIT_STORAGE``); see auth.ratelimit."""
        return self.toolkit.limiter
