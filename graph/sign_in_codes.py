"""One-time email sign-in codes: ``requestSignInCode`` and ``signInWithCode``."""

from __future__ import annotations

from typing import Annotated

import strawberry

from auth.service import MfaChallenge
from auth.sign_in_codes import SIGN_IN_CODE_SECONDS, SignInCodeService
from graph.accounts import LoginResult
from graph.context import Info
from graph.features import extends_mutation
from graph.lifecycle import mail_after_response
from graph.mfa import MfaRequired
from graph.root import AppState
from graph.runner import in_worker, mutation
from graph.types import AuthPayload, MethodNotEnabled, RateLimited, ValidationError

CODE_SENT = (
    "If an account uses this address, a sign-in code is on its way. It works once and "
    "expires in 10 minutes."
)


@strawberry.type(
    description=(
        "The request was taken. The same answer, as fast, whether or not the address has an "
        "account; only an account's owner gets a code."
    )
)
class SignInCodeSent:
    message: str
    expires_in_seconds: int = strawberry.field(description="How long a mailed code is valid.")


@strawberry.input
class SignInWithCodeInput:
    email: str
    code: str = strawberry.field(description="The 8 digits from the message (spaces ignored).")


RequestSignInCodeResult = Annotated[
    SignInCodeSent | ValidationError | RateLimited | MethodNotEnabled,
    strawberry.union("RequestSignInCodeResult"),
]


def _send_code(state: AppState, address: str) -> None:
    with state.database() as database:
        state.service(SignInCodeService, database).send_code(address)


@extends_mutation
@strawberry.type
class SignInCodeMutations:
    @mutation(
        "Mail a one-time sign-in code (8 digits, 10 minutes, single use) to an account's "
        "address. The answer is the same, and as fast, whether or not the address has one."
    )
    async def request_sign_in_code(self, info: Info, email: str) -> RequestSignInCodeResult:
        context = info.context
        # Syntax and rate limits only: neither says anything about who has an account.
        address = await in_worker(
            context.use(SignInCodeService).accept_request, email, context.client
        )
        # As requestPasswordReset: the lookup and the mail run after the answer is sent.
        assert context.background_tasks is not None
        context.background_tasks.add_task(
            mail_after_response, context.state, _send_code, address, "sign-in code request"
        )
        return SignInCodeSent(message=CODE_SENT, expires_in_seconds=SIGN_IN_CODE_SECONDS)

    @mutation(
        "Sign in with a mailed code: a new aal1 session (the address becomes verified), or, "
        "for an account with MFA, MfaRequired (finish with verifyMfa). Five wrong codes end it."
    )
    async def sign_in_with_code(self, info: Info, input: SignInWithCodeInput) -> LoginResult:
        context = info.context
        result = await in_worker(
            context.use(SignInCodeService).sign_in, input.email, input.code, context.client
        )
        if isinstance(result, MfaChallenge):
            return MfaRequired.from_challenge(result)
        return AuthPayload.issued(context, result)
