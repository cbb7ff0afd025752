"""``Query.signInMethods``: what this server offers, for clients to build their screens."""

from __future__ import annotations

import strawberry

from graph.context import Info
from graph.features import extends_query
from graph.types import MfaMethod


@strawberry.type(description="The sign-in methods this server offers.")
class SignInMethods:
    password: bool = strawberry.field(description="Email and password (`login`).")
    passkeys: bool = strawberry.field(
        description="Passkeys (`startPasskeyLogin`); off without WEBAUTHN_RP_ID and "
        "WEBAUTHN_ORIGINS in production."
    )
    email_codes: bool = strawberry.field(
        description="One-time codes by email (`requestSignInCode`)."
    )
    mfa: list[MfaMethod] = strawberry.field(
        description="The second-factor methods `verifyMfa` takes."
    )


@extends_query
@strawberry.type
class SignInMethodsQuery:
    @strawberry.field(description="What this server offers: the SPA builds its screens from it.")
    def sign_in_methods(self, info: Info) -> SignInMethods:
        settings = info.context.state.toolkit.settings
        mfa = [MfaMethod.TOTP, MfaMethod.RECOVERY_CODE]
        if settings.passkeys_enabled:
            mfa.append(MfaMethod.PASSKEY)
        return SignInMethods(
            password=True,
            passkeys=settings.passkeys_enabled,
            email_codes=settings.sign_in_codes_enabled,
            mfa=mfa,
        )
