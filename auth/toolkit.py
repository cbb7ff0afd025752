"""The process-wide parts every use case shares: hasher, token codec, mail, limiter, clock.

Also the box that seals TOTP secrets (``MFA_ENCRYPTION_KEY``, opening with
``MFA_ENCRYPTION_PREVIOUS_KEYS`` too).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import UTC, datetime

from auth.hashing import HashLane
from auth.keys import KeyRing, KeyRingConfig, MemorySigningKeyStore
from auth.messages import MailComposer
from auth.oauth_client import ProviderRegistry
from auth.passwords import PasswordHasher
from auth.ports import SigningKeyStore
from auth.ratelimit import RateLimiter
from auth.settings import AuthSettings
from auth.tokens import LEEWAY_SECONDS, AccessTokenCodec, csrf_token
from auth.totp import SecretBox

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class AuthToolkit:
    """The process-wide parts: hash lane and hasher, token codec, mail, rate limiter, settings.

    The limiter's counts live in ``RATE_LIMIT_STORAGE`` (this process's memory by default).
    """

    def __init__(
        self,
        settings: AuthSettings,
        clock: Clock = utcnow,
        limiter: RateLimiter | None = None,
        key_store: SigningKeyStore | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.limiter = limiter or RateLimiter(
            settings.rate_limit_storage,
            key_prefix=settings.rate_limit_key_prefix,
            timeout_seconds=settings.rate_limit_timeout_seconds,
        )
        # Every hash runs on the lane's threads; callers that will hash take a ticket first.
        self.hash_lane = HashLane(
            settings.hash_worker_count,
            settings.hash_queue_bound,
            niceness=settings.hash_niceness,
        )
        self.hasher = PasswordHasher(settings.bcrypt_rounds, self.hash_lane)
        # Without a database (the domain's tests), keys live in this process's memory.
        self.keys = KeyRing(key_ring_config(settings), key_store or MemorySigningKeyStore())
        if key_store is None:
            self.keys.ensure_current(clock())
        self.tokens = AccessTokenCodec(
            self.keys,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
        )
        self.mail = MailComposer(settings)
        # TOTP secrets and PKCE verifiers at rest: a key of their own, never JWT_SECRET.
        self.secret_box = SecretBox(
            settings.mfa_encryption_key.reveal(),
            tuple(k.reveal() for k in settings.mfa_encryption_previous_keys),
        )
        # The social sign-in providers (OAUTH_PROVIDERS); discovery happens on first need.
        self.oauth = ProviderRegistry(
            settings.oauth_providers, timeout_seconds=settings.oauth_timeout_seconds
        )

    def close(self) -> None:
        """Stop the hash lane's threads."""
        self.hash_lane.close()

    def csrf_token(self, session_id: str) -> str:
        return csrf_token(self.settings.jwt_secret.reveal(), session_id)

    def csrf_matches(self, session_id: str, presented: str) -> bool:
        """Whether ``presented`` is the session's CSRF token under the current or a previous key.

        Previous keys count so that rotating ``JWT_SECRET`` does not log out every cookie-mode
        client; the next refresh hands out the token under the current key.
        """
        keys = (self.settings.jwt_secret, *self.settings.jwt_previous_secrets)
        return any(
            hmac.compare_digest(presented, csrf_token(key.reveal(), session_id)) for key in keys
        )


def key_ring_config(settings: AuthSettings) -> KeyRingConfig:
    """What :class:`auth.keys.KeyRing` needs of the domain's settings."""
    kek = settings.key_encryption_key
    return KeyRingConfig(
        algorithm=settings.jwt_algorithm,
        secret=settings.jwt_secret.reveal(),
        previous_secrets=tuple(s.reveal() for s in settings.jwt_previous_secrets),
        key_encryption_key=kek.reveal() if kek is not None else None,
        previous_key_encryption_keys=tuple(
            k.reveal() for k in settings.key_encryption_previous_keys
        ),
        ttl_seconds=settings.access_token_ttl_seconds,
        leeway_seconds=LEEWAY_SECONDS,
        refresh_seconds=settings.key_refresh_seconds,
    )
