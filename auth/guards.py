"""Steps several use cases share: rate limits, the password check, the verification mail,
and the step-up rule (how recent, and at what level, the session's authentication is)."""

from __future__ import annotations

from datetime import datetime, timedelta

from auth import errors
from auth.email_tokens import EmailTokens
from auth.emails import canonical_email
from auth.ports import MfaRepository, SessionRecord, UnitOfWork, UserRecord
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


def mfa_methods(uow: UnitOfWork, user_id: str) -> tuple[str, ...]:
    """The second-factor methods the user can answer with now (empty without MFA)."""
    if not uow.repository(MfaRepository).factors(user_id):
        return ()
    return (
        ("totp", "recovery_code")
        if uow.repository(MfaRepository).recovery_codes_left(user_id)
        else ("totp",)
    )


def require_assurance(
    toolkit: AuthToolkit,
    uow: UnitOfWork,
    user_id: str,
    session: SessionRecord,
    *,
    level: int | None = None,
    recent: bool = False,
    max_age_seconds: int | None = None,
    mfa_users_only: bool = False,
) -> None:
    """Raise ReauthenticationRequired unless the session's authentication is good enough.

    ``level``: the session's ``aal`` must reach it, or the user's highest level if lower (a
    user without MFA cannot reach aal2, so ``level=2`` asks nothing of them). ``recent``:
    the session must also have authenticated within ``max_age_seconds`` (by default
    ``REAUTH_MAX_AGE_SECONDS``) at the user's highest level. ``mfa_users_only`` applies the
    age rule only to users with MFA: mutations that take the password anyway
    (changePassword, requestEmailChange, deleteAccount) change nothing for the others.
    """
    methods = mfa_methods(uow, user_id)
    uow.rollback()  # a read only: no pooled connection is held past it
    highest = 2 if methods else 1
    max_age = max_age_seconds or toolkit.settings.reauth_max_age_seconds
    refuse = errors.ReauthenticationRequired(max_age, methods)
    if level is not None and session.aal < min(level, highest):
        raise refuse
    if not recent or (mfa_users_only and not methods):
        return
    too_old = session.authenticated_at < toolkit.clock() - timedelta(seconds=max_age)
    if session.aal < highest or too_old:
        raise refuse
