"""One-time email sign-in codes: ``requestSignInCode`` and ``signInWithCode``.

A code is 8 random digits, mailed (through the outbox) only to an existing account, stored
only as an HMAC bound to the user, valid 10 minutes, single use (spent by compare-and-set),
and dead after 5 wrong tries. A newer code replaces the older one. Requests count against
the mail limits (``EMAIL_IP_RATE_LIMIT`` per client, ``EMAIL_RATE_LIMIT`` per address) and
sign-ins against the login limits (``LOGIN_IP_RATE_LIMIT``, ``LOGIN_RATE_LIMIT`` per address),
so guessing is bounded by 5 tries per code and by both limits. A code proves the mailbox:
the address is marked verified. The session it opens is aal1 (``amr`` ``otp``); an account
with MFA answers the login's second step instead.

Methods are synchronous and run in a worker thread, like every use case.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Protocol

from auth import errors
from auth.emails import canonical_email
from auth.guards import login_key, throttle, throttle_mail
from auth.ports import Assurance, ClientInfo, UnitOfWork, UserRecord
from auth.service import AuthResult, AuthService, MfaChallenge
from auth.toolkit import AuthToolkit

SIGN_IN_CODE_SECONDS = 600
SIGN_IN_CODE_MAX_FAILURES = 5
SIGN_IN_CODE_DIGITS = 8
# RFC 8176: a one-time password (here delivered by mail); one factor, so aal1.
EMAIL_CODE = Assurance(aal=1, amr=("otp",))
CODE_INVALID = "The code is not correct or has expired. Ask for a new one."


class SignInCodeRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def code_hash(self) -> str: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def failed_attempts(self) -> int: ...
    @property
    def used_at(self) -> datetime | None: ...


class SignInCodeRepository(Protocol):
    """Mailed sign-in codes, stored only as hashes: at most one row per user (a new code
    replaces the last), so the table needs no pruning."""

    def replace(
        self, *, user_id: str, email: str, code_hash: str, now: datetime, expires_at: datetime
    ) -> None:
        """Store a new code for the user, deleting any earlier one."""
        ...

    def live(self, user_id: str, *, now: datetime) -> SignInCodeRecord | None:
        """The user's unspent, unexpired code, if any."""
        ...

    def count_failure(self, code_id: str) -> None:
        """Add one wrong try to the code's count (committed by the caller)."""
        ...

    def claim(self, code_id: str, *, now: datetime, max_failures: int) -> bool:
        """Spend the code if unspent and under ``max_failures``; whether this call did."""
        ...

    def drop(self, *, user_id: str) -> None:
        """Delete the user's code, if any (committed by the caller)."""
        ...


def new_code() -> str:
    """Eight digits from the OS CSPRNG (leading zeros kept)."""
    return f"{secrets.randbelow(10**SIGN_IN_CODE_DIGITS):0{SIGN_IN_CODE_DIGITS}d}"


def code_hash(key: bytes, user_id: str, code: str) -> str:
    """What is stored: an HMAC of the code bound to its user, so that equal codes of two users
    differ and a database dump alone cannot be searched for the code (10^8 candidates)."""
    return hmac.new(key, f"{user_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _typed(code: str) -> str:
    # People copy codes with spaces or dashes ("1234 5678"): only the digits count.
    return "".join(ch for ch in code if ch.isdigit())[: SIGN_IN_CODE_DIGITS + 1]


class SignInCodeService:
    """The sign-in code use cases, bound to one unit of work."""

    def __init__(self, toolkit: AuthToolkit, uow: UnitOfWork) -> None:
        self.toolkit = toolkit
        self.settings = toolkit.settings
        self.uow = uow
        self.codes = uow.repository(SignInCodeRepository)
        # A key of its own, derived from JWT_SECRET: rotating that secret voids live codes.
        self._key = hmac.new(
            toolkit.settings.jwt_secret.reveal().encode(),
            b"authgraph sign-in codes",
            hashlib.sha256,
        ).digest()

    def _require_enabled(self) -> None:
        if not self.settings.sign_in_codes_enabled:
            raise errors.MethodNotEnabled

    def accept_request(self, email: str, client: ClientInfo) -> str:
        """Validate and count a code request; return the canonical address to pass on.

        Touches no account: the answer so far is the same whoever owns the address (the
        lookup runs after the answer, see :meth:`send_code`).
        """
        self._require_enabled()
        address = canonical_email(email)
        throttle_mail(self.toolkit, address, client)
        return address

    def send_code(self, address: str) -> bool:
        """Mail a new code to ``address`` if it has an account; whether one was queued."""
        user = self.uow.users.get_by_email(address)
        if user is None or user.disabled_at is not None:
            # A disabled account is sent no code, as it is sent no reset link.
            self.uow.rollback()
            return False
        code = new_code()
        now = self.toolkit.clock()
        self.codes.replace(
            user_id=user.id,
            email=address,
            code_hash=code_hash(self._key, user.id, code),
            now=now,
            expires_at=now + timedelta(seconds=SIGN_IN_CODE_SECONDS),
        )
        mail = self.toolkit.mail.sign_in_code(address, code, valid_seconds=SIGN_IN_CODE_SECONDS)
        self.uow.outbox.enqueue(mail, now=now)
        self.uow.commit()
        return True

    def sign_in(self, email: str, code: str, client: ClientInfo) -> AuthResult | MfaChallenge:
        """A session for a good code (aal1), or the second step for an account with MFA.

        Unknown addresses, wrong, spent, expired and exhausted codes all answer
        :class:`~auth.errors.InvalidCredentials` with one message.
        """
        self._require_enabled()
        account = login_key(email)
        throttle(
            self.toolkit,
            (self.settings.login_ip_rate_limit, "login-ip", client.ip_address),
            (self.settings.login_rate_limit, "login", account),
        )
        user = self._user(email)
        now = self.toolkit.clock()
        record = self.codes.live(user.id, now=now) if user is not None else None
        typed = _typed(code)
        if user is None or record is None or record.failed_attempts >= SIGN_IN_CODE_MAX_FAILURES:
            raise errors.InvalidCredentials(CODE_INVALID)
        if not hmac.compare_digest(record.code_hash, code_hash(self._key, user.id, typed)):
            self.codes.count_failure(record.id)
            self.uow.commit()
            raise errors.InvalidCredentials(CODE_INVALID)
        if not self.codes.claim(
            record.id, now=now, max_failures=SIGN_IN_CODE_MAX_FAILURES
        ) or not self.uow.users.hold_credentials(user):
            # Spent by a concurrent request, or the account changed meanwhile.
            self.uow.rollback()
            raise errors.InvalidCredentials(CODE_INVALID)
        # The code reached this inbox: it proves the address as a verification link would.
        self.uow.users.mark_email_verified(user.id, email=record.email)
        result = AuthService(self.toolkit, self.uow).finish_sign_in(
            user, client, assurance=EMAIL_CODE
        )
        self.toolkit.limiter.clear(self.settings.login_rate_limit, "login", account)
        return result

    def _user(self, email: str) -> UserRecord | None:
        try:
            address = canonical_email(email)
        except errors.ValidationFailed:
            return None
        return self.uow.users.get_by_email(address)
