"""The account and session use cases: signup, login, refresh, logout, password change.

Methods are synchronous and may hash passwords: the transport runs them in a worker
thread, never on the event loop. Each call works inside one :class:`UnitOfWork`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from auth import errors
from auth.emails import canonical_email
from auth.events import (
    PASSWORD,
    SIGNUP,
    EventKind,
    SecurityEvents,
    check_device,
    record_event,
    sign_in_method,
)
from auth.guards import (
    confirm_owner,
    login_key,
    mfa_methods,
    queue_verification,
    throttle,
)
from auth.passwords import check_password_policy
from auth.ports import (
    PASSWORD_ONLY,
    Assurance,
    ClientInfo,
    LiveSessionReads,
    LogoutScope,
    MfaRepository,
    PasskeyRepository,
    SessionRecord,
    UnitOfWork,
    UserRecord,
)
from auth.tokens import (
    AccessClaims,
    IssuedAccessToken,
    hash_opaque_token,
    new_opaque_token,
)
from auth.toolkit import AuthToolkit

# The revocation reason of the sessions an administrator's disable ended (auth/admin.py).
REVOKED_ACCOUNT_DISABLED = "account_disabled"
# An mfaToken's life, and how many wrong codes kill it.
MFA_CHALLENGE_SECONDS = 300
MFA_CHALLENGE_MAX_FAILURES = 5


@dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated caller: a user and the live session their token belongs to."""

    user: UserRecord
    session: SessionRecord


def _viewer(found: tuple[UserRecord, SessionRecord] | None) -> Viewer:
    if found is None:
        raise errors.InvalidAccessToken
    return Viewer(user=found[0], session=found[1])


async def authenticate_live(
    toolkit: AuthToolkit, sessions: LiveSessionReads, claims: AccessClaims
) -> Viewer:
    """:meth:`AuthService.authenticate` for a token whose ``claims`` were verified before
    (:meth:`auth.tokens.TokenService.known`), its session read without a thread."""
    found = await sessions.find_active(
        session_id=claims.session_id, user_id=claims.user_id, now=toolkit.clock()
    )
    return _viewer(found)


@dataclass(frozen=True, slots=True)
class PruneCounts:
    """How many rows one prune deleted, by kind."""

    sessions: int
    email_tokens: int
    mail: int
    mfa_challenges: int = 0
    passkey_ceremonies: int = 0
    oauth_states: int = 0
    security_events: int = 0


@dataclass(frozen=True, slots=True)
class MfaChallenge:
    """A login whose password was right but whose account needs a second factor."""

    # Opaque, single use, bound to the user; only its hash is stored.
    token: str
    expires_at: datetime
    # "totp", "recovery_code" while the user has unused recovery codes, "passkey" while
    # they have a passkey (and passkeys are on).
    methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuthResult:
    """What a successful signup, login, refresh or password change hands back."""

    user: UserRecord
    session: SessionRecord
    access: IssuedAccessToken
    refresh_token: str
    refresh_expires_at: datetime
    # What a cookie transport sends beside the refresh cookie: proof it asks back (HMAC).
    csrf_token: str


