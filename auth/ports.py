"""The seams between the domain and persistence.

:mod:`db` implements these protocols; the domain only ever sees them. Records are
structural: any object with these attributes (an ORM row, a dataclass) will do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    # The trail's seam lives beside its use cases (auth/events.py), which import this module.
    from auth.events import SecurityEventRepository

LogoutScope = Literal["current", "others", "all"]
EmailTokenPurpose = Literal["verify_email", "reset_password", "change_email"]
R = TypeVar("R")


class UserRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def password_hash(self) -> str | None:
        """The password's hash; ``None`` for an account without a password."""
        ...

    @property
    def created_at(self) -> datetime: ...
    @property
    def email_verified(self) -> bool: ...
    @property
    def display_name(self) -> str | None: ...
    @property
    def credentials_version(self) -> int: ...
    @property
    def disabled_at(self) -> datetime | None: ...


class SessionRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def last_used_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def user_agent(self) -> str | None: ...
    @property
    def ip_address(self) -> str | None: ...
    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def revoked_reason(self) -> str | None: ...
    @property
    def aal(self) -> int: ...
    @property
    def amr(self) -> str: ...
    @property
    def authenticated_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Assurance:
    """How a session was authenticated: its level (1 or 2) and RFC 8176 methods."""

    aal: int = 1
    amr: tuple[str, ...] = ("pwd",)


PASSWORD_ONLY = Assurance()
WITH_SECOND_FACTOR = Assurance(aal=2, amr=("pwd", "otp"))


class RefreshTokenRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def session_id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def used_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Where a request came from, as recorded on the sessions it opens."""

    user_agent: str | None = None
    ip_address: str | None = None
    # The browser's long-lived device cookie (random; only its hash is stored): how a sign-in
    # from a new device is told from one from a known device. Never recorded in an event.
    device_token: str | None = field(default=None, repr=False)


class UserRepository(Protocol):
    def get(self, user_id: str) -> UserRecord | None: ...

    def get_by_email(self, email: str) -> UserRecord | None: ...

    def add(self, *, email: str, password_hash: str | None, now: datetime) -> UserRecord:
        """Insert a user (``password_hash=None``: without a password); raise
        :class:`auth.errors.EmailTaken` if the email is in use."""
        ...

    def set_password_hash(self, user: UserRecord, password_hash: str) -> None: ...

    def hold_credentials(self, user: UserRecord) -> bool:
        """Whether ``user.credentials_version`` is still current, locking the row if so.

        The lock lasts until the transaction ends: a credentials change waits for it, so
        a session opened in this transaction is one the change's revocation will see.
        """
        ...

    def is_disabled(self, user_id: str) -> bool:
        """Whether an administrator disabled the user, read afresh (not from a cached row).

        Sign-ins ask it after ``hold_credentials``: a disable committed meanwhile is seen.
        """
        ...

    def record_sign_in(self, user_id: str, *, now: datetime) -> None:
        """Remember ``now`` as the user's last sign-in (a session was opened)."""
        ...

    def bump_credentials(self, user: UserRecord) -> bool:
        """Advance the version if it is still ``user.credentials_version``; whether it was.

        Compare-and-set: of two changes made with the same proof, exactly one wins.
        """
        ...

    def mark_email_verified(self, user_id: str, *, email: str) -> bool:
        """Mark the user verified if ``email`` is still their address; whether it was."""
        ...

    def set_email(self, user_id: str, email: str) -> None:
        """Switch the address (and mark it verified); raise EmailTaken if it is in use."""
        ...

    def set_display_name(self, user_id: str, display_name: str | None) -> None: ...

    def delete(self, user_id: str) -> bool:
        """Delete the user; their sessions, refresh and email tokens go with them."""
        ...


