"""Steps several use cases share: rate limits, the password check, the verification mail."""

from __future__ import annotations

from datetime import datetime

from auth import errors
from auth.email_tokens import EmailTokens
from auth.emails import canonical_email
from auth.ports import UnitOfWork, UserRecord
from auth.toolkit import AuthToolkit


def throttle(toolkit: AuthToolkit, *checks: tuple[str, str, str | None]) -> None:
    """Count one hit of each ``(limit, name, key)``; raise RateLimited if any is over."""
    retry_after = toolkit.limiter.hit_all(*checks)
    if retry_after is not None:
        raise errors.RateLimited(retry_after)


def login_key(email: str) -> str:
    """The per-account rate-limit key of a login address, whether or not the account exists."""
    try:
        return canonical_email(email)
    except errors.ValidationFailed:
        return email.strip().casefold()


def check_password(
    toolkit: AuthToolkit, uow: UnitOfWork, user: UserRecord, password: str, message: str
) -> None:
    """Verify ``password`` for a signed-in user, under the account's login limit.

    A stolen access token must not become a way to guess the password: every check shares
    the account's login count, and a success clears it as a login does.
    """
    account = login_key(user.email)
    throttle(toolkit, (toolkit.settings.login_rate_limit, "login", account))
    uow.rollback()  # no pooled connection is held during the hash
    ok, _ = toolkit.hasher.verify(password, user.password_hash)
    if not ok:
        raise errors.InvalidCredentials(message)
    toolkit.limiter.clear(toolkit.settings.login_rate_limit, "login", account)


def queue_verification(
    toolkit: AuthToolkit, uow: UnitOfWork, *, user_id: str, email: str, now: datetime
) -> None:
    """Queue a verification message for ``email`` in the caller's transaction."""
    token = EmailTokens(toolkit.settings, uow).issue(
        user_id=user_id, purpose="verify_email", email=email, now=now
    )
    uow.outbox.enqueue(toolkit.mail.verification(email, token), now=now)
