"""Passkeys (WebAuthn Level 3): registration, first-factor login, second factor, management.

Ceremonies (their challenges) live on the server: single use (spent by compare-and-set
whatever the outcome), 5 minutes, bound to their kind and, for registration, to the user;
a login started with an address is bound to that address. Verification is the ``webauthn``
library's (Duo Labs), with the relying party of ``WEBAUTHN_RP_ID`` and the exact origins of
``WEBAUTHN_ORIGINS``. A first-factor login requires user verification, so it counts as
multi-factor: aal2, ``amr`` ``hwk`` (a device-bound key) or ``swk`` (a synced one) and
``user``. As a second factor (``verifyMfa`` with ``PASSKEY``) possession suffices.

The signature counter, where the authenticator keeps one, must grow: an assertion whose
counter does not is refused and counted on the passkey (``counter_regressions``), after its
signature was verified; nothing is revoked by that alone.

Methods are synchronous and run in a worker thread, like every use case.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_client_data_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from auth import errors
from auth.emails import canonical_email
from auth.events import EventKind, record_event
from auth.guards import throttle
from auth.ports import (
    Assurance,
    ClientInfo,
    PasskeyCeremonyRecord,
    PasskeyRecord,
    PasskeyRepository,
    UnitOfWork,
    UserRecord,
)
from auth.service import AuthResult, AuthService, MfaChallenge, Viewer
from auth.toolkit import AuthToolkit
from auth.ways_in import PASSKEY, require_another_way_in

CEREMONY_SECONDS = 300
# The MfaMethod value of a passkey (verifyMfa, reauthenticate).
PASSKEY_METHOD = "passkey"
REGISTRATION = "registration"
AUTHENTICATION = "authentication"
MAX_CREDENTIAL_JSON = 64 * 1024
MAX_NAME_LENGTH = 100
DEFAULT_NAME = "Passkey"
# Allowed descriptors answered for an address without passkeys: as many as a typical user has.
DECOY_CREDENTIALS = 1


class InvalidPasskeyResponse(errors.AuthError):
    # One answer for a malformed, forged, mismatched (origin, RP ID, challenge) or
    # already-registered credential.
    message = "The passkey response could not be verified. Try again."


class InvalidCeremony(errors.InvalidEmailToken):
    """An unknown, spent or expired ceremony (answered as ``InvalidToken``)."""

    message = "The passkey request has expired or was used. Start again."


class PasskeyNotFound(errors.AuthError):
    # Also the answer for another user's passkey id.
    message = "No such passkey."


class TooManyPasskeys(errors.AuthError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"An account may have at most {limit} passkeys: remove one first.")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class PasskeyOptions:
    """Options for ``navigator.credentials.create``/``get``, and the ceremony they belong to."""

    ceremony_id: str
    public_key_json: str
    expires_at: datetime


def assurance_of(passkey: PasskeyRecord) -> Assurance:
    """A verified first-factor passkey login: RFC 8176 ``swk`` for a synced key (it leaves the
    device), ``hwk`` for a device-bound one, and ``user`` for the verification."""
    return Assurance(aal=2, amr=("swk" if passkey.multi_device else "hwk", "user"))


def _descriptor(passkey: PasskeyRecord) -> PublicKeyCredentialDescriptor:
    transports = []
    for name in passkey.transports.split():
        try:
            transports.append(AuthenticatorTransport(name))
        except ValueError:
            continue  # a transport newer than the library: the browser finds the key anyway
    return PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(passkey.credential_id), transports=transports or None
    )


def _parse_json(credential: str) -> dict[str, Any]:
    if len(credential) > MAX_CREDENTIAL_JSON:
        raise InvalidPasskeyResponse
    try:
        value = json.loads(credential)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the stack
        raise InvalidPasskeyResponse from None
    if not isinstance(value, dict):
        raise InvalidPasskeyResponse
    return value


def _field(credential: dict[str, Any], name: str) -> object:
    """``credential.response[name]``, or ``None`` however malformed the document is."""
    response = credential.get("response")
    return response.get(name) if isinstance(response, dict) else None


def _challenge_of(credential: dict[str, Any]) -> str:
    """The challenge the browser signed (base64url), read from ``clientDataJSON``."""
    try:
        response = credential["response"]
        client_data = parse_client_data_json(base64url_to_bytes(response["clientDataJSON"]))
    except (KeyError, TypeError, ValueError, WebAuthnException):
        raise InvalidPasskeyResponse from None
    return bytes_to_base64url(client_data.challenge)


def _credential_id_of(credential: dict[str, Any]) -> str:
    raw = credential.get("rawId") or credential.get("id")
    if not isinstance(raw, str) or not raw:
        raise InvalidPasskeyResponse
    try:
        return bytes_to_base64url(base64url_to_bytes(raw))
    except ValueError:
        raise InvalidPasskeyResponse from None


class PasskeyService:
    """The passkey use cases, bound to one unit of work."""

    def __init__(self, toolkit: AuthToolkit, uow: UnitOfWork) -> None:
        self.toolkit = toolkit
        self.settings = toolkit.settings
        self.uow = uow
        self.passkeys = uow.repository(PasskeyRepository)

    # -- what the account shows --------------------------------------------------------------

    def passkeys_of(self, user_id: str) -> Sequence[PasskeyRecord]:
        """The user's passkeys, oldest first."""
        return self.passkeys.for_user(user_id)

    # -- registration ------------------------------------------------------------------------

    def start_registration(self, viewer: Viewer, name: str | None) -> PasskeyOptions:
        """Options to create a passkey for the caller (their existing ones excluded)."""
        self._require_enabled()
        user = viewer.user
        throttle(self.toolkit, (self.settings.mfa_rate_limit, "passkey-register", user.id))
        label = self._name(name)
        existing = self.passkeys.for_user(user.id)
        if len(existing) >= self.settings.max_passkeys_per_user:
            raise TooManyPasskeys(self.settings.max_passkeys_per_user)
        options = generate_registration_options(
            rp_id=self.settings.webauthn_rp_id,
            rp_name=self.settings.webauthn_rp_name,
            user_name=user.email,
            # The user handle: the account's random id, never the address (W3C 14.6.1).
            user_id=user.id.encode(),
            user_display_name=user.display_name or user.email,
            timeout=CEREMONY_SECONDS * 1000,
            attestation=AttestationConveyancePreference.NONE,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[_descriptor(p) for p in existing],
        )
        return self._ceremony(
            REGISTRATION,
            options_to_json(options),
            options.challenge,
            user_id=user.id,
            email=None,
            name=label,
        )

    def finish_registration(
        self, viewer: Viewer, ceremony_id: str, credential: str, client: ClientInfo | None = None
    ) -> PasskeyRecord:
        """Verify the browser's answer to :meth:`start_registration` and store the passkey."""
        self._require_enabled()
        user = viewer.user
        ceremony = self._claim(REGISTRATION, ceremony_id=ceremony_id)
        if ceremony.user_id != user.id:
            self.uow.rollback()
            raise InvalidCeremony
        self.uow.commit()  # spent, whatever the verification says
        parsed = _parse_json(credential)
        try:
            verified = verify_registration_response(
                credential=parsed,
                expected_challenge=base64url_to_bytes(ceremony.challenge),
                expected_rp_id=self.settings.webauthn_rp_id,
                expected_origin=list(self.settings.webauthn_origins),
                # Registration only needs presence: UV is what a first-factor login asks.
                require_user_verification=False,
            )
        except Exception:
            # Whatever the library trips on in a hostile document is a failed verification:
            # the call touches no database, so no outage can hide here.
            raise InvalidPasskeyResponse from None
        if self.passkeys.count(user.id) >= self.settings.max_passkeys_per_user:
            raise TooManyPasskeys(self.settings.max_passkeys_per_user)
        transports = _field(parsed, "transports")
        if not isinstance(transports, list):
            transports = []
        stored = self.passkeys.add(
            user_id=user.id,
            credential_id=bytes_to_base64url(verified.credential_id),
            public_key=bytes_to_base64url(verified.credential_public_key),
            sign_count=verified.sign_count,
            transports=" ".join(t for t in transports if isinstance(t, str))[:128],
            name=ceremony.name or DEFAULT_NAME,
            backed_up=verified.credential_backed_up,
            multi_device=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
            now=self.toolkit.clock(),
        )
        if stored is None:
            # Registered already (to this account or another): excludeCredentials was ignored.
            self.uow.rollback()
            raise InvalidPasskeyResponse
        record_event(
            self.toolkit,
            self.uow,
            EventKind.PASSKEY_ADDED,
            user_id=user.id,
            session_id=viewer.session.id,
            client=client,
        )
        self.uow.commit()
        return stored

    # -- login -------------------------------------------------------------------------------

    def start_login(self, email: str | None, client: ClientInfo) -> PasskeyOptions:
        """Options for ``navigator.credentials.get``: discoverable without an address.

        With an address the answer has the same shape whether or not it has an account or
        passkeys: the allowed credentials are the account's, or decoys derived from the
        address (stable across calls, so repeated requests do not tell them apart).
        """
        self._require_enabled()
        throttle(self.toolkit, (self.settings.login_ip_rate_limit, "login-ip", client.ip_address))
        address: str | None = None
        allowed: list[PublicKeyCredentialDescriptor] = []
        if email is not None:
            address = canonical_email(email)
            user = self.uow.users.get_by_email(address)
            mine = self.passkeys.for_user(user.id) if user is not None else []
            allowed = [_descriptor(p) for p in mine] or self._decoys(address)
        options = generate_authentication_options(
            rp_id=self.settings.webauthn_rp_id,
            timeout=CEREMONY_SECONDS * 1000,
            allow_credentials=allowed,
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        return self._ceremony(
            AUTHENTICATION,
            options_to_json(options),
            options.challenge,
            user_id=None,
            email=address,
            name=None,
        )

    def finish_login(
        self, ceremony_id: str, credential: str, client: ClientInfo
    ) -> AuthResult | MfaChallenge:
        """A first-factor sign-in with a passkey: an aal2 session, or InvalidCredentials.

        Unknown credentials, another account's credential for an address-bound ceremony,
        spent or expired ceremonies and failed verifications all answer alike.
        """
        self._require_enabled()
        throttle(self.toolkit, (self.settings.login_ip_rate_limit, "login-ip", client.ip_address))
        try:
            ceremony = self._claim(AUTHENTICATION, ceremony_id=ceremony_id)
            self.uow.commit()
            user, passkey = self._verify_assertion(ceremony, credential, require_uv=True)
        except (InvalidCeremony, InvalidPasskeyResponse):
            raise errors.InvalidCredentials("The passkey could not be verified.") from None
        if not self.uow.users.hold_credentials(user):
            self.uow.rollback()
            raise errors.InvalidCredentials("The passkey could not be verified.")
        return AuthService(self.toolkit, self.uow).finish_sign_in(
            user, client, assurance=assurance_of(passkey)
        )

    def verify_second_factor(
        self, user: UserRecord, credential: str, *, require_uv: bool = False
    ) -> PasskeyRecord | None:
        """The passkey of ``user``'s that made ``credential``, an assertion answering a
        ceremony started with their address (``verifyMfa``, ``reauthenticate``); ``None`` if
        it is not one. Possession suffices beside another factor; ``require_uv`` when the
        passkey stands alone (the step-up of a user without MFA), as at a passkey login.

        Spends the ceremony at once (committed, whatever the outcome) and stores the new
        counter in the caller's transaction.
        """
        if not self.settings.passkeys_enabled:
            return None
        try:
            parsed = _parse_json(credential)
            ceremony = self._claim(AUTHENTICATION, challenge=_challenge_of(parsed))
            self.uow.commit()
            if ceremony.email is None or ceremony.email != user.email:
                return None
            found, passkey = self._verify_assertion(ceremony, credential, require_uv=require_uv)
        except (InvalidCeremony, InvalidPasskeyResponse):
            return None
        return passkey if found.id == user.id else None

    # -- management --------------------------------------------------------------------------

    def rename(self, viewer: Viewer, passkey_id: str, name: str) -> PasskeyRecord:
        label = self._name(name, field="name", required=True)
        if "\x00" in passkey_id:
            raise PasskeyNotFound
        renamed = self.passkeys.rename(passkey_id, user_id=viewer.user.id, name=label)
        if renamed is None:
            raise PasskeyNotFound
        self.uow.commit()
        return renamed

    def remove(self, viewer: Viewer, passkey_id: str, client: ClientInfo | None = None) -> None:
        """Delete one of the caller's passkeys, unless it is their last way in."""
        user = viewer.user
        owned = {p.id for p in self.passkeys.for_user(user.id)}
        if "\x00" in passkey_id or passkey_id not in owned:
            raise PasskeyNotFound
        require_another_way_in(self.toolkit, self.uow, user, losing=PASSKEY)
        if not self.passkeys.delete(passkey_id, user_id=user.id):
            raise PasskeyNotFound
        record_event(
            self.toolkit,
            self.uow,
            EventKind.PASSKEY_REMOVED,
            user_id=user.id,
            session_id=viewer.session.id,
            client=client,
        )
        self.uow.commit()

    # -- internals ---------------------------------------------------------------------------

    def _require_enabled(self) -> None:
        if not self.settings.passkeys_enabled:
            raise errors.MethodNotEnabled

    def _name(self, name: str | None, *, field: str = "name", required: bool = False) -> str:
        label = " ".join((name or "").split())
        if "\x00" in label or not label.isprintable():
            raise errors.ValidationFailed(field, "A passkey name must be printable text.")
        if not label:
            if required:
                raise errors.ValidationFailed(field, "Give the passkey a name.")
            return DEFAULT_NAME
        if len(label) > MAX_NAME_LENGTH:
            raise errors.ValidationFailed(
                field, f"A passkey name must be at most {MAX_NAME_LENGTH} characters."
            )
        return label

    def _ceremony(
        self,
        kind: str,
        public_key_json: str,
        challenge: bytes,
        *,
        user_id: str | None,
        email: str | None,
        name: str | None,
    ) -> PasskeyOptions:
        now = self.toolkit.clock()
        expires_at = (now + timedelta(seconds=CEREMONY_SECONDS)).replace(microsecond=0)
        ceremony = self.passkeys.add_ceremony(
            kind=kind,
            user_id=user_id,
            email=email,
            challenge=bytes_to_base64url(challenge),
            name=name,
            now=now,
            expires_at=expires_at,
        )
        self.uow.commit()
        return PasskeyOptions(
            ceremony_id=ceremony.id, public_key_json=public_key_json, expires_at=expires_at
        )

    def _claim(
        self, kind: str, *, ceremony_id: str | None = None, challenge: str | None = None
    ) -> PasskeyCeremonyRecord:
        if (ceremony_id is not None and "\x00" in ceremony_id) or (
            challenge is not None and "\x00" in challenge
        ):
            raise InvalidCeremony
        ceremony = self.passkeys.claim_ceremony(
            kind=kind, now=self.toolkit.clock(), ceremony_id=ceremony_id, challenge=challenge
        )
        if ceremony is None:
            raise InvalidCeremony
        return ceremony

    def _verify_assertion(
        self, ceremony: PasskeyCeremonyRecord, credential: str, *, require_uv: bool
    ) -> tuple[UserRecord, PasskeyRecord]:
        parsed = _parse_json(credential)
        passkey = self.passkeys.by_credential_id(_credential_id_of(parsed))
        if passkey is None:
            raise InvalidPasskeyResponse
        user = self.uow.users.get(passkey.user_id)
        if user is None or (ceremony.email is not None and ceremony.email != user.email):
            raise InvalidPasskeyResponse
        handle = _field(parsed, "userHandle")
        if handle and handle != bytes_to_base64url(user.id.encode()):
            raise InvalidPasskeyResponse
        try:
            verified = verify_authentication_response(
                credential=parsed,
                expected_challenge=base64url_to_bytes(ceremony.challenge),
                expected_rp_id=self.settings.webauthn_rp_id,
                expected_origin=list(self.settings.webauthn_origins),
                credential_public_key=base64url_to_bytes(passkey.public_key),
                # The counter is compared below, once the signature is known to be good.
                credential_current_sign_count=0,
                require_user_verification=require_uv,
            )
        except Exception:
            raise InvalidPasskeyResponse from None  # as at registration: no database involved
        now = self.toolkit.clock()
        counted = verified.new_sign_count > 0 or passkey.sign_count > 0
        if counted and verified.new_sign_count <= passkey.sign_count:
            # A cloned authenticator, or a replayed assertion: refused, and remembered.
            self.passkeys.record_counter_regression(passkey.id, now=now)
            self.uow.commit()
            raise InvalidPasskeyResponse
        if not self.passkeys.record_use(
            passkey,
            sign_count=verified.new_sign_count,
            backed_up=verified.credential_backed_up,
            now=now,
        ):
            raise InvalidPasskeyResponse  # a concurrent assertion moved the counter first
        return user, passkey

    def _decoys(self, address: str) -> list[PublicKeyCredentialDescriptor]:
        key = self.settings.jwt_secret.reveal().encode()
        return [
            PublicKeyCredentialDescriptor(
                id=hmac.new(key, f"passkey-decoy:{i}:{address}".encode(), hashlib.sha256).digest()
            )
            for i in range(DECOY_CREDENTIALS)
        ]
