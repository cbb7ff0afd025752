"""Every failure the domain reports, in one place.

The transport layer maps these to GraphQL result types or HTTP statuses once, at its edge.
"""

from __future__ import annotations


class AuthError(Exception):
    """Base class of the expected, user-facing failures."""

    message = "Authentication failed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)

    @property
    def public_message(self) -> str:
        return str(self.args[0])


class ValidationFailed(AuthError):
    """An input field is unacceptable; ``field`` names it as the client sent it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class EmailTaken(AuthError):
    message = "An account with this email already exists."


class InvalidCredentials(AuthError):
    # One message for unknown email, wrong password and disabled account, so that a
    # login answer never tells whether an account exists (ASVS 6.3.8).
    message = "Invalid email or password."


class Unauthenticated(AuthError):
    """The caller presented no usable credentials where some are needed."""

    message = "Not authenticated."


class InvalidAccessToken(Unauthenticated):
    """A bearer token was presented but is malformed, forged, expired or revoked."""

    message = "The access token is invalid or expired."


class AccountDisabled(AuthError):
    """The credential was right, but an administrator disabled the account.

    Raised only after the password, code or refresh token was proven right: a wrong one
    still gets the answer it always gets, so disabling an account tells a guesser nothing.
    """

    message = "This account is disabled. Contact support."


class InvalidRefreshToken(AuthError):
    message = "The refresh token is invalid, expired or revoked."


class CsrfFailed(AuthError):
    """A cookie-carrying request came without valid CSRF proof."""

    message = "CSRF check failed: send the X-CSRF-Token header from an allowed origin."


class SessionNotFound(AuthError):
    # Also the answer for another user's session id: it reveals nothing.
    message = "No such session."


class RateLimited(AuthError):
    """Too many attempts; ``retry_after`` is the whole seconds until one can succeed.

    Raised before any account is looked up, so it never tells whether one exists.
    """

    message = "Too many attempts. Try again later."

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


class ServiceUnavailable(Exception):
    """A dependency the request needs (``dependency``: "database", "rate-limit storage") did
    not answer: refused, timed out, or dropped. Not the caller's fault; a retry may succeed.

    Not an :class:`AuthError`: it is no answer about the caller, so no use case may take it
    for one (an outage must never read as "invalid credentials"). ``reason`` is for the log.
    """

    message = "The service is temporarily unavailable. Try again shortly."

    def __init__(self, dependency: str, reason: str = "") -> None:
        super().__init__(self.message)
        self.dependency = dependency
        self.reason = reason

    @property
    def public_message(self) -> str:
        return self.message


class ConfigurationError(Exception):
    """A setting is missing or unsafe; the message names the setting."""


class InvalidEmailToken(AuthError):
    # One answer for unknown, spent, expired, superseded and other-purpose tokens.
    message = "This link is invalid or has expired. Ask for a new one."


class EmailAlreadyVerified(AuthError):
    message = "This email address is already verified."


class InvalidMfaCode(AuthError):
    # One answer for a wrong, reused, older or malformed code, and for an unknown factor.
    message = "The code is not correct. Codes work once; wait for the next one."


class InvalidMfaToken(InvalidEmailToken):
    """An unknown, spent, expired or exhausted ``mfaToken`` (answered as ``InvalidToken``)."""

    message = "The sign-in attempt has expired or was used. Log in again."


class SecondFactorRequired(AuthError):
    """The password was right, but the account needs a second factor this route cannot take."""

    message = (
        "This account requires a second factor: log in with the GraphQL login and verifyMfa "
        "mutations."
    )


class ReauthenticationRequired(AuthError):
    """The session's last authentication is too old, or below the level the operation needs.

    ``methods`` are the second-factor methods that ``reauthenticate`` accepts (empty for an
    account without MFA, which reauthenticates with its password). ``password``: whether the
    password alone does (no MFA, and the account has one). ``passkey``: whether a passkey
    does (the account has one and passkeys are on), with or without MFA. An account for
    which all three say no (no password, no MFA, no passkey) confirms by signing in again:
    a new sign-in, with an emailed code for instance, is recent.
    """

    message = "Confirm it is you: call reauthenticate, then try again."

    def __init__(
        self,
        max_age_seconds: int,
        methods: tuple[str, ...],
        *,
        password: bool = True,
        passkey: bool = False,
    ) -> None:
        super().__init__()
        self.max_age_seconds = max_age_seconds
        self.methods = methods
        self.password = password
        self.passkey = passkey


class MfaFactorNotFound(AuthError):
    # Also the answer for another user's factor id.
    message = "No such factor."


class LastSignInMethod(AuthError):
    """The change would leave the account with no way to sign in (see :mod:`auth.ways_in`)."""

    message = (
        "This is the account's last way to sign in: add another one (a password, a passkey) first."
    )


class NoPassword(InvalidCredentials):
    """A signed-in user without a password was asked for one (answered as InvalidCredentials).

    Only ever raised to the account's own, authenticated owner: a login never tells.
    """

    message = (
        "This account has no password. Set one with requestPasswordReset, or sign in again "
        "to confirm it is you."
    )


class MethodNotEnabled(AuthError):
    """The sign-in method is off on this deployment (``Query.signInMethods`` says which are on)."""

    message = "This sign-in method is not enabled on this server."
