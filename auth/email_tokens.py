"""Tokens sent by email: issued, checked and spent within the caller's unit of work.

Each token is 256 bits from the OS CSPRNG (:func:`new_opaque_token`), stored only as its
SHA-256 (:func:`hash_opaque_token`), bound to one user, one purpose and the address it was
sent to, short-lived, and spent by a compare-and-set so that it works exactly once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from auth.errors import InvalidEmailToken
from auth.ports import EmailTokenPurpose, EmailTokenRecord, UnitOfWork
from auth.settings import AuthSettings
from auth.tokens import hash_opaque_token, new_opaque_token


def token_ttl(settings: AuthSettings, purpose: EmailTokenPurpose) -> timedelta:
    seconds = {
        "verify_email": settings.email_verification_ttl_seconds,
        "reset_password": settings.password_reset_ttl_seconds,
        "change_email": settings.email_change_ttl_seconds,
    }[purpose]
    return timedelta(seconds=seconds)


class EmailTokens:
    """Issue and redeem emailed tokens in one unit of work."""

    def __init__(self, settings: AuthSettings, uow: UnitOfWork) -> None:
        self.settings = settings
        self.uow = uow

    def issue(self, *, user_id: str, purpose: EmailTokenPurpose, email: str, now: datetime) -> str:
        """A new token for ``purpose``; earlier ones of that purpose stop working."""
        # Only the latest link works: an older message found later in a mailbox is useless.
        self.uow.email_tokens.drop(user_id=user_id, purpose=purpose)
        token = new_opaque_token()
        self.uow.email_tokens.add(
            user_id=user_id,
            purpose=purpose,
            token_hash=hash_opaque_token(token),
            email=email,
            now=now,
            expires_at=now + token_ttl(self.settings, purpose),
        )
        return token

    def find_valid(
        self, token: str, purpose: EmailTokenPurpose, *, now: datetime
    ) -> EmailTokenRecord:
        """The unspent, unexpired token of this purpose, or :class:`InvalidEmailToken`."""
        record = self.uow.email_tokens.find(hash_opaque_token(token)) if token else None
        if (
            record is None
            or record.purpose != purpose
            or record.used_at is not None
            or record.expires_at <= now
        ):
            raise InvalidEmailToken
        return record

    def spend(self, record: EmailTokenRecord, *, now: datetime) -> None:
        """Mark the token used; of two concurrent redemptions only one gets past this."""
        if not self.uow.email_tokens.claim(record, now=now):
            raise InvalidEmailToken
