"""Multi-factor use cases: TOTP enrollment, the login's second step, recovery codes, step-up.

Like :class:`auth.service.AuthService`, methods are synchronous and run in a worker thread.
Every code is accepted once: a TOTP code's time step is claimed by compare-and-set on the
factor (the same or an older code fails, also when two requests race), a recovery code is
spent by compare-and-set. Code attempts count per account (``MFA_RATE_LIMIT``, cleared by a
success) and, at login, per ``mfaToken`` (five wrong codes end it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from auth import errors
from auth.events import EventKind, record_event, sign_in_method
from auth.guards import check_password, mfa_methods, throttle
from auth.keys import REENCRYPT_ATTEMPTS, Reencrypted
from auth.passkeys import PASSKEY_METHOD, PasskeyService, assurance_of
from auth.ports import (
    PASSWORD_ONLY,
    WITH_SECOND_FACTOR,
    Assurance,
    ClientInfo,
    MfaFactorRecord,
    MfaRepository,
    UnitOfWork,
    UserRecord,
)
from auth.service import (
    MFA_CHALLENGE_MAX_FAILURES,
    AuthResult,
    AuthService,
    Viewer,
)
from auth.tokens import hash_opaque_token
from auth.toolkit import AuthToolkit
from auth.totp import (
    hash_recovery_code,
    matching_step,
    new_recovery_codes,
    new_totp_secret,
    otpauth_uri,
    qr_code_svg,
)

TOTP = "totp"
PASSWORD_INCORRECT = "The password is not correct."


@dataclass(frozen=True, slots=True)
class TotpEnrollment:
    """A pending TOTP factor: what the user's authenticator app needs, shown once."""

    factor_id: str
    secret: str
    otpauth_uri: str
    qr_code_svg: str


@dataclass(frozen=True, slots=True)
class Reauthentication:
    """A renewed authentication: until when it counts, and the session's fresh tokens."""

    until: datetime
    auth: AuthResult


@dataclass(frozen=True, slots=True)
class MfaEnabled:
    """A confirmed factor: the session's fresh aal2 tokens and, if MFA just turned on, codes."""

    recovery_codes: list[str]
    auth: AuthResult


