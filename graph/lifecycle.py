"""Account lifecycle: verification, password reset, email change, profile, deletion."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

import strawberry

from auth import errors
from auth.lifecycle import AccountService
from graph.context import Info
from graph.errors import Error, expected, report_outages
from graph.features import extends_mutation
from graph.root import AppState
from graph.runner import Authenticated, in_hash_lane, in_worker, mutation
from graph.sessions import PASSWORD_STEP_UP
from graph.types import (
    EmailTaken,
    InvalidCredentials,
    RateLimited,
    ReauthenticationRequired,
    User,
    ValidationError,
)

log = logging.getLogger("authgraph.graph")

RESET_REQUESTED = (
    "If an account uses this address, a message with a reset link is on its way. "
    "The link works once and expires soon."
)


@strawberry.type(description="The address is verified.")
class EmailVerified:
    email: str


@strawberry.type(description="A new verification message is on its way; older links stop working.")
class VerificationEmailSent:
    email: str


@strawberry.type(
    description=(
        "The request was taken. The same answer whether or not the address has an account; "
        "only an account's owner gets a message."
    )
)
class PasswordResetRequested:
    message: str


@strawberry.type(description="The password is set and every session of the account has ended.")
class PasswordResetDone:
    message: str


@strawberry.type(
    description=(
        "A confirmation link went to the new address and a notice to the current one; "
        "nothing changes until the link is opened."
    )
)
class EmailChangeRequested:
    new_email: str


@strawberry.type(description="The account's address is now this one, and verified.")
class EmailChanged:
    email: str


@strawberry.type(description="The account, its sessions and its pending links are gone.")
class AccountDeleted:
    deleted_user_id: strawberry.ID


@strawberry.type(description="The profile as saved.")
class ProfileUpdated:
    user: User


@expected(errors.InvalidEmailToken)
@strawberry.type(description="The link is unknown, spent, superseded, expired or for another use.")
class InvalidToken(Error):
    pass


@expected(errors.EmailAlreadyVerified)
@strawberry.type(description="The address is already verified: no message was sent.")
class EmailAlreadyVerified(Error):
    pass


VerifyEmailResult = Annotated[EmailVerified | InvalidToken, strawberry.union("VerifyEmailResult")]
ResendVerificationEmailResult = Annotated[
    VerificationEmailSent | EmailAlreadyVerified | RateLimited,
    strawberry.union("ResendVerificationEmailResult"),
]
RequestPasswordResetResult = Annotated[
    PasswordResetRequested | ValidationError | RateLimited,
    strawberry.union("RequestPasswordResetResult"),
]
ResetPasswordResult = Annotated[
    PasswordResetDone | InvalidToken | ValidationError | RateLimited,
    strawberry.union("ResetPasswordResult"),
]
RequestEmailChangeResult = Annotated[
    EmailChangeRequested
    | InvalidCredentials
    | EmailTaken
    | ValidationError
    | RateLimited
    | ReauthenticationRequired,
    strawberry.union("RequestEmailChangeResult"),
]
ConfirmEmailChangeResult = Annotated[
    EmailChanged | InvalidToken | EmailTaken, strawberry.union("ConfirmEmailChangeResult")
]
DeleteAccountResult = Annotated[
    AccountDeleted | InvalidCredentials | RateLimited | ReauthenticationRequired,
    strawberry.union("DeleteAccountResult"),
]
UpdateProfileResult = Annotated[
    ProfileUpdated | ValidationError, strawberry.union("UpdateProfileResult")
]


@strawberry.input
class ResetPasswordInput:
    token: str = strawberry.field(description="The `token` query parameter of the emailed link.")
    new_password: str


@strawberry.input
class RequestEmailChangeInput:
    new_email: str
    password: str = strawberry.field(description="The current password.")


@strawberry.input
class UpdateProfileInput:
    display_name: str | None = strawberry.field(description="Null or blank clears it.")


def _request_reset(state: AppState, address: str) -> None:
    with state.database() as database:
        state.service(AccountService, database).request_password_reset(address)


async def mail_after_response(
    state: AppState, job: Callable[[AppState, str], object], address: str, what: str
) -> None:
    """Run ``job(state, address)`` (a lookup that may queue mail) in a worker, then wake the
    sender: for a background task added once the answer no longer depends on the lookup.

    An outage is logged once (``graph.outages``), anything else with ``what`` named.
    """
    try:
        await in_worker(job, state, address)
    except errors.ServiceUnavailable as exc:
        report_outages(state.outages, [exc])  # the outage is logged once, not per request
    except Exception:
        log.exception("%s failed", what)
    else:
        state.wake_mail_sender()


AUTHENTICATED = [Authenticated()]


@extends_mutation
@strawberry.type
class AccountLifecycleMutations:
    @mutation("Mark the address verified with the token from the message.")
    async def verify_email(self, info: Info, token: str) -> VerifyEmailResult:
        context = info.context
        email = await in_worker(context.use(AccountService).verify_email, token, context.client)
        return EmailVerified(email=email)

    @mutation("Send a new verification message to the caller's address.", requires=AUTHENTICATED)
    async def resend_verification_email(self, info: Info) -> ResendVerificationEmailResult:
        context = info.context
        email = await in_worker(
            context.use(AccountService).resend_verification,
            context.require_viewer(),
            context.client,
        )
        context.state.wake_mail_sender()
        return VerificationEmailSent(email=email)

    @mutation(
        "Ask for a password reset link. The answer is the same, and as fast, whether or not "
        "the address has an account."
    )
    async def request_password_reset(self, info: Info, email: str) -> RequestPasswordResetResult:
        context = info.context
        # Syntax and rate limits only: neither says anything about who has an account.
        address = await in_worker(
            context.use(AccountService).accept_password_reset, email, context.client
        )
        # The answer does not depend on the lookup, so the lookup runs after the answer is
        # sent (a FastAPI background task: the response is flushed first, and the server
        # waits for the task at shutdown). A known address costs a token and an outbox row
        # (a database write and commit), an unknown one nothing; running after the response
        # keeps that difference out of the response time.
        assert context.background_tasks is not None
        context.background_tasks.add_task(
            mail_after_response, context.state, _request_reset, address, "password reset request"
        )
        return PasswordResetRequested(message=RESET_REQUESTED)

    @mutation(
        "Set a new password with the token from a reset message. Every session of the "
        "account ends; log in again with the new password."
    )
    async def reset_password(self, info: Info, input: ResetPasswordInput) -> ResetPasswordResult:
        context = info.context
        await in_hash_lane(
            context.state.hash_lane,
            context.use(AccountService).reset_password,
            input.token,
            input.new_password,
            context.client,
        )
        return PasswordResetDone(
            message="Your password is set. Log in with it; every other session has ended."
        )

    @mutation(
        "Ask to change the caller's address: needs the password; the new address gets a "
        "confirmation link and the current one a notice. With MFA, also needs a recent aal2 "
        "authentication.",
        requires=PASSWORD_STEP_UP,
    )
    async def request_email_change(
        self, info: Info, input: RequestEmailChangeInput
    ) -> RequestEmailChangeResult:
        context = info.context
        request = await in_hash_lane(
            context.state.hash_lane,
            context.use(AccountService).request_email_change,
            context.require_viewer(),
            input.new_email,
            input.password,
            context.client,
        )
        context.state.wake_mail_sender()
        return EmailChangeRequested(new_email=request.new_email)

    @mutation("Switch to the new address with the token from the confirmation message.")
    async def confirm_email_change(self, info: Info, token: str) -> ConfirmEmailChangeResult:
        context = info.context
        email = await in_worker(
            context.use(AccountService).confirm_email_change, token, context.client
        )
        return EmailChanged(email=email)

    @mutation("Change the caller's profile (display name).", requires=AUTHENTICATED)
    async def update_profile(self, info: Info, input: UpdateProfileInput) -> UpdateProfileResult:
        context = info.context
        viewer = context.require_viewer()
        user = await in_worker(
            context.use(AccountService).update_profile, viewer, input.display_name
        )
        return ProfileUpdated(user=User.from_record(user, session_id=viewer.session.id))

    @mutation(
        "Delete the caller's account, with its sessions and pending links; needs the password. "
        "The address can sign up again afterwards. With MFA, also needs a recent aal2 "
        "authentication.",
        requires=PASSWORD_STEP_UP,
    )
    async def delete_account(self, info: Info, password: str) -> DeleteAccountResult:
        context = info.context
        user_id = await in_hash_lane(
            context.state.hash_lane,
            context.use(AccountService).delete_account,
            context.require_viewer(),
            password,
        )
        context.transport.end(context.response)
        return AccountDeleted(deleted_user_id=strawberry.ID(user_id))
