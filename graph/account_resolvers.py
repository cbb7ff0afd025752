"""Account lifecycle mutations: verification, password reset, email change, profile, deletion."""

from __future__ import annotations

import logging
from typing import cast

import strawberry

from auth.errors import AuthError
from auth.lifecycle import AccountService
from db.repositories import SqlUnitOfWork
from graph import account_types as types
from graph.context import Info
from graph.cookies import clear_session_cookies
from graph.errors import to_error_type
from graph.resolvers import GRAPHQL_PATH, authenticate, run_sync
from graph.state import AppState
from graph.types import User

log = logging.getLogger("authgraph.graph")

RESET_REQUESTED = (
    "If an account uses this address, a message with a reset link is on its way. "
    "The link works once and expires soon."
)


def _request_reset(state: AppState, address: str) -> None:
    database = state.session_factory()
    try:
        AccountService(state.toolkit, SqlUnitOfWork(database)).request_password_reset(address)
    finally:
        database.close()


async def _request_reset_in_background(state: AppState, address: str) -> None:
    try:
        await run_sync(lambda: _request_reset(state, address))
    except Exception:
        log.exception("password reset request failed")
    else:
        state.wake_mail_sender()


@strawberry.type
class AccountLifecycleMutations:
    @strawberry.mutation(description="Mark the address verified with the token from the message.")
    async def verify_email(self, info: Info, token: str) -> types.VerifyEmailResult:
        context = info.context
        try:
            email = await run_sync(lambda: context.accounts.verify_email(token))
        except AuthError as exc:
            return cast(types.VerifyEmailResult, to_error_type(exc))
        return types.EmailVerified(email=email)

    @strawberry.mutation(description="Send a new verification message to the caller's address.")
    async def resend_verification_email(self, info: Info) -> types.ResendVerificationEmailResult:
        context = info.context
        authenticate(context)
        try:
            email = await run_sync(
                lambda: context.accounts.resend_verification(
                    context.require_viewer(), context.client
                )
            )
        except AuthError as exc:
            return cast(types.ResendVerificationEmailResult, to_error_type(exc))
        context.state.wake_mail_sender()
        return types.VerificationEmailSent(email=email)

    @strawberry.mutation(
        description=(
            "Ask for a password reset link. The answer is the same, and as fast, whether or not "
            "the address has an account."
        )
    )
    async def request_password_reset(
        self, info: Info, email: str
    ) -> types.RequestPasswordResetResult:
        context = info.context
        try:
            # Syntax and rate limits only: neither says anything about who has an account.
            address = await run_sync(
                lambda: context.accounts.accept_password_reset(email, context.client)
            )
        except AuthError as exc:
            return cast(types.RequestPasswordResetResult, to_error_type(exc))
        # The answer does not depend on the lookup, so the lookup runs after the answer is
        # sent (a FastAPI background task: the response is flushed first, and the server
        # waits for the task at shutdown). A known address costs a token and an outbox row
        # (a database write and commit), an unknown one nothing; running after the response
        # keeps that difference out of the response time.
        assert context.background_tasks is not None
        context.background_tasks.add_task(_request_reset_in_background, context.state, address)
        return types.PasswordResetRequested(message=RESET_REQUESTED)

    @strawberry.mutation(
        description=(
            "Set a new password with the token from a reset message. Every session of the "
            "account ends; log in again with the new password."
        )
    )
    async def reset_password(
        self, info: Info, input: types.ResetPasswordInput
    ) -> types.ResetPasswordResult:
        context = info.context
        try:
            await run_sync(
                lambda: context.accounts.reset_password(
                    input.token, input.new_password, context.client
                )
            )
        except AuthError as exc:
            return cast(types.ResetPasswordResult, to_error_type(exc))
        return types.PasswordResetDone(
            message="Your password is set. Log in with it; every other session has ended."
        )

    @strawberry.mutation(
        description=(
            "Ask to change the caller's address: needs the password; the new address gets a "
            "confirmation link and the current one a notice."
        )
    )
    async def request_email_change(
        self, info: Info, input: types.RequestEmailChangeInput
    ) -> types.RequestEmailChangeResult:
        context = info.context
        authenticate(context)
        try:
            request = await run_sync(
                lambda: context.accounts.request_email_change(
                    context.require_viewer(), input.new_email, input.password, context.client
                )
            )
        except AuthError as exc:
            return cast(types.RequestEmailChangeResult, to_error_type(exc))
        context.state.wake_mail_sender()
        return types.EmailChangeRequested(new_email=request.new_email)

    @strawberry.mutation(
        description="Switch to the new address with the token from the confirmation message."
    )
    async def confirm_email_change(self, info: Info, token: str) -> types.ConfirmEmailChangeResult:
        context = info.context
        try:
            email = await run_sync(lambda: context.accounts.confirm_email_change(token))
        except AuthError as exc:
            return cast(types.ConfirmEmailChangeResult, to_error_type(exc))
        return types.EmailChanged(email=email)

    @strawberry.mutation(description="Change the caller's profile (display name).")
    async def update_profile(
        self, info: Info, input: types.UpdateProfileInput
    ) -> types.UpdateProfileResult:
        context = info.context
        authenticate(context)
        viewer = context.require_viewer()
        try:
            user = await run_sync(
                lambda: context.accounts.update_profile(viewer, input.display_name)
            )
        except AuthError as exc:
            return cast(types.UpdateProfileResult, to_error_type(exc))
        return types.ProfileUpdated(user=User.from_record(user, session_id=viewer.session.id))

    @strawberry.mutation(
        description=(
            "Delete the caller's account, with its sessions and pending links; needs the password. "
            "The address can sign up again afterwards."
        )
    )
    async def delete_account(self, info: Info, password: str) -> types.DeleteAccountResult:
        context = info.context
        authenticate(context)
        try:
            user_id = await run_sync(
                lambda: context.accounts.delete_account(context.require_viewer(), password)
            )
        except AuthError as exc:
            return cast(types.DeleteAccountResult, to_error_type(exc))
        if context.settings.refresh_token_transport == "cookie" and context.response is not None:
            clear_session_cookies(context.response, context.settings, GRAPHQL_PATH)
        return types.AccountDeleted(deleted_user_id=strawberry.ID(user_id))
