"""Steps several use cases share: rate limits, the password check, the verification mail,
and the step-up rule (how recent, and at what level, the session's authentication is)."""

from __future__ import annotations

from datetime import datetime, timedelta

from auth import errors
from auth.email_tokens import EmailTokens
from auth.emails import canonical_email
from auth.ports import (
    ClientInfo,
    MfaRepository,
    PasskeyRepository,
    SessionRecord,
    UnitOfWork,
    UserRecord,
)
from auth.toolkit import AuthToolkit


def throttle(toolkit: AuthToolkit, *checks: tuple[str, str, str | None]) -> None:
    """Count one hit of each ``(limit, name, key)``; raise RateLimited if any is over."""
    retry_after = toolkit.limiter.hit_all(*checks)
    if retry_after is not None:
        raise errors.RateLimited(retry_after)


def throttle_mail(toolkit: AuthToolkit, address: str, client: ClientInfo) -> None:
    """Count one message to ``address``: per IP first, then per address (any purpose)."""
    throttle(
        toolkit,
        (toolkit.settings.email_ip_rate_limit, "email-ip", client.ip_address),
        (toolkit.settings.email_rate_limit, "email", address),
    )


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
    stored = user.password_hash
    if stored is None:
        # The same work as a check: the answer is the owner's, but the cost stays one hash.
        toolkit.hasher.dummy_verify()
        raise errors.NoPassword
    ok, _ = toolkit.hasher.verify(password, stored)
    if not ok:
        raise errors.InvalidCredentials(message)
    toolkit.limiter.clear(toolkit.settings.login_rate_limit, "login", account)


def confirm_owner(
    toolkit: AuthToolkit,
    uow: UnitOfWork,
    user: UserRecord,
    session: SessionRecord,
    password: str,
    message: str,
) -> None:
    """Prove a signed-in caller is the owner before a sensitive change.

    With a password: :func:`check_password`. An account without one has nothing to type,
    so it needs a recent authentication instead (a sign-in within
    ``REAUTH_MAX_AGE_SECONDS`` at the user's highest level; ``password`` is ignored), or the
    change answers ReauthenticationRequired.
    """
    if user.password_hash is None:
        require_assurance(toolkit, uow, user.id, session, recent=True)
        return
    check_password(toolkit, uow, user, password, message)


def queue_verification(
    toolkit: AuthToolkit, uow: UnitOfWork, *, user_id: str, email: str, now: datetime
) -> None:
    """Queue a verification message for ``email`` in the caller's transaction."""
    token = EmailTokens(toolkit.settings, uow).issue(
        user_id=user_id, purpose="verify_email", email=email, now=now
    )
    uow.outbox.enqueue(toolkit.mail.verification(email, token), now=now)


def mfa_methods(uow: UnitOfWork, user_id: str, *, passkeys: bool = False) -> tuple[str, ...]:
    """The second-factor methods the user can answer with now (empty without MFA).

    ``passkeys``: whether passkeys are on (``WEBAUTHN_*``); then a user with MFA and a
    passkey may answer with it too.
    """
    mfa = uow.repository(MfaRepository)
    if not mfa.factors(user_id):
        return ()
    methods: tuple[str, ...] = ("totp",)
    if mfa.recovery_codes_left(user_id):
        methods += ("recovery_code",)
    if passkeys and uow.repository(PasskeyRepository).count(user_id):
        methods += ("passkey",)
    return methods


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
    methods = mfa_methods(uow, user_id, passkeys=toolkit.settings.passkeys_enabled)
    uow.rollback()  # a read only: no pooled connection is held past it
    highest = 2 if methods else 1
    max_age = max_age_seconds or toolkit.settings.reauth_max_age_seconds
    if level is not None and session.aal < min(level, highest):
        raise _refusal(toolkit, uow, user_id, max_age, methods)
    if not recent or (mfa_users_only and not methods):
        return
    too_old = session.authenticated_at < toolkit.clock() - timedelta(seconds=max_age)
    if session.aal < highest or too_old:
        raise _refusal(toolkit, uow, user_id, max_age, methods)


def _refusal(
    toolkit: AuthToolkit, uow: UnitOfWork, user_id: str, max_age: int, methods: tuple[str, ...]
) -> errors.ReauthenticationRequired:
    """What ``reauthenticate`` will take from this user, read only when refusing."""
    if methods:  # with MFA: a second factor (PASSKEY among them when the user has one)
        return errors.ReauthenticationRequired(
            max_age, methods, password=False, passkey="passkey" in methods
        )
    user = uow.users.get(user_id)
    passkey = toolkit.settings.passkeys_enabled and bool(
        uow.repository(PasskeyRepository).count(user_id)
    )
    uow.rollback()
    has_password = user is not None and user.password_hash is not None
    return errors.ReauthenticationRequired(max_age, (), password=has_password, passkey=passkey)
