"""Multi-factor authentication: the login's second step, TOTP enrollment, recovery codes, step-up.

The login itself (graph/accounts.py) answers ``MfaRequired`` for an account with MFA; the
mutations here finish it, manage factors and renew a session's authentication.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from auth import errors
from auth.mfa import MfaEnabled as MfaEnabledResult
from auth.mfa import MfaService
from auth.service import MfaChallenge
from graph.context import Info
from graph.errors import Error, expected
from graph.features import extends_mutation
from graph.lifecycle import InvalidToken
from graph.runner import (
    Authenticated,
    RequiresAal,
    RequiresRecentAuth,
    in_hash_lane,
    in_worker,
    mutation,
)
from graph.types import (
    AccountDisabled,
    AuthPayload,
    InvalidCredentials,
    MfaMethod,
    RateLimited,
    ReauthenticationRequired,
)

# Adding or removing a factor and regenerating codes: a recent authentication at the user's
# highest level (aal2 once MFA is on).
STEP_UP = [Authenticated(), RequiresAal(2), RequiresRecentAuth()]


@strawberry.type(description="The password was right; the account needs a second factor.")
class MfaRequired:
    mfa_token: str = strawberry.field(
        description="Pass it to `verifyMfa`. Single use, dies after five wrong codes."
    )
    expires_at: datetime
    methods: list[MfaMethod]

    @classmethod
    def from_challenge(cls, challenge: MfaChallenge) -> MfaRequired:
        return cls(
            mfa_token=challenge.token,
            expires_at=challenge.expires_at,
            methods=[MfaMethod(m) for m in challenge.methods],
        )


@strawberry.type(
    description="A pending TOTP factor: add it to an authenticator app, then confirm a code."
)
class TotpEnrollment:
    factor_id: strawberry.ID
    secret: str = strawberry.field(description="Base32, for typing into an app by hand.")
    otpauth_uri: str = strawberry.field(description="The Key URI Format `otpauth://` URI.")
    qr_code_svg: str = strawberry.field(description="The URI as a QR code, an SVG document.")


@strawberry.type(description="The factor is confirmed; this session is now aal2.")
class MfaEnabled:
    recovery_codes: list[str] = strawberry.field(
        description="Ten single-use codes, shown this once, when MFA turned on (empty when "
        "another factor was already enabled)."
    )
    auth: AuthPayload = strawberry.field(description="Fresh tokens for this session, at aal2.")


@strawberry.type(description="New recovery codes, shown this once; the earlier ones are void.")
class RecoveryCodes:
    codes: list[str]


@strawberry.type(description="The factor is gone.")
class MfaFactorRemoved:
    removed_factor_id: strawberry.ID
    mfa_enabled: bool = strawberry.field(description="False when it was the last factor.")


@strawberry.type(description="The session's authentication is renewed.")
class Reauthenticated:
    until: datetime = strawberry.field(
        description="Until when operations that need a recent authentication are allowed."
    )
    auth: AuthPayload = strawberry.field(
        description="Fresh tokens for this session, with the new `auth_time`; its older "
        "refresh tokens are spent."
    )


@expected(errors.InvalidMfaCode)
@strawberry.type(description="The code is wrong, already used, or older than one already used.")
class InvalidMfaCode(Error):
    pass


@expected(errors.MfaFactorNotFound)
@strawberry.type(description="No such factor among the caller's own.")
class MfaFactorNotFound(Error):
    pass


@strawberry.input
class VerifyMfaInput:
    mfa_token: str
    method: MfaMethod
    code: str


@strawberry.input
class ConfirmTotpEnrollmentInput:
    factor_id: strawberry.ID
    code: str


@strawberry.input
class ReauthenticateInput:
    password: str | None = None
    method: MfaMethod | None = None
    code: str | None = None


VerifyMfaResult = Annotated[
    AuthPayload | InvalidMfaCode | InvalidToken | RateLimited | AccountDisabled,
    strawberry.union("VerifyMfaResult"),
]
StartTotpEnrollmentResult = Annotated[
    TotpEnrollment | ReauthenticationRequired | RateLimited,
    strawberry.union("StartTotpEnrollmentResult"),
]
ConfirmTotpEnrollmentResult = Annotated[
    MfaEnabled | InvalidMfaCode | RateLimited, strawberry.union("ConfirmTotpEnrollmentResult")
]
RegenerateRecoveryCodesResult = Annotated[
    RecoveryCodes | ReauthenticationRequired, strawberry.union("RegenerateRecoveryCodesResult")
]
RemoveMfaFactorResult = Annotated[
    MfaFactorRemoved | MfaFactorNotFound | ReauthenticationRequired,
    strawberry.union("RemoveMfaFactorResult"),
]
ReauthenticateResult = Annotated[
    Reauthenticated | InvalidCredentials | InvalidMfaCode | RateLimited,
    strawberry.union("ReauthenticateResult"),
]


@extends_mutation
@strawberry.type
class MfaMutations:
    @mutation("Finish a login that answered MfaRequired with a second-factor code.")
    async def verify_mfa(self, info: Info, input: VerifyMfaInput) -> VerifyMfaResult:
        context = info.context
        result = await in_worker(
            context.use(MfaService).verify,
            input.mfa_token,
            input.method.value,
            input.code,
            context.client,
        )
        return AuthPayload.issued(context, result)

    @mutation(
        "Begin adding a TOTP factor: a new secret, pending until confirmTotpEnrollment.",
        requires=STEP_UP,
    )
    async def start_totp_enrollment(self, info: Info) -> StartTotpEnrollmentResult:
        context = info.context
        enrollment = await in_worker(
            context.use(MfaService).start_totp_enrollment, context.require_viewer()
        )
        return TotpEnrollment(
            factor_id=strawberry.ID(enrollment.factor_id),
            secret=enrollment.secret,
            otpauth_uri=enrollment.otpauth_uri,
            qr_code_svg=enrollment.qr_code_svg,
        )

    @mutation(
        "Confirm a pending TOTP factor with a code from the app. Turning MFA on ends every "
        "other session below aal2 and returns the recovery codes once.",
        requires=[Authenticated()],
    )
    async def confirm_totp_enrollment(
        self, info: Info, input: ConfirmTotpEnrollmentInput
    ) -> ConfirmTotpEnrollmentResult:
        context = info.context
        enabled: MfaEnabledResult = await in_worker(
            context.use(MfaService).confirm_totp_enrollment,
            context.require_viewer(),
            str(input.factor_id),
            input.code,
            context.client,
        )
        return MfaEnabled(
            recovery_codes=enabled.recovery_codes, auth=AuthPayload.issued(context, enabled.auth)
        )

    @mutation("Replace every recovery code with ten new ones.", requires=STEP_UP)
    async def regenerate_recovery_codes(self, info: Info) -> RegenerateRecoveryCodesResult:
        context = info.context
        codes = await in_worker(
            context.use(MfaService).regenerate_recovery_codes,
            context.require_viewer(),
            context.client,
        )
        return RecoveryCodes(codes=codes)

    @mutation("Remove a factor; removing the last one turns MFA off.", requires=STEP_UP)
    async def remove_mfa_factor(self, info: Info, id: strawberry.ID) -> RemoveMfaFactorResult:
        context = info.context
        still_on = await in_worker(
            context.use(MfaService).remove_factor, context.require_viewer(), str(id), context.client
        )
        return MfaFactorRemoved(removed_factor_id=id, mfa_enabled=still_on)

    @mutation(
        "Prove it is still you, for operations that need a recent authentication: the "
        "password without MFA, a second-factor code with it; a passkey (`method: PASSKEY`) "
        "either way. `ReauthenticationRequired` says which the account can give.",
        requires=[Authenticated()],
    )
    async def reauthenticate(self, info: Info, input: ReauthenticateInput) -> ReauthenticateResult:
        context = info.context
        # It may check the password: a hash, so through the hash lane.
        renewed = await in_hash_lane(
            context.state.hash_lane,
            context.use(MfaService).reauthenticate,
            context.require_viewer(),
            input.password,
            input.method.value if input.method is not None else None,
            input.code,
            context.client,
        )
        return Reauthenticated(until=renewed.until, auth=AuthPayload.issued(context, renewed.auth))
