"""An in-memory implementation of :mod:`auth.ports`: the domain's seam, with no database.

Each collection is a dict of frozen records; a unit of work keeps a copy of every dict
taken at the last commit, so ``rollback`` really undoes what was not committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from auth.errors import EmailTaken
from auth.events import NewSecurityEvent
from auth.oauth import IdentityTaken
from auth.ports import (
    PASSWORD_ONLY,
    Assurance,
    ClientInfo,
    EmailTokenPurpose,
    IdentityRepository,
    MfaRepository,
    NewOAuthState,
    OutgoingMail,
    OutgoingWebhook,
    PasskeyRepository,
)

R = TypeVar("R")


def _id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    password_hash: str | None
    created_at: datetime
    email_verified: bool = False
    display_name: str | None = None
    credentials_version: int = 0
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    last_sign_in_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user_id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None = None
    ip_address: str | None = None
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    aal: int = 1
    amr: str = "pwd"
    authenticated_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class MfaFactor:
    id: str
    user_id: str
    kind: str
    secret_sealed: str
    created_at: datetime
    confirmed_at: datetime | None = None
    last_used_at: datetime | None = None
    last_step: int | None = None


@dataclass(frozen=True, slots=True)
class RecoveryCode:
    id: str
    user_id: str
    code_hash: str
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MfaChallenge:
    id: str
    user_id: str
    token_hash: str
    credentials_version: int
    expires_at: datetime
    failed_attempts: int = 0
    used_at: datetime | None = None
    first_factor: str = "pwd"


@dataclass(frozen=True, slots=True)
class Identity:
    id: str
    user_id: str
    provider: str
    subject: str
    email: str | None
    linked_at: datetime
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OAuthState:
    id: str
    state_hash: str
    provider: str
    redirect_uri: str
    browser_hash: str
    intent: str
    user_id: str | None
    nonce: str
    code_verifier_sealed: str
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    id: str
    session_id: str
    token_hash: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EmailToken:
    id: str
    user_id: str
    purpose: str
    token_hash: str
    email: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Mail:
    mail: OutgoingMail
    created_at: datetime
    sent_at: datetime | None = None
    failed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    id: str
    user_id: str
    kind: str
    occurred_at: datetime
    session_id: str | None
    ip_address: str | None
    device: str | None
    detail: str | None
    actor_id: str | None


class Tables:
    """The rows; one instance is the whole database."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.sessions: dict[str, Session] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.email_tokens: dict[str, EmailToken] = {}
        self.outbox: dict[str, Mail] = {}
        self.mfa_factors: dict[str, MfaFactor] = {}
        self.recovery_codes: dict[str, RecoveryCode] = {}
        self.mfa_challenges: dict[str, MfaChallenge] = {}
        self.identities: dict[str, Identity] = {}
        self.oauth_states: dict[str, OAuthState] = {}
        self.security_events: dict[str, SecurityEvent] = {}
        self.webhooks: dict[str, OutgoingWebhook] = {}
        # (user_id, device_hash) -> last seen
        self.known_devices: dict[tuple[str, str], datetime] = {}


class MemoryUsers:
    def __init__(self, tables: Tables) -> None:
        self.t = tables

    def get(self, user_id: str) -> User | None:
        return self.t.users.get(user_id)

    def get_by_email(self, email: str) -> User | None:
        return next((u for u in self.t.users.values() if u.email == email), None)

    def add(self, *, email: str, password_hash: str | None, now: datetime) -> User:
        if self.get_by_email(email) is not None:
            raise EmailTaken
        user = User(id=_id(), email=email, password_hash=password_hash, created_at=now)
        self.t.users[user.id] = user
        return user

    def set_password_hash(self, user: Any, password_hash: str) -> None:
        self._update(user.id, password_hash=password_hash)

    def hold_credentials(self, user: Any) -> bool:
        # One thread per unit of work here: there is no lock to take, only the version.
        return self._current(user)

    def bump_credentials(self, user: Any) -> bool:
        if not self._current(user):
            return False
        self._update(user.id, credentials_version=user.credentials_version + 1)
        return True

    def is_disabled(self, user_id: str) -> bool:
        stored = self.t.users.get(user_id)
        return stored is not None and stored.disabled_at is not None

    def record_sign_in(self, user_id: str, *, now: datetime) -> None:
        self._update(user_id, last_sign_in_at=now)

    def _current(self, user: Any) -> bool:
        stored = self.t.users.get(user.id)
        return stored is not None and stored.credentials_version == user.credentials_version

    def mark_email_verified(self, user_id: str, *, email: str) -> bool:
        user = self.t.users.get(user_id)
        if user is None or user.email != email:
            return False
        self._update(user_id, email_verified=True)
        return True

    def set_email(self, user_id: str, email: str) -> None:
        if self.get_by_email(email) is not None:
            raise EmailTaken
        self._update(user_id, email=email, email_verified=True)

    def set_display_name(self, user_id: str, display_name: str | None) -> None:
        self._update(user_id, display_name=display_name)

    def delete(self, user_id: str) -> bool:
        if self.t.users.pop(user_id, None) is None:
            return False
        # What ON DELETE CASCADE does in the database.
        sessions = {s.id for s in self.t.sessions.values() if s.user_id == user_id}
        self.t.sessions = {k: v for k, v in self.t.sessions.items() if k not in sessions}
        self.t.refresh_tokens = {
            k: v for k, v in self.t.refresh_tokens.items() if v.session_id not in sessions
        }
        self.t.email_tokens = {k: v for k, v in self.t.email_tokens.items() if v.user_id != user_id}
        self.t.known_devices = {k: v for k, v in self.t.known_devices.items() if k[0] != user_id}
        return True

    def _update(self, user_id: str, **values: Any) -> None:
        if user_id in self.t.users:
            self.t.users[user_id] = replace(self.t.users[user_id], **values)


