"""Password hashing and the password policy (NIST SP 800-63B, OWASP ASVS V6).

Hashing uses passlib's ``bcrypt_sha256``: the whole password is HMAC-SHA256'd before
bcrypt, so a password longer than bcrypt's 72-byte limit is neither truncated nor refused.
Plain ``bcrypt`` hashes (imported from elsewhere) still verify and are upgraded on the next
login. Every call here is CPU-bound and slow on purpose: callers run it off the event loop,
and a hasher given a :class:`~auth.hashing.HashLane` runs each one on the lane's threads.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from typing import TypeVar

from passlib.context import CryptContext

from auth.errors import ValidationFailed
from auth.hashing import HashLane

T = TypeVar("T")

MIN_LENGTH = 8
# NIST asks that at least 64 be allowed; the cap only bounds the work a request can cause.
MAX_LENGTH = 256


def normalize(password: str) -> str:
    """NFKC-normalize, so that the same password typed on two keyboards hashes alike."""
    return unicodedata.normalize("NFKC", password)


class PasswordHasher:
    """Hashes and verifies passwords through one passlib ``CryptContext``.

    With a ``lane``, every hash and verification (the dummy one too) runs on its threads;
    without one, in the caller's thread (the seeding and timing scripts of ``bench/``).
    """

    def __init__(self, rounds: int, lane: HashLane | None = None) -> None:
        self.rounds = rounds
        self.lane = lane
        self._context = CryptContext(
            schemes=["bcrypt_sha256", "bcrypt"],
            deprecated=["bcrypt"],
            bcrypt_sha256__rounds=rounds,
            bcrypt__rounds=rounds,
        )

    def hash(self, password: str) -> str:
        return self._on_lane(lambda: self._context.hash(normalize(password)))

    def verify(self, password: str, stored_hash: str) -> tuple[bool, str | None]:
        """Check ``password``; on success also return a new hash if the stored one is outdated."""
        return self._on_lane(lambda: self._verify(password, stored_hash))

    def dummy_verify(self) -> None:
        """Spend one verification's time, so unknown accounts answer as slowly as known ones."""
        self._on_lane(self._context.dummy_verify)

    def warm(self) -> None:
        """Build the dummy verification's hash now, in the caller's thread.

        For start-up: the first dummy verification builds its hash (one more hash), and a
        server should not wait for the lane's lower-priority threads to be ready.
        """
        self._context.dummy_verify()

    def _on_lane(self, fn: Callable[[], T]) -> T:
        return fn() if self.lane is None else self.lane.run(fn)

    def _verify(self, password: str, stored_hash: str) -> tuple[bool, str | None]:
        if len(password) > MAX_LENGTH:
            # Never spend bcrypt time on input the policy would refuse anyway (the dummy
            # costs the same as a real one, and is already on the lane's thread).
            self._context.dummy_verify()
            return False, None
        try:
            ok, new_hash = self._context.verify_and_update(normalize(password), stored_hash)
        except ValueError:
            # An unrecognised or corrupt stored hash is a failed login, not a server error.
            return False, None
        return bool(ok), new_hash


@functools.cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships a list of the 30,000 most common passwords from real breaches.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.casefold() for p in FREQUENCY_LISTS["passwords"])


def common_password_count() -> int:
    """How many passwords the common-password list holds."""
    return len(_common_passwords())


def check_password_policy(password: str, *, email: str, field: str) -> None:
    """Raise :class:`ValidationFailed` for ``field`` if ``password`` breaks the policy.

    No composition rules (ASVS 6.2.5): length, the common-password list, and the email.
    """
    length = len(normalize(password))
    if length < MIN_LENGTH:
        raise ValidationFailed(field, f"Password must be at least {MIN_LENGTH} characters long.")
    if length > MAX_LENGTH:
        raise ValidationFailed(field, f"Password must be at most {MAX_LENGTH} characters long.")
    folded = normalize(password).casefold()
    if folded in _common_passwords():
        raise ValidationFailed(
            field, "This password is too common: it appears in lists of breached passwords."
        )
    if folded == email.casefold() or folded == email.split("@", 1)[0].casefold():
        raise ValidationFailed(field, "Password must not be your email address.")