class AuthService:
    """The use cases, bound to one unit of work."""

    def __init__(self, toolkit: AuthToolkit, uow: UnitOfWork) -> None:
        self.toolkit = toolkit
        self.settings = toolkit.settings
        self.uow = uow

    # -- accounts ---------------------------------------------------------------------------

    def signup(self, email: str, password: str, client: ClientInfo) -> AuthResult:
        # Every attempt counts, refused ones too: EmailTaken answers are what enumeration wants.
        throttle(self.toolkit, (self.settings.signup_rate_limit, "signup-ip", client.ip_address))
        address = canonical_email(email)
        check_password_policy(password, email=address, field="password")
        if self.uow.users.get_by_email(address) is not None:
            raise errors.EmailTaken
        # End the read transaction first: no pooled connection is held during the hash.
        self.uow.rollback()
        password_hash = self.toolkit.hasher.hash(password)
        now = self.toolkit.clock()
        user = self.uow.users.add(email=address, password_hash=password_hash, now=now)
        # Queued in the signup's own transaction: the account never exists without its mail.
        queue_verification(self.toolkit, self.uow, user_id=user.id, email=address, now=now)
        return self._open_session(user, now, client, method=SIGNUP)

    def login(
        self,
        email: str,
        password: str,
        client: ClientInfo,
        *,
        client_id: str | None = None,
        second_step: bool = True,
    ) -> AuthResult | MfaChallenge:
        """Open a session for these credentials, within the login rate limits.

        For an account with MFA the correct password opens no session: the answer is an
        :class:`MfaChallenge` (``verifyMfa`` completes it), or, where the caller cannot take a
        second step (``second_step=False``: the OAuth2 password grant),
        :class:`errors.SecondFactorRequired`.

        Each attempt takes one hit per client IP (``LOGIN_IP_RATE_LIMIT``) and one per account
        (``LOGIN_RATE_LIMIT``), before the password is checked, so concurrent attempts (aliases
        in one document) cannot all slip under the limit. A success clears the account's
        count: what remains are failures since the last success, inside one window. The account
        key is the address as typed (canonicalised when valid), whether or not it exists, so a
        locked account answers exactly like an unknown one. ``client_id`` (the ``/token``
        endpoint's OAuth client) goes into the access token as RFC 9068's claim.
        """
        account = login_key(email)
        throttle(
            self.toolkit,
            (self.settings.login_ip_rate_limit, "login-ip", client.ip_address),
            (self.settings.login_rate_limit, "login", account),
        )
        user = self.verify_credentials(email, password, client)
        result: AuthResult | MfaChallenge
        if self.uow.repository(MfaRepository).factors(user.id):
            if not second_step:
                raise errors.SecondFactorRequired
            result = self.challenge(user)
        else:
            # verify_credentials holds the user's row: the session below is written while the
            # proof is current, and a credentials change committed meanwhile has refused it.
            result = self._open_session(
                user, self.toolkit.clock(), client, method=PASSWORD, client_id=client_id
            )
        self.toolkit.limiter.clear(self.settings.login_rate_limit, "login", account)
        return result

    def challenge(self, user: UserRecord, *, first_factor: str = "pwd") -> MfaChallenge:
        """The second step of a sign-in whose first factor (RFC 8176 ``first_factor``: "pwd",
        "fed") succeeded for an account with MFA; ``verifyMfa`` completes it."""
        # The first factor was proven: a disabled account may be told so, and goes no further.
        refuse_if_disabled(self.uow, user.id)
        now = self.toolkit.clock()
        token = new_opaque_token()
        expires_at = (now + timedelta(seconds=MFA_CHALLENGE_SECONDS)).replace(microsecond=0)
        self.uow.repository(MfaRepository).add_challenge(
            user_id=user.id,
            token_hash=hash_opaque_token(token),
            credentials_version=user.credentials_version,
            now=now,
            expires_at=expires_at,
            first_factor=first_factor,
        )
        methods = mfa_methods(self.uow, user.id, passkeys=self.settings.passkeys_enabled)
        self.uow.commit()
        return MfaChallenge(token=token, expires_at=expires_at, methods=methods)

    def verify_credentials(
        self, email: str, password: str, client: ClientInfo | None = None
    ) -> UserRecord:
        """The user whose credentials these are, or :class:`InvalidCredentials`.

        Unknown emails, and accounts without a password, cost one dummy verification, so
        timing does not reveal accounts.
        On success the user's row is held (see ``UserRepository.hold_credentials``) until
        the unit of work commits: the caller writes its session in that transaction. A
        password changed during the hash answers InvalidCredentials, as the new one would.
        A disabled account answers :class:`AccountDisabled`, only once the password was right.
        A wrong password for an existing account is recorded (``SIGN_IN_FAILED``).
        """
        try:
            address = canonical_email(email)
        except errors.ValidationFailed:
            address = None
        user = self.uow.users.get_by_email(address) if address else None
        self.uow.rollback()
        stored = user.password_hash if user is not None else None
        if user is None or stored is None:
            # An unknown address and an account without a password answer as a wrong
            # password does, after the same work.
            self.toolkit.hasher.dummy_verify()
            raise errors.InvalidCredentials
        ok, new_hash = self.toolkit.hasher.verify(password, stored)
        if not ok:
            record_event(
                self.toolkit,
                self.uow,
                EventKind.SIGN_IN_FAILED,
                user_id=user.id,
                client=client,
                detail=PASSWORD,
            )
            self.uow.commit()
            raise errors.InvalidCredentials
        if not self.uow.users.hold_credentials(user):
            raise errors.InvalidCredentials
        refuse_if_disabled(self.uow, user.id)
        if new_hash is not None:
            # Fewer rounds than configured, or an older scheme: upgrade while we know the password.
            self.uow.users.set_password_hash(user, new_hash)
        return user

    def change_password(
        self, viewer: Viewer, current_password: str, new_password: str, client: ClientInfo
    ) -> AuthResult:
        user = viewer.user
        # An account without a password sets its first one here, after a recent sign-in.
        confirm_owner(
            self.toolkit,
            self.uow,
            user,
            viewer.session,
            current_password,
            "The current password is not correct.",
        )
        check_password_policy(new_password, email=user.email, field="newPassword")
        password_hash = self.toolkit.hasher.hash(new_password)
        # The barrier: sign-ins proven with the old password can no longer open sessions,
        # and of two changes made with the same current password only one wins.
        if not self.uow.users.bump_credentials(user):
            raise errors.InvalidCredentials("The current password is no longer current.")
        self.uow.users.set_password_hash(user, password_hash)
        now = self.toolkit.clock()
        self.uow.sessions.revoke(
            user_id=user.id, now=now, reason="password_changed", keep=viewer.session.id
        )
        record_event(
            self.toolkit,
            self.uow,
            EventKind.PASSWORD_CHANGED,
            user_id=user.id,
            session_id=viewer.session.id,
            client=client,
        )
        # Refresh tokens issued before the change must not outlive it, even for this session.
        self.uow.sessions.drop_refresh_tokens(session_id=viewer.session.id)
        return self._issue(user, viewer.session, now, client)

    def finish_sign_in(
        self, user: UserRecord, client: ClientInfo, *, assurance: Assurance
    ) -> AuthResult | MfaChallenge:
        """End a first-factor sign-in other than the password's (an emailed code, a passkey).

        Below aal2, an account with MFA gets the login's second step (an
        :class:`MfaChallenge`) instead of a session; a proof already at aal2 (a passkey with
        user verification) opens the session. The caller holds the user's credentials row
        (``hold_credentials``) and leaves the commit to this call.
        """
        # The credential was proven: only now may a disabled account be told so.
        refuse_if_disabled(self.uow, user.id)
        now = self.toolkit.clock()
        first_factor = assurance.amr[0] if assurance.amr else "pwd"
        if assurance.aal < 2 and self.uow.repository(MfaRepository).factors(user.id):
            # The second step records this first factor ("otp" for a code) in its amr.
            return self.challenge(user, first_factor=first_factor)
        return self._open_session(
            user, now, client, assurance=assurance, method=sign_in_method(first_factor)
        )

    def open_session(
        self, user: UserRecord, client: ClientInfo, *, assurance: Assurance, method: str
    ) -> AuthResult:
        """A new session for a user whose authentication the caller completed (``verifyMfa``);
        ``method`` is the sign-in method its ``SIGNED_IN`` event names."""
        # Any sign-in method ends here once its credential is proven (verifyMfa, and the
        # passkey and social sign-ins): a disabled account gets no session from any of them.
        refuse_if_disabled(self.uow, user.id)
        return self._open_session(
            user, self.toolkit.clock(), client, method=method, assurance=assurance
        )

    def reissue(self, user: UserRecord, session: SessionRecord, client: ClientInfo) -> AuthResult:
        """Fresh tokens for a session whose assurance changed; its older refresh tokens die."""
        self.uow.sessions.drop_refresh_tokens(session_id=session.id)
        return self._issue(user, session, self.toolkit.clock(), client)

    # -- sessions ---------------------------------------------------------------------------

    def authenticate(self, token: str) -> Viewer:
        """Resolve a bearer token to its live user and session, or raise InvalidAccessToken."""
        claims: AccessClaims = self.toolkit.tokens.verify(token)
        found = self.uow.sessions.find_active(
            session_id=claims.session_id, user_id=claims.user_id, now=self.toolkit.clock()
        )
        return _viewer(found)

    def authenticate_refresh_token(
        self, refresh_token: str | None, *, csrf: str
    ) -> tuple[Viewer, datetime]:
        """Read-only: the live session an unspent refresh token belongs to, and when the token
        expires, if ``csrf`` is that session's CSRF token (cookie-mode subscriptions). Nothing
        is rotated or spent. Raises InvalidRefreshToken or CsrfFailed."""
        found = self.uow.sessions.find_refresh_token(hash_opaque_token(refresh_token or ""))
        if found is None:
            raise errors.InvalidRefreshToken
        token, session = found
        if not self.toolkit.csrf_matches(session.id, csrf):
            raise errors.CsrfFailed
        now = self.toolkit.clock()
        # A spent token is a stale cookie (its rotation set a new one): not a credential.
        if token.used_at is not None or token.expires_at <= now:
            raise errors.InvalidRefreshToken
        live = self.uow.sessions.find_active(
            session_id=session.id, user_id=session.user_id, now=now
        )
        if live is None:
            raise errors.InvalidRefreshToken
        return Viewer(user=live[0], session=live[1]), min(token.expires_at, live[1].expires_at)

    def refresh(
        self, refresh_token: str | None, client: ClientInfo, *, csrf: str | None = None
    ) -> AuthResult:
        """Rotate a refresh token; a spent one presented after the grace window revokes all.

        ``csrf``, when given (cookie mode), must be the session's CSRF token.
        """
        throttle(self.toolkit, (self.settings.refresh_rate_limit, "refresh-ip", client.ip_address))
        if not refresh_token:
            raise errors.InvalidRefreshToken
        now = self.toolkit.clock()
        found = self.uow.sessions.find_refresh_token(hash_opaque_token(refresh_token))
        if found is None:
            raise errors.InvalidRefreshToken
        token, session = found
        if csrf is not None and not self.toolkit.csrf_matches(session.id, csrf):
            raise errors.CsrfFailed
        if session.expires_at <= now or token.expires_at <= now:
            raise errors.InvalidRefreshToken
        if session.revoked_at is not None:
            # An unspent token of a session that a disable ended was a right credential: say
            # why it no longer works. Any other revoked session's token is just invalid.
            if session.revoked_reason == REVOKED_ACCOUNT_DISABLED and token.used_at is None:
                refuse_if_disabled(self.uow, session.user_id)
            raise errors.InvalidRefreshToken
        if not self.uow.sessions.claim_refresh_token(token, now=now):
            spent_at = token.used_at or now
            grace = timedelta(seconds=self.settings.refresh_reuse_grace_seconds)
            if now - spent_at > grace:
                # A spent token came back: someone holds a copy. End the whole session.
                self.uow.sessions.revoke(
                    user_id=session.user_id, now=now, reason="refresh_token_reuse", only=session.id
                )
                record_event(
                    self.toolkit,
                    self.uow,
                    EventKind.REFRESH_TOKEN_REUSED,
                    user_id=session.user_id,
                    session_id=session.id,
                    client=client,
                )
                self.uow.commit()
                raise errors.InvalidRefreshToken
            # Within the grace window (two tabs, a retried request): a sibling token, same session.
        user = self.uow.users.get(session.user_id)
        if user is None:
            raise errors.InvalidRefreshToken
        return self._issue(user, session, now, client)

    def list_sessions(self, user_id: str) -> Sequence[SessionRecord]:
        """The user's live sessions; callers pass only the authenticated user's own id."""
        return self.uow.sessions.list_active(user_id=user_id, now=self.toolkit.clock())

    def logout(self, viewer: Viewer, scope: LogoutScope, client: ClientInfo | None = None) -> int:
        """End this session, the user's other sessions, or all of them; return how many."""
        now = self.toolkit.clock()
        sid = viewer.session.id
        if scope == "current":
            count = self.uow.sessions.revoke(
                user_id=viewer.user.id, now=now, reason="logout", only=sid
            )
        elif scope == "others":
            count = self.uow.sessions.revoke(
                user_id=viewer.user.id, now=now, reason="logout_others", keep=sid
            )
        else:
            count = self.uow.sessions.revoke(user_id=viewer.user.id, now=now, reason="logout_all")
        record_event(
            self.toolkit,
            self.uow,
            EventKind.SIGNED_OUT,
            user_id=viewer.user.id,
            session_id=sid,
            client=client,
            detail=scope,
        )
        self.uow.commit()
        return count

    def logout_by_refresh_token(
        self, refresh_token: str | None, *, csrf: str, client: ClientInfo | None = None
    ) -> int:
        """End the session a refresh token belongs to (cookie mode, with no access token)."""
        found = self.uow.sessions.find_refresh_token(hash_opaque_token(refresh_token or ""))
        if found is None:
            raise errors.Unauthenticated
        _, session = found
        if not self.toolkit.csrf_matches(session.id, csrf):
            raise errors.CsrfFailed
        count = self.uow.sessions.revoke(
            user_id=session.user_id, now=self.toolkit.clock(), reason="logout", only=session.id
        )
        if count:
            record_event(
                self.toolkit,
                self.uow,
                EventKind.SIGNED_OUT,
                user_id=session.user_id,
                session_id=session.id,
                client=client,
                detail="current",
            )
        self.uow.commit()
        return count

    def revoke_session(
        self, viewer: Viewer, session_id: str, client: ClientInfo | None = None
    ) -> None:
        if "\x00" in session_id:
            # Names no session, and PostgreSQL refuses to even compare text holding a NUL.
            raise errors.SessionNotFound
        revoked = self.uow.sessions.revoke(
            user_id=viewer.user.id, now=self.toolkit.clock(), reason="revoked", only=session_id
        )
        if not revoked:
            raise errors.SessionNotFound
        record_event(
            self.toolkit,
            self.uow,
            EventKind.SESSION_REVOKED,
            user_id=viewer.user.id,
            session_id=session_id,
            client=client,
        )
        self.uow.commit()

    def prune(self) -> PruneCounts:
        """Delete what can no longer be used: sessions, emailed tokens and delivered mail."""
        now = self.toolkit.clock()
        counts = PruneCounts(
            # Revoked rows are kept a day so that a reused token is still recognised as reuse.
            sessions=self.uow.sessions.prune(now=now, revoked_before=now - timedelta(days=1)),
            email_tokens=self.uow.email_tokens.prune(now=now),
            mfa_challenges=self.uow.repository(MfaRepository).prune_challenges(now=now),
            passkey_ceremonies=self.uow.repository(PasskeyRepository).prune_ceremonies(now=now),
            security_events=SecurityEvents(self.toolkit, self.uow).prune(),
            # Delivered bodies hold links with live tokens: keep them no longer than the
            # longest token lives; undeliverable ones a month, for inspection.
            mail=self.uow.outbox.prune(
                sent_before=now - timedelta(seconds=self._longest_email_token()),
                failed_before=now - timedelta(days=30),
            ),
        )
        self.uow.commit()
        return counts

    def _longest_email_token(self) -> int:
        s = self.settings
        return max(
            s.email_verification_ttl_seconds,
            s.password_reset_ttl_seconds,
            s.email_change_ttl_seconds,
        )

    # -- internals --------------------------------------------------------------------------

    def _open_session(
        self,
        user: UserRecord,
        now: datetime,
        client: ClientInfo,
        *,
        method: str,
        client_id: str | None = None,
        assurance: Assurance = PASSWORD_ONLY,
    ) -> AuthResult:
        self.uow.users.record_sign_in(user.id, now=now)
        session = self.uow.sessions.open(
            user_id=user.id,
            now=now,
            expires_at=self._refresh_expiry(now, now),
            client=client,
            assurance=assurance,
        )
        record_event(
            self.toolkit,
            self.uow,
            EventKind.SIGNED_IN,
            user_id=user.id,
            session_id=session.id,
            client=client,
            detail=method,
        )
        check_device(
            self.toolkit,
            self.uow,
            user_id=user.id,
            session_id=session.id,
            client=client,
            method=method,
        )
        return self._issue(user, session, now, client, client_id=client_id)

    def _issue(
        self,
        user: UserRecord,
        session: SessionRecord,
        now: datetime,
        client: ClientInfo,
        *,
        client_id: str | None = None,
    ) -> AuthResult:
        refresh_token = new_opaque_token()
        expires_at = self._refresh_expiry(now, session.created_at)
        self.uow.sessions.add_refresh_token(
            session_id=session.id,
            token_hash=hash_opaque_token(refresh_token),
            now=now,
            expires_at=expires_at,
        )
        self.uow.sessions.touch(session, now=now, expires_at=expires_at, client=client)
        access = self.toolkit.tokens.issue(
            user_id=user.id,
            session_id=session.id,
            now=now,
            client_id=client_id,
            extra_claims=assurance_claims(session),
        )
        self.uow.commit()
        return AuthResult(
            user=user,
            session=session,
            access=access,
            refresh_token=refresh_token,
            refresh_expires_at=expires_at,
            csrf_token=self.toolkit.csrf_token(session.id),
        )

    def _refresh_expiry(self, now: datetime, session_created: datetime) -> datetime:
        # Sliding with each rotation, but never past the session's absolute lifetime.
        sliding = now + timedelta(seconds=self.settings.refresh_token_ttl_seconds)
        absolute = session_created + timedelta(seconds=self.settings.session_max_age_seconds)
        return min(sliding, absolute).replace(microsecond=0)


def refuse_if_disabled(uow: UnitOfWork, user_id: str) -> None:
    """Raise :class:`AccountDisabled` (ending the transaction) if the user is disabled.

    Sign-ins call it once the credential was proven and the user's row is held, so a
    disable committed during the hash is seen, and a wrong credential never reaches it.
    """
    if uow.users.is_disabled(user_id):
        uow.rollback()
        raise errors.AccountDisabled


def assurance_claims(session: SessionRecord) -> dict[str, object]:
    """The access token's assurance claims: ``aal``, ``amr`` (RFC 8176) and ``auth_time``.

    Read from the session, so a refresh keeps the level the session was authenticated at.
    """
    return {
        "aal": f"aal{session.aal}",
        "amr": session.amr.split(),
        "auth_time": int(session.authenticated_at.timestamp()),
    }