class MemorySessions:
    def __init__(self, tables: Tables) -> None:
        self.t = tables

    def open(
        self,
        *,
        user_id: str,
        now: datetime,
        expires_at: datetime,
        client: ClientInfo,
        assurance: Assurance = PASSWORD_ONLY,
    ) -> Session:
        session = Session(
            id=_id(),
            user_id=user_id,
            created_at=now,
            last_used_at=now,
            expires_at=expires_at,
            user_agent=client.user_agent,
            ip_address=client.ip_address,
            aal=assurance.aal,
            amr=" ".join(assurance.amr),
            authenticated_at=now,
        )
        self.t.sessions[session.id] = session
        return session

    def set_assurance(self, session: Any, *, assurance: Assurance, now: datetime) -> Session:
        row = replace(
            self.t.sessions[session.id],
            aal=assurance.aal,
            amr=" ".join(assurance.amr),
            authenticated_at=now,
        )
        self.t.sessions[session.id] = row
        return row

    def find_active(
        self, *, session_id: str, user_id: str, now: datetime
    ) -> tuple[User, Session] | None:
        session = self.t.sessions.get(session_id)
        user = self.t.users.get(user_id)
        if session is None or user is None or session.user_id != user_id:
            return None
        if session.revoked_at is not None or session.expires_at <= now:
            return None
        if user.disabled_at is not None:
            return None
        return user, session

    def list_active(self, *, user_id: str, now: datetime) -> Sequence[Session]:
        live = [
            s
            for s in self.t.sessions.values()
            if s.user_id == user_id and s.revoked_at is None and s.expires_at > now
        ]
        return sorted(live, key=lambda s: s.last_used_at, reverse=True)

    def touch(
        self, session: Any, *, now: datetime, expires_at: datetime, client: ClientInfo
    ) -> None:
        row = self.t.sessions[session.id]
        self.t.sessions[session.id] = replace(
            row,
            last_used_at=now,
            expires_at=expires_at,
            user_agent=client.user_agent or row.user_agent,
            ip_address=client.ip_address or row.ip_address,
        )

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
        count = 0
        for session in list(self.t.sessions.values()):
            if session.user_id != user_id or session.revoked_at is not None:
                continue
            if (only is not None and session.id != only) or session.id == keep:
                continue
            if below_aal is not None and session.aal >= below_aal:
                continue
            self.t.sessions[session.id] = replace(session, revoked_at=now, revoked_reason=reason)
            count += 1
        return count

    def prune(self, *, now: datetime, revoked_before: datetime) -> int:
        gone = {
            s.id
            for s in self.t.sessions.values()
            if s.expires_at <= now or (s.revoked_at is not None and s.revoked_at <= revoked_before)
        }
        self.t.sessions = {k: v for k, v in self.t.sessions.items() if k not in gone}
        self.t.refresh_tokens = {
            k: v for k, v in self.t.refresh_tokens.items() if v.session_id not in gone
        }
        return len(gone)

    def add_refresh_token(
        self, *, session_id: str, token_hash: str, now: datetime, expires_at: datetime
    ) -> RefreshToken:
        token = RefreshToken(_id(), session_id, token_hash, now, expires_at)
        self.t.refresh_tokens[token.id] = token
        return token

    def find_refresh_token(self, token_hash: str) -> tuple[RefreshToken, Session] | None:
        for token in self.t.refresh_tokens.values():
            if token.token_hash == token_hash:
                return token, self.t.sessions[token.session_id]
        return None

    def claim_refresh_token(self, token: Any, *, now: datetime) -> bool:
        row = self.t.refresh_tokens.get(token.id)
        if row is None or row.used_at is not None:
            return False
        self.t.refresh_tokens[token.id] = replace(row, used_at=now)
        return True

    def drop_refresh_tokens(self, *, session_id: str) -> None:
        self.t.refresh_tokens = {
            k: v for k, v in self.t.refresh_tokens.items() if v.session_id != session_id
        }


