"""Which ways into an account remain: no mutation may leave an account with none.

An account may sign in with a password, and with whatever other methods the deployment
offers (passkeys, emailed codes, social identities). Each method is one counter in
:data:`WAYS_IN`, answering how many of that method the user holds now; a feature adding a
method adds its counter here. A mutation that removes one (``removePasskey``, unlinking an
identity) calls :func:`require_another_way_in` first and answers
:class:`~auth.errors.LastSignInMethod` when nothing would be left.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from auth import errors
from auth.ports import IdentityRepository, PasskeyRepository, UnitOfWork, UserRecord
from auth.toolkit import AuthToolkit

# (toolkit, unit of work, user) -> how many ways in of one kind the user has now.
WayInCounter = Callable[[AuthToolkit, UnitOfWork, UserRecord], int]

PASSWORD = "password"
PASSKEY = "passkey"
EMAIL_CODE = "email_code"
IDENTITY = "identity"


def has_password(user: UserRecord) -> bool:
    """Whether the account has a password at all (one may sign in without: passkeys, codes)."""
    return user.password_hash is not None


def _password(toolkit: AuthToolkit, uow: UnitOfWork, user: UserRecord) -> int:
    return 1 if has_password(user) else 0


def _passkeys(toolkit: AuthToolkit, uow: UnitOfWork, user: UserRecord) -> int:
    # Passkeys switched off (no WEBAUTHN_* settings) let nobody in.
    if not toolkit.settings.passkeys_enabled:
        return 0
    return uow.repository(PasskeyRepository).count(user.id)


def _email_code(toolkit: AuthToolkit, uow: UnitOfWork, user: UserRecord) -> int:
    # Any account can be sent a sign-in code while codes are on: its mailbox is a way in.
    return 1 if toolkit.settings.sign_in_codes_enabled else 0


def _identities(toolkit: AuthToolkit, uow: UnitOfWork, user: UserRecord) -> int:
    # Only identities of providers still configured: one removed from OAUTH_PROVIDERS can no
    # longer sign anyone in.
    held = uow.repository(IdentityRepository).for_user(user.id)
    return sum(1 for i in held if toolkit.oauth.get(i.provider))


# Every sign-in method, by name. Extend it, never bypass it.
WAYS_IN: Mapping[str, WayInCounter] = {
    PASSWORD: _password,
    PASSKEY: _passkeys,
    EMAIL_CODE: _email_code,
    IDENTITY: _identities,
}


def ways_in(toolkit: AuthToolkit, uow: UnitOfWork, user: UserRecord) -> dict[str, int]:
    """How many ways in of each kind the user has, the empty kinds left out."""
    counts = {name: count(toolkit, uow, user) for name, count in WAYS_IN.items()}
    return {name: n for name, n in counts.items() if n > 0}


def keeps_another_way_in(
    toolkit: AuthToolkit, uow: UnitOfWork, user: UserRecord, *, losing: str, count: int = 1
) -> bool:
    """Whether the user still has a way in after losing ``count`` of the kind ``losing``."""
    held = ways_in(toolkit, uow, user)
    held[losing] = held.get(losing, 0) - count
    return any(n > 0 for n in held.values())


def require_another_way_in(
    toolkit: AuthToolkit, uow: UnitOfWork, user: UserRecord, *, losing: str, count: int = 1
) -> None:
    """Raise :class:`~auth.errors.LastSignInMethod` unless :func:`keeps_another_way_in`."""
    if not keeps_another_way_in(toolkit, uow, user, losing=losing, count=count):
        raise errors.LastSignInMethod