class SessionRepository(Protocol):
    def open(
        self,
        *,
        user_id: str,
        now: datetime,
        expires_at: datetime,
        client: ClientInfo,
        assurance: Assurance = PASSWORD_ONLY,
    ) -> SessionRecord:
        """A new session, authenticated ``now`` at ``assurance``."""
        ...

    def set_assurance(
        self, session: SessionRecord, *, assurance: Assurance, now: datetime
    ) -> SessionRecord:
        """Record a fresh authentication of the session at ``assurance``; the updated record."""
        ...

    def find_active(
        self, *, session_id: str, user_id: str, now: datetime
    ) -> tuple[UserRecord, SessionRecord] | None:
        """The live session and its user, in one round trip; ``None`` if revoked or expired."""
        ...

    def list_active(self, *, user_id: str, now: datetime) -> Sequence[SessionRecord]: ...

    def touch(
        self, session: SessionRecord, *, now: datetime, expires_at: datetime, client: ClientInfo
    ) -> None: ...

    def revoke(
        self,
        *,
        user_id: str,
        now: datetime,
        reason: str,
        only: str | None = None,
        keep: str | None = None,
        below_aal: int | None = None,
    ) -> int:
        """Revoke the user's live sessions (just ``only``, or all but ``keep``); return how many.

        ``below_aal`` limits it to sessions authenticated at a lower level.
        """
        ...

    def prune(self, *, now: datetime, revoked_before: datetime) -> int:
        """Delete expired sessions and those revoked before ``revoked_before``."""
        ...

    def add_refresh_token(
        self, *, session_id: str, token_hash: str, now: datetime, expires_at: datetime
    ) -> RefreshTokenRecord: ...

    def find_refresh_token(
        self, token_hash: str
    ) -> tuple[RefreshTokenRecord, SessionRecord] | None: ...

    def claim_refresh_token(self, token: RefreshTokenRecord, *, now: datetime) -> bool:
        """Mark the token spent if it is not yet; ``False`` if another request spent it first."""
        ...

    def drop_refresh_tokens(self, *, session_id: str) -> None: ...


class LiveSessionReads(Protocol):
    """The session check's one read, awaited on the event loop without a thread (``db/``
    compiles it once and runs it on the driver: :mod:`db.session_check`)."""

    async def find_active(
        self, *, session_id: str, user_id: str, now: datetime
    ) -> tuple[UserRecord, SessionRecord] | None:
        """As :meth:`SessionRepository.find_active`; raises ``ServiceUnavailable`` when the
        database does not answer within its bound."""
        ...

    async def aclose(self) -> None:
        """Close what it holds open (on the loop that used it)."""
        ...


class MfaFactorRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def secret_sealed(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def confirmed_at(self) -> datetime | None: ...
    @property
    def last_used_at(self) -> datetime | None: ...
    @property
    def last_step(self) -> int | None: ...


class MfaChallengeRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def credentials_version(self) -> int: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def failed_attempts(self) -> int: ...
    @property
    def used_at(self) -> datetime | None: ...
    @property
    def first_factor(self) -> str:
        """RFC 8176 method of the sign-in's first step: "pwd", or "fed" (a provider)."""
        ...


class MfaRepository(Protocol):
    """Second factors, recovery codes (hashed) and login challenges (hashed)."""

    def add_factor(
        self, *, user_id: str, kind: str, secret_sealed: str, now: datetime
    ) -> MfaFactorRecord: ...

    def drop_pending(self, *, user_id: str) -> None:
        """Delete the user's unconfirmed enrollments."""
        ...

    def factors(self, user_id: str) -> Sequence[MfaFactorRecord]:
        """The user's confirmed factors, oldest first."""
        ...

    def get_factor(self, factor_id: str, *, user_id: str) -> MfaFactorRecord | None:
        """One of the user's factors, confirmed or pending; ``None`` for anyone else's."""
        ...

    def claim_step(self, factor: MfaFactorRecord, *, step: int, now: datetime) -> bool:
        """Store ``step`` as the last accepted one if it is later than the stored one.

        Compare-and-set: of two requests with one code exactly one wins, and an older code
        than the last accepted fails.
        """
        ...

    def confirm_factor(self, factor_id: str, *, now: datetime) -> bool:
        """Mark a pending factor confirmed; whether it was pending."""
        ...

    def all_factors(self) -> Sequence[MfaFactorRecord]:
        """Every factor of every user, confirmed or pending (``authgraph mfa reencrypt``)."""
        ...

    def replace_secret(self, factor_id: str, *, old: str, new: str) -> bool:
        """Compare-and-set: store ``new`` as the factor's sealed secret if it still holds
        ``old``; False when another writer changed it or the factor is gone."""
        ...

    def delete_factor(self, factor_id: str, *, user_id: str) -> bool: ...

    def replace_recovery_codes(
        self, *, user_id: str, code_hashes: Sequence[str], now: datetime
    ) -> None: ...

    def claim_recovery_code(self, *, user_id: str, code_hash: str, now: datetime) -> bool:
        """Spend an unused code of the user's; ``False`` if none matches or it was spent."""
        ...

    def recovery_codes_left(self, user_id: str) -> int: ...

    def add_challenge(
        self,
        *,
        user_id: str,
        token_hash: str,
        credentials_version: int,
        now: datetime,
        expires_at: datetime,
        first_factor: str = "pwd",
    ) -> None: ...

    def find_challenge(self, token_hash: str) -> MfaChallengeRecord | None: ...

    def count_failure(self, challenge_id: str) -> None:
        """Add one wrong code to the challenge's count (committed by the caller)."""
        ...

    def claim_challenge(self, challenge_id: str, *, now: datetime, max_failures: int) -> bool:
        """Spend the challenge if unspent and under ``max_failures``; whether this call did."""
        ...

    def prune_challenges(self, *, now: datetime) -> int:
        """Delete spent and expired challenges; return how many."""
        ...


class PasskeyRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def credential_id(self) -> str:
        """The credential's ID, base64url."""
        ...

    @property
    def public_key(self) -> str:
        """The COSE public key, base64url."""
        ...

    @property
    def sign_count(self) -> int: ...
    @property
    def transports(self) -> str:
        """Space-separated transports the browser reported (``internal hybrid``)."""
        ...

    @property
    def name(self) -> str: ...
    @property
    def backed_up(self) -> bool: ...
    @property
    def multi_device(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def last_used_at(self) -> datetime | None: ...
    @property
    def counter_regressions(self) -> int: ...


class PasskeyCeremonyRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str:
        """``registration`` or ``authentication``."""
        ...

    @property
    def user_id(self) -> str | None: ...
    @property
    def email(self) -> str | None:
        """For an authentication started with an address: the address it is bound to."""
        ...

    @property
    def challenge(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def used_at(self) -> datetime | None: ...


class PasskeyRepository(Protocol):
    """WebAuthn credentials and their ceremonies (challenges kept on the server, single use).

    Declared here rather than beside its use case: the login's second step and the
    step-up rule (``auth.guards``) ask which users have passkeys too.
    """

    def add(
        self,
        *,
        user_id: str,
        credential_id: str,
        public_key: str,
        sign_count: int,
        transports: str,
        name: str,
        backed_up: bool,
        multi_device: bool,
        now: datetime,
    ) -> PasskeyRecord | None:
        """Store a credential; ``None`` if its credential ID is registered already."""
        ...

    def for_user(self, user_id: str) -> Sequence[PasskeyRecord]:
        """The user's passkeys, oldest first."""
        ...

    def count(self, user_id: str) -> int: ...

    def by_credential_id(self, credential_id: str) -> PasskeyRecord | None: ...

    def record_use(
        self, passkey: PasskeyRecord, *, sign_count: int, backed_up: bool, now: datetime
    ) -> bool:
        """Store the new counter if it is still the one read; whether it was (compare-and-set)."""
        ...

    def record_counter_regression(self, passkey_id: str, *, now: datetime) -> None: ...

    def rename(self, passkey_id: str, *, user_id: str, name: str) -> PasskeyRecord | None: ...

    def delete(self, passkey_id: str, *, user_id: str) -> bool: ...

    def add_ceremony(
        self,
        *,
        kind: str,
        user_id: str | None,
        email: str | None,
        challenge: str,
        name: str | None,
        now: datetime,
        expires_at: datetime,
    ) -> PasskeyCeremonyRecord: ...

    def claim_ceremony(
        self,
        *,
        kind: str,
        now: datetime,
        ceremony_id: str | None = None,
        challenge: str | None = None,
    ) -> PasskeyCeremonyRecord | None:
        """Spend the live ceremony of ``kind`` with this id (or challenge); ``None`` if there is
        none, it expired, or another request spent it first."""
        ...

    def prune_ceremonies(self, *, now: datetime) -> int:
        """Delete spent and expired ceremonies; return how many."""
        ...


class EmailTokenRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def used_at(self) -> datetime | None: ...


class EmailTokenRepository(Protocol):
    """Tokens sent by email, stored only as hashes and bound to a user, purpose and address."""

    def add(
        self,
        *,
        user_id: str,
        purpose: EmailTokenPurpose,
        token_hash: str,
        email: str,
        now: datetime,
        expires_at: datetime,
    ) -> None: ...

    def find(self, token_hash: str) -> EmailTokenRecord | None: ...

    def claim(self, token: EmailTokenRecord, *, now: datetime) -> bool:
        """Spend the token if it is not yet; ``False`` if another request spent it first."""
        ...

    def drop(self, *, user_id: str, purpose: EmailTokenPurpose) -> None:
        """Delete the user's tokens of one purpose (a newer one supersedes them)."""
        ...

    def prune(self, *, now: datetime) -> int:
        """Delete spent and expired tokens; return how many."""
        ...


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """One rendered message, ready for the outbox."""

    recipient: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class OutgoingWebhook:
    """One webhook delivery, ready for the outbox: the body is signed when it is sent."""

    # The ``webhook-id`` header: the same on every retry, for the receiver to deduplicate on.
    id: str
    # The payload's ``type`` ("security_event.signed_in").
    type: str
    # The JSON body, exactly as it will be POSTed and signed.
    body: str


class OutboxRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def body_text(self) -> str: ...
    @property
    def body_html(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...


class Outbox(Protocol):
    """Mail written in the same transaction as the change that caused it."""

    def enqueue(self, mail: OutgoingMail, *, now: datetime) -> None: ...

    def enqueue_webhook(self, webhook: OutgoingWebhook, *, now: datetime) -> None:
        """Queue a webhook delivery (the outbox's ``webhook`` channel)."""
        ...

    def prune(self, *, sent_before: datetime, failed_before: datetime) -> int:
        """Delete messages delivered before ``sent_before`` or given up before ``failed_before``."""
        ...


class OutboxStore(Protocol):
    """What the background sender needs: claim due messages and record how delivery went.

    Each method is its own short transaction, so several senders (one per server process)
    can share one outbox: a claimed message is leased to its claimer until ``lease_until``.
    """

    def claim_due(
        self, *, now: datetime, lease_until: datetime, claim_id: str, limit: int
    ) -> Sequence[OutboxRecord]: ...

    def extend_lease(
        self, message_ids: Sequence[str], *, claim_id: str, lease_until: datetime
    ) -> set[str]:
        """Move to ``lease_until`` the lease of those messages ``claim_id`` still holds.

        Return their ids: a message missing from the answer was finished, or taken over by
        another sender after the lease ran out, and must not be sent by this claimer.
        """
        ...

    def mark_sent(self, message_id: str, *, claim_id: str, now: datetime) -> None: ...

    def mark_retry(
        self, message_id: str, *, claim_id: str, next_attempt_at: datetime, error: str
    ) -> None: ...

    def mark_failed(self, message_id: str, *, claim_id: str, now: datetime, error: str) -> None: ...


class UnitOfWork(Protocol):
    """One transaction's worth of repositories."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def email_tokens(self) -> EmailTokenRepository: ...

    @property
    def outbox(self) -> Outbox: ...

    def repository(self, port: type[R]) -> R:
        """This transaction's implementation of a feature's repository ``port``.

        ``port`` is the Protocol a feature declares beside its use case (``auth/mfa.py``'s
        use cases ask for :class:`MfaRepository`); ``db/`` registers what implements it.
        """
        ...

    @property
    def events(self) -> SecurityEventRepository: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def ping(self) -> bool:
        """Whether the database answers."""
        ...

    def probe_write(self, *, now: datetime) -> bool:
        """Whether a committed write succeeds (not so on a full disk or a read-only database).

        Commits, so call it on a unit of work of its own, never inside a use case.
        """
        ...


# -- social sign-in (auth.oauth) ---------------------------------------------------------------


class IdentityRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def linked_at(self) -> datetime: ...
    @property
    def last_used_at(self) -> datetime | None: ...


class OAuthStateRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def redirect_uri(self) -> str: ...
    @property
    def browser_hash(self) -> str: ...
    @property
    def intent(self) -> str: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def nonce(self) -> str: ...
    @property
    def code_verifier_sealed(self) -> str: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def used_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class NewOAuthState:
    state_hash: str
    provider: str
    redirect_uri: str
    browser_hash: str
    intent: str  # "sign_in" or "link"
    user_id: str | None
    nonce: str
    code_verifier_sealed: str
    expires_at: datetime


class IdentityRepository(Protocol):
    """Linked identities, unique by (provider, subject), and the pending sign-in attempts."""

    def find(self, *, provider: str, subject: str) -> IdentityRecord | None: ...

    def for_user(self, user_id: str) -> Sequence[IdentityRecord]:
        """The user's identities, oldest first."""
        ...

    def add(
        self, *, user_id: str, provider: str, subject: str, email: str | None, now: datetime
    ) -> IdentityRecord:
        """Link an identity; raise ``auth.oauth.IdentityTaken`` if (provider, subject) is."""
        ...

    def touch(self, identity_id: str, *, email: str | None, now: datetime) -> None:
        """Record a sign-in with the identity, and the email the provider gave this time."""
        ...

    def delete(self, identity_id: str, *, user_id: str) -> bool: ...

    def add_state(self, state: NewOAuthState, *, now: datetime) -> None: ...

    def find_state(self, state_hash: str) -> OAuthStateRecord | None: ...

    def claim_state(self, state_id: str, *, now: datetime) -> bool:
        """Spend the attempt if unspent; whether this call did (compare-and-set)."""
        ...

    def prune_states(self, *, now: datetime) -> int:
        """Delete spent and expired attempts; return how many."""
        ...


# -- signing keys (auth.keys) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated key pair for the store: the private half already encrypted."""

    kid: str
    algorithm: str
    public_jwk: str
    private_key: str


class SigningKeyRecord(Protocol):
    @property
    def kid(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def public_jwk(self) -> str: ...
    @property
    def private_key(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def activated_at(self) -> datetime | None: ...
    @property
    def retired_at(self) -> datetime | None: ...
    @property
    def published_until(self) -> datetime | None: ...


class SigningKeyStore(Protocol):
    """Where signing keys live; each call is its own transaction.

    The store keeps at most one ``current`` key, whatever the concurrency: of two callers
    making a key current at once, one is told no.
    """

    def all(self) -> Sequence[SigningKeyRecord]:
        """Every key, oldest first."""
        ...

    def add(self, key: NewKey, *, state: str, now: datetime) -> bool:
        """Store a new key as ``standby`` or ``current``; False if a current one already exists."""
        ...

    def activate(self, kid: str, *, now: datetime, retired_until: datetime) -> bool:
        """Make standby ``kid`` current and retire the current key, published until
        ``retired_until``; False when ``kid`` is not standby (any more)."""
        ...

    def retire(self, kid: str, *, now: datetime) -> bool:
        """Retire a standby or retired ``kid`` and unpublish it now; False if it is current."""
        ...

    def replace_private_key(self, kid: str, *, old: str, new: str) -> bool:
        """Compare-and-set: store ``new`` as ``kid``'s encrypted private key if it still holds
        ``old``; False when another writer changed it (or there is no such key)."""
        ...