class MemoryEmailTokens:
    def __init__(self, tables: Tables) -> None:
        self.t = tables

    def add(
        self,
        *,
        user_id: str,
        purpose: EmailTokenPurpose,
        token_hash: str,
        email: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        token = EmailToken(_id(), user_id, purpose, token_hash, email, now, expires_at)
        self.t.email_tokens[token.id] = token

    def find(self, token_hash: str) -> EmailToken | None:
        return next((t for t in self.t.email_tokens.values() if t.token_hash == token_hash), None)

    def claim(self, token: Any, *, now: datetime) -> bool:
        row = self.t.email_tokens.get(token.id)
        if row is None or row.used_at is not None:
            return False
        self.t.email_tokens[token.id] = replace(row, used_at=now)
        return True

    def drop(self, *, user_id: str, purpose: EmailTokenPurpose) -> None:
        self.t.email_tokens = {
            k: v
            for k, v in self.t.email_tokens.items()
            if not (v.user_id == user_id and v.purpose == purpose)
        }

    def prune(self, *, now: datetime) -> int:
        before = len(self.t.email_tokens)
        self.t.email_tokens = {
            k: v for k, v in self.t.email_tokens.items() if v.used_at is None and v.expires_at > now
        }
        return before - len(self.t.email_tokens)


class MemoryOutbox:
    def __init__(self, tables: Tables) -> None:
        self.t = tables

    def enqueue(self, mail: OutgoingMail, *, now: datetime) -> None:
        self.t.outbox[_id()] = Mail(mail, now)

    def enqueue_webhook(self, webhook: OutgoingWebhook, *, now: datetime) -> None:
        self.t.webhooks[webhook.id] = webhook

    def prune(self, *, sent_before: datetime, failed_before: datetime) -> int:
        before = len(self.t.outbox)
        self.t.outbox = {
            k: v
            for k, v in self.t.outbox.items()
            if not (
                (v.sent_at is not None and v.sent_at < sent_before)
                or (v.failed_at is not None and v.failed_at < failed_before)
            )
        }
        return before - len(self.t.outbox)


class MemoryMfa:
    def __init__(self, tables: Tables) -> None:
        self.t = tables

    def add_factor(self, *, user_id: str, kind: str, secret_sealed: str, now: datetime) -> Any:
        factor = MfaFactor(_id(), user_id, kind, secret_sealed, now)
        self.t.mfa_factors[factor.id] = factor
        return factor

    def drop_pending(self, *, user_id: str) -> None:
        self.t.mfa_factors = {
            k: f
            for k, f in self.t.mfa_factors.items()
            if not (f.user_id == user_id and f.confirmed_at is None)
        }

    def factors(self, user_id: str) -> Sequence[Any]:
        found = [
            f
            for f in self.t.mfa_factors.values()
            if f.user_id == user_id and f.confirmed_at is not None
        ]
        return sorted(found, key=lambda f: f.created_at)

    def get_factor(self, factor_id: str, *, user_id: str) -> Any:
        factor = self.t.mfa_factors.get(factor_id)
        return factor if factor is not None and factor.user_id == user_id else None

    def claim_step(self, factor: Any, *, step: int, now: datetime) -> bool:
        row = self.t.mfa_factors[factor.id]
        if row.last_step is not None and row.last_step >= step:
            return False
        self.t.mfa_factors[factor.id] = replace(row, last_step=step, last_used_at=now)
        return True

    def all_factors(self) -> Sequence[Any]:
        return sorted(self.t.mfa_factors.values(), key=lambda f: f.created_at)

    def replace_secret(self, factor_id: str, *, old: str, new: str) -> bool:
        row = self.t.mfa_factors.get(factor_id)
        if row is None or row.secret_sealed != old:
            return False
        self.t.mfa_factors[factor_id] = replace(row, secret_sealed=new)
        return True

    def confirm_factor(self, factor_id: str, *, now: datetime) -> bool:
        row = self.t.mfa_factors.get(factor_id)
        if row is None or row.confirmed_at is not None:
            return False
        self.t.mfa_factors[factor_id] = replace(row, confirmed_at=now)
        return True

    def delete_factor(self, factor_id: str, *, user_id: str) -> bool:
        if self.get_factor(factor_id, user_id=user_id) is None:
            return False
        del self.t.mfa_factors[factor_id]
        return True

    def replace_recovery_codes(
        self, *, user_id: str, code_hashes: Sequence[str], now: datetime
    ) -> None:
        kept = {k: c for k, c in self.t.recovery_codes.items() if c.user_id != user_id}
        for code_hash in code_hashes:
            code = RecoveryCode(_id(), user_id, code_hash)
            kept[code.id] = code
        self.t.recovery_codes = kept

    def claim_recovery_code(self, *, user_id: str, code_hash: str, now: datetime) -> bool:
        for code in self.t.recovery_codes.values():
            if code.user_id == user_id and code.code_hash == code_hash and code.used_at is None:
                self.t.recovery_codes[code.id] = replace(code, used_at=now)
                return True
        return False

    def recovery_codes_left(self, user_id: str) -> int:
        return sum(
            1 for c in self.t.recovery_codes.values() if c.user_id == user_id and c.used_at is None
        )

    def add_challenge(
        self,
        *,
        user_id: str,
        token_hash: str,
        credentials_version: int,
        now: datetime,
        expires_at: datetime,
        first_factor: str = "pwd",
    ) -> None:
        challenge = MfaChallenge(
            _id(), user_id, token_hash, credentials_version, expires_at, first_factor=first_factor
        )
        self.t.mfa_challenges[challenge.id] = challenge

    def find_challenge(self, token_hash: str) -> Any:
        return next((c for c in self.t.mfa_challenges.values() if c.token_hash == token_hash), None)

    def count_failure(self, challenge_id: str) -> None:
        row = self.t.mfa_challenges[challenge_id]
        self.t.mfa_challenges[challenge_id] = replace(row, failed_attempts=row.failed_attempts + 1)

    def claim_challenge(self, challenge_id: str, *, now: datetime, max_failures: int) -> bool:
        row = self.t.mfa_challenges.get(challenge_id)
        if row is None or row.used_at is not None or row.failed_attempts >= max_failures:
            return False
        self.t.mfa_challenges[challenge_id] = replace(row, used_at=now)
        return True

    def prune_challenges(self, *, now: datetime) -> int:
        before = len(self.t.mfa_challenges)
        self.t.mfa_challenges = {
            k: c
            for k, c in self.t.mfa_challenges.items()
            if c.expires_at > now and c.used_at is None
        }
        return before - len(self.t.mfa_challenges)


class MemoryPasskeys:
    """The reads of :class:`auth.ports.PasskeyRepository` that the password and MFA use
    cases make (how many passkeys a user has): none are stored here. Passkey ceremonies
    themselves are tested over SQL and HTTP only (tests/graph/test_passkeys.py)."""

    def for_user(self, user_id: str) -> list[Any]:
        return []

    def count(self, user_id: str) -> int:
        return 0

    def prune_ceremonies(self, *, now: datetime) -> int:
        return 0


class MemoryIdentities:
    """:class:`auth.oauth.IdentityRepository` in memory."""

    def __init__(self, tables: Tables) -> None:
        self.t = tables

    def find(self, *, provider: str, subject: str) -> Identity | None:
        return next(
            (
                i
                for i in self.t.identities.values()
                if i.provider == provider and i.subject == subject
            ),
            None,
        )

    def for_user(self, user_id: str) -> list[Identity]:
        mine = [i for i in self.t.identities.values() if i.user_id == user_id]
        return sorted(mine, key=lambda i: i.linked_at)

    def add(
        self, *, user_id: str, provider: str, subject: str, email: str | None, now: datetime
    ) -> Identity:
        if self.find(provider=provider, subject=subject) is not None:
            raise IdentityTaken
        identity = Identity(_id(), user_id, provider, subject, email, now)
        self.t.identities[identity.id] = identity
        return identity

    def touch(self, identity_id: str, *, email: str | None, now: datetime) -> None:
        row = self.t.identities[identity_id]
        self.t.identities[identity_id] = replace(row, email=email, last_used_at=now)

    def delete(self, identity_id: str, *, user_id: str) -> bool:
        row = self.t.identities.get(identity_id)
        if row is None or row.user_id != user_id:
            return False
        del self.t.identities[identity_id]
        return True

    def add_state(self, state: NewOAuthState, *, now: datetime) -> None:
        row = OAuthState(
            _id(),
            state.state_hash,
            state.provider,
            state.redirect_uri,
            state.browser_hash,
            state.intent,
            state.user_id,
            state.nonce,
            state.code_verifier_sealed,
            state.expires_at,
        )
        self.t.oauth_states[row.id] = row

    def find_state(self, state_hash: str) -> OAuthState | None:
        return next((s for s in self.t.oauth_states.values() if s.state_hash == state_hash), None)

    def claim_state(self, state_id: str, *, now: datetime) -> bool:
        row = self.t.oauth_states.get(state_id)
        if row is None or row.used_at is not None:
            return False
        self.t.oauth_states[state_id] = replace(row, used_at=now)
        return True

    def prune_states(self, *, now: datetime) -> int:
        before = len(self.t.oauth_states)
        self.t.oauth_states = {
            k: s for k, s in self.t.oauth_states.items() if s.expires_at > now and s.used_at is None
        }
        return before - len(self.t.oauth_states)


class MemoryEvents:
    def __init__(self, tables: Tables) -> None:
        self.t = tables

    def add(self, event: NewSecurityEvent) -> SecurityEvent:
        row = SecurityEvent(
            id=_id(),
            user_id=event.user_id,
            kind=event.kind.value,
            occurred_at=event.occurred_at,
            session_id=event.session_id,
            ip_address=event.ip_address,
            device=event.device,
            detail=event.detail,
            actor_id=event.actor_id,
        )
        self.t.security_events[row.id] = row
        return row

    def page(
        self, *, user_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> list[SecurityEvent]:
        rows = sorted(
            (e for e in self.t.security_events.values() if e.user_id == user_id),
            key=lambda e: (e.occurred_at, e.id),
            reverse=True,
        )
        if after is not None:
            rows = [e for e in rows if (e.occurred_at, e.id) < after]
        return rows[:limit]

    def forget_client(self, *, user_id: str) -> int:
        mine = [e for e in self.t.security_events.values() if e.user_id == user_id]
        for e in mine:
            self.t.security_events[e.id] = replace(e, ip_address=None, device=None)
        return len(mine)

    def remember_device(self, *, user_id: str, device_hash: str, now: datetime) -> bool:
        new = (user_id, device_hash) not in self.t.known_devices
        self.t.known_devices[(user_id, device_hash)] = now
        return new

    def knows_devices(self, user_id: str) -> bool:
        return any(u == user_id for u, _ in self.t.known_devices)

    def prune(self, *, before: datetime) -> int:
        old = [k for k, e in self.t.security_events.items() if e.occurred_at < before]
        for k in old:
            del self.t.security_events[k]
        return len(old)


class MemoryUnitOfWork:
    """:class:`auth.ports.UnitOfWork` over :class:`Tables`, with a real rollback."""

    def __init__(self, tables: Tables | None = None) -> None:
        self.tables = tables or Tables()
        self.users = MemoryUsers(self.tables)
        self.sessions = MemorySessions(self.tables)
        self.email_tokens = MemoryEmailTokens(self.tables)
        self.outbox = MemoryOutbox(self.tables)
        self._repositories: dict[type[Any], Any] = {
            MfaRepository: MemoryMfa(self.tables),
            PasskeyRepository: MemoryPasskeys(),
            IdentityRepository: MemoryIdentities(self.tables),
        }
        self.events = MemoryEvents(self.tables)
        self.commits = 0
        self._committed = self._snapshot()

    def repository(self, port: type[R]) -> R:
        return cast(R, self._repositories[port])

    def commit(self) -> None:
        self.commits += 1
        self._committed = self._snapshot()

    def rollback(self) -> None:
        for name, rows in self._committed.items():
            setattr(self.tables, name, dict(rows))

    def _snapshot(self) -> dict[str, dict[str, Any]]:
        # Rows are frozen: copying each table's dict is a full copy.
        return {name: dict(rows) for name, rows in vars(self.tables).items()}

    def ping(self) -> bool:
        return True

    def probe_write(self, *, now: datetime) -> bool:
        return True