class MfaService:
    """The MFA use cases, bound to one unit of work."""

    def __init__(self, toolkit: AuthToolkit, uow: UnitOfWork) -> None:
        self.toolkit = toolkit
        self.settings = toolkit.settings
        self.uow = uow
        self.mfa = uow.repository(MfaRepository)
        self.auth = AuthService(toolkit, uow)

    # -- what the account shows --------------------------------------------------------------

    def factors(self, user_id: str) -> Sequence[MfaFactorRecord]:
        """The user's confirmed factors (pending enrollments are not factors yet)."""
        return self.mfa.factors(user_id)

    def recovery_codes_left(self, user_id: str) -> int:
        return self.mfa.recovery_codes_left(user_id)

    # -- enrollment ------------------------------------------------------------------------

    def start_totp_enrollment(self, viewer: Viewer) -> TotpEnrollment:
        """A new pending TOTP factor (replacing any earlier pending one)."""
        user = viewer.user
        throttle(self.toolkit, (self.settings.mfa_rate_limit, "mfa-enroll", user.id))
        secret = new_totp_secret()
        now = self.toolkit.clock()
        self.mfa.drop_pending(user_id=user.id)
        factor = self.mfa.add_factor(
            user_id=user.id,
            kind=TOTP,
            secret_sealed=self.toolkit.secret_box.seal(secret, user_id=user.id),
            now=now,
        )
        self.uow.commit()
        uri = otpauth_uri(secret, account=user.email, issuer=self.settings.mfa_issuer)
        return TotpEnrollment(
            factor_id=factor.id, secret=secret, otpauth_uri=uri, qr_code_svg=qr_code_svg(uri)
        )

    def confirm_totp_enrollment(
        self, viewer: Viewer, factor_id: str, code: str, client: ClientInfo
    ) -> MfaEnabled:
        """Confirm a pending factor with a correct code; the session becomes aal2.

        When this turns MFA on, the ten recovery codes are made (shown this once) and every
        other session of the user below aal2 ends: a password alone no longer holds one.
        """
        user = viewer.user
        self._throttle_codes(user.id)
        # A NUL names no factor, and PostgreSQL refuses to even compare text holding one.
        known = factor_id and "\x00" not in factor_id
        factor = self.mfa.get_factor(factor_id, user_id=user.id) if known else None
        now = self.toolkit.clock()
        if factor is None or factor.confirmed_at is not None:
            raise errors.InvalidMfaCode
        if not self._claim_totp(user.id, factor, code, now):
            raise errors.InvalidMfaCode
        turning_on = not self.mfa.factors(user.id)
        if not self.mfa.confirm_factor(factor.id, now=now):
            self.uow.rollback()
            raise errors.InvalidMfaCode
        codes = new_recovery_codes() if turning_on else []
        if turning_on:
            self.mfa.replace_recovery_codes(
                user_id=user.id, code_hashes=[hash_recovery_code(c) for c in codes], now=now
            )
        self.uow.sessions.revoke(
            user_id=user.id, now=now, reason="mfa_enabled", keep=viewer.session.id, below_aal=2
        )
        session = self.uow.sessions.set_assurance(
            viewer.session, assurance=WITH_SECOND_FACTOR, now=now
        )
        if turning_on:
            self._record(EventKind.MFA_ENABLED, viewer, client, detail=TOTP)
        result = self.auth.reissue(user, session, client)  # commits
        self._clear_codes(user.id)
        return MfaEnabled(recovery_codes=codes, auth=result)

    def regenerate_recovery_codes(
        self, viewer: Viewer, client: ClientInfo | None = None
    ) -> list[str]:
        """Ten new codes, shown once; every earlier code stops working."""
        codes = new_recovery_codes()
        self.mfa.replace_recovery_codes(
            user_id=viewer.user.id,
            code_hashes=[hash_recovery_code(c) for c in codes],
            now=self.toolkit.clock(),
        )
        self._record(EventKind.RECOVERY_CODES_REGENERATED, viewer, client)
        self.uow.commit()
        return codes

    def remove_factor(
        self, viewer: Viewer, factor_id: str, client: ClientInfo | None = None
    ) -> bool:
        """Delete one of the caller's factors; return whether MFA is still on.

        Removing the last one turns MFA off, and the recovery codes go with it.
        """
        user_id = viewer.user.id
        if "\x00" in factor_id or not self.mfa.delete_factor(factor_id, user_id=user_id):
            raise errors.MfaFactorNotFound
        still_on = bool(self.mfa.factors(user_id))
        if not still_on:
            self.mfa.replace_recovery_codes(
                user_id=user_id, code_hashes=[], now=self.toolkit.clock()
            )
            self._record(EventKind.MFA_DISABLED, viewer, client)
        self.uow.commit()
        return still_on

    # -- the login's second step -----------------------------------------------------------

    def verify(self, mfa_token: str, method: str, code: str, client: ClientInfo) -> AuthResult:
        """Complete a login that answered ``MfaRequired``: an aal2 session on a good code.

        The token is single use, lives five minutes and dies after five wrong codes; a
        credentials change since the password was checked also ends it.
        """
        now = self.toolkit.clock()
        challenge = self.mfa.find_challenge(hash_opaque_token(mfa_token))
        if (
            challenge is None
            or challenge.used_at is not None
            or challenge.expires_at <= now
            or challenge.failed_attempts >= MFA_CHALLENGE_MAX_FAILURES
        ):
            raise errors.InvalidMfaToken
        self._throttle_codes(challenge.user_id)
        user = self.uow.users.get(challenge.user_id)
        if user is None or user.credentials_version != challenge.credentials_version:
            raise errors.InvalidMfaToken
        proven = self._check_code(user, method, code, now)
        if proven is None:
            self.uow.rollback()
            self.mfa.count_failure(challenge.id)
            record_event(
                self.toolkit,
                self.uow,
                EventKind.SIGN_IN_FAILED,
                user_id=user.id,
                client=client,
                detail=method,
            )
            self.uow.commit()
            raise errors.InvalidMfaCode
        if not self.mfa.claim_challenge(
            challenge.id, now=now, max_failures=MFA_CHALLENGE_MAX_FAILURES
        ) or not self.uow.users.hold_credentials(user):
            # Spent by a concurrent request, or the password changed: the code stays unused.
            self.uow.rollback()
            raise errors.InvalidMfaToken
        # Both factors were right: open_session answers AccountDisabled for a disabled account.
        if method == "recovery_code":
            # Committed with the session below; the SIGNED_IN event names the session.
            self._record_code_used(user.id, None, client)
        # The first step's method (a password, or a provider: "fed") and what the second proved.
        assurance = Assurance(aal=proven.aal, amr=(challenge.first_factor, *proven.amr[1:]))
        signed_in_by = sign_in_method(challenge.first_factor, method)
        result = self.auth.open_session(user, client, assurance=assurance, method=signed_in_by)
        self._clear_codes(user.id)
        return result

    # -- step-up ---------------------------------------------------------------------------

    def reauthenticate(
        self,
        viewer: Viewer,
        password: str | None,
        method: str | None,
        code: str | None,
        client: ClientInfo,
    ) -> Reauthentication:
        """Prove it is still the user: refreshes the session's ``authenticated_at``.

        Without MFA the password is needed, or one of the user's passkeys with user
        verification (``method`` ``passkey``, the assertion as ``code``: an account without
        a password steps up so); with MFA a second-factor code is (and a password, if sent,
        is checked too), and the session is aal2 afterwards. Answers until when the step-up
        holds (``REAUTH_MAX_AGE_SECONDS`` from now) and fresh tokens for the session (a new
        ``auth_time``; its older refresh tokens are spent, as after any authentication).
        """
        user = self.uow.users.get(viewer.user.id)
        if user is None:
            raise errors.Unauthenticated
        with_mfa = bool(mfa_methods(self.uow, user.id, passkeys=self.settings.passkeys_enabled))
        if not with_mfa and method == PASSKEY_METHOD:
            return self._reauthenticate_with_passkey(viewer, user, code or "", client)
        proven = WITH_SECOND_FACTOR
        if password is not None:
            check_password(self.toolkit, self.uow, user, password, PASSWORD_INCORRECT)
        elif not with_mfa:
            if user.password_hash is None:
                raise errors.NoPassword
            raise errors.InvalidCredentials("Enter your password.")
        now = self.toolkit.clock()
        if with_mfa:
            if method is None or not code:
                raise errors.InvalidMfaCode(
                    "Enter a code from your authenticator app, or a recovery code."
                )
            self._throttle_codes(user.id)
            checked = self._check_code(user, method, code, now)
            if checked is None:
                self.uow.rollback()
                raise errors.InvalidMfaCode
            proven = checked
            if method == "recovery_code":
                self._record_code_used(user.id, viewer.session.id, client)
        assurance = proven if with_mfa else PASSWORD_ONLY
        session = self.uow.sessions.set_assurance(viewer.session, assurance=assurance, now=now)
        result = self.auth.reissue(user, session, client)  # commits
        if with_mfa:
            self._clear_codes(user.id)
        until = now + timedelta(seconds=self.settings.reauth_max_age_seconds)
        return Reauthentication(until=until.replace(microsecond=0), auth=result)

    def _reauthenticate_with_passkey(
        self, viewer: Viewer, user: UserRecord, credential: str, client: ClientInfo
    ) -> Reauthentication:
        """The step-up of a user without MFA by a passkey alone: verified as a passkey login
        is (user verification required), and the session takes that login's assurance."""
        self._throttle_codes(user.id)
        passkey = PasskeyService(self.toolkit, self.uow).verify_second_factor(
            user, credential, require_uv=True
        )
        if passkey is None:
            self.uow.rollback()
            raise errors.InvalidCredentials("The passkey could not be verified.")
        now = self.toolkit.clock()
        session = self.uow.sessions.set_assurance(
            viewer.session, assurance=assurance_of(passkey), now=now
        )
        result = self.auth.reissue(user, session, client)  # commits
        self._clear_codes(user.id)
        until = now + timedelta(seconds=self.settings.reauth_max_age_seconds)
        return Reauthentication(until=until.replace(microsecond=0), auth=result)

    # -- key rotation ----------------------------------------------------------------------

    def reencrypt_secrets(self) -> Reencrypted:
        """Reseal every TOTP secret still under a previous ``MFA_ENCRYPTION_KEY`` with the
        current one (``authgraph mfa reencrypt``); idempotent.

        Every secret must open first (else :class:`ConfigurationError` naming the setting, and
        nothing is rewritten). Each row is replaced by compare-and-set on the sealed value read
        and committed on its own: a row changed meanwhile (another run, a re-enrollment) is
        read again, never overwritten blindly, and no login waits on a long transaction.
        """
        box = self.toolkit.secret_box
        factors = self.mfa.all_factors()
        for factor in factors:
            if box.open(factor.secret_sealed, user_id=factor.user_id) is None:
                self.uow.rollback()
                raise errors.ConfigurationError(
                    f"neither MFA_ENCRYPTION_KEY nor MFA_ENCRYPTION_PREVIOUS_KEYS opens the TOTP "
                    f"secret of factor {factor.id} (user {factor.user_id}): add the key it was "
                    "sealed with to MFA_ENCRYPTION_PREVIOUS_KEYS. Nothing was rewritten."
                )
        rewritten = current = 0
        for factor in factors:
            found: MfaFactorRecord | None = factor
            for _ in range(REENCRYPT_ATTEMPTS):
                if found is None:
                    break  # removed meanwhile: nothing left to rewrite
                user_id, stored = found.user_id, found.secret_sealed
                if box.is_current(stored, user_id=user_id):
                    current += 1
                    break
                secret = box.open(stored, user_id=user_id)
                if secret is None:
                    raise errors.ConfigurationError(
                        f"the TOTP secret of factor {found.id} changed to one neither "
                        "MFA_ENCRYPTION_KEY nor MFA_ENCRYPTION_PREVIOUS_KEYS opens."
                    )
                fresh = box.seal(secret, user_id=user_id)
                if self.mfa.replace_secret(found.id, old=stored, new=fresh):
                    self.uow.commit()
                    rewritten += 1
                    break
                # Changed since it was read: read what is there now (the rollback expires it).
                self.uow.rollback()
                found = self.mfa.get_factor(found.id, user_id=user_id)
            else:
                raise errors.ConfigurationError(
                    f"the TOTP secret of factor {factor.id} kept changing; run the command again."
                )
        return Reencrypted(rewritten=rewritten, current=current)

    # -- internals -------------------------------------------------------------------------

    def _check_code(
        self, user: UserRecord, method: str, code: str, now: datetime
    ) -> Assurance | None:
        """Spend ``code`` of the user's (in this transaction): the assurance it proves with
        the first factor, or ``None`` if it was wrong or used.

        For ``passkey`` the code is the assertion JSON of a ceremony started with the
        user's address (its ceremony is spent at once, whatever the outcome).
        """
        user_id = user.id
        if method == PASSKEY_METHOD:
            passkey = PasskeyService(self.toolkit, self.uow).verify_second_factor(user, code)
            if passkey is None:
                return None
            return Assurance(aal=2, amr=("pwd", assurance_of(passkey).amr[0]))
        if method == "recovery_code":
            spent = self.mfa.claim_recovery_code(
                user_id=user_id, code_hash=hash_recovery_code(code), now=now
            )
            return WITH_SECOND_FACTOR if spent else None
        matched = any(self._claim_totp(user_id, f, code, now) for f in self.mfa.factors(user_id))
        return WITH_SECOND_FACTOR if matched else None

    def _claim_totp(self, user_id: str, factor: MfaFactorRecord, code: str, now: datetime) -> bool:
        secret = self.toolkit.secret_box.open(factor.secret_sealed, user_id=user_id)
        if secret is None:
            # Sealed under no configured MFA_ENCRYPTION_KEY (nor a previous one): no code matches.
            return False
        step = matching_step(secret, code, now)
        return step is not None and self.mfa.claim_step(factor, step=step, now=now)

    def _record(
        self, kind: EventKind, viewer: Viewer, client: ClientInfo | None, detail: str | None = None
    ) -> None:
        record_event(
            self.toolkit,
            self.uow,
            kind,
            user_id=viewer.user.id,
            session_id=viewer.session.id,
            client=client,
            detail=detail,
        )

    def _record_code_used(self, user_id: str, session_id: str | None, client: ClientInfo) -> None:
        record_event(
            self.toolkit,
            self.uow,
            EventKind.RECOVERY_CODE_USED,
            user_id=user_id,
            session_id=session_id,
            client=client,
        )

    def _throttle_codes(self, user_id: str) -> None:
        throttle(self.toolkit, (self.settings.mfa_rate_limit, "mfa", user_id))

    def _clear_codes(self, user_id: str) -> None:
        self.toolkit.limiter.clear(self.settings.mfa_rate_limit, "mfa", user_id)
