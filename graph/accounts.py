"""Signup and login: the mutations that open a session with a password."""

from __future__ import annotations

from typing import Annotated

import strawberry

from auth.service import AuthService, MfaChallenge
from graph.context import Info
from graph.features import extends_mutation
from graph.mfa import MfaRequired
from graph.runner import in_hash_lane, mutation
from graph.types import (
    AccountDisabled,
    AuthPayload,
    EmailTaken,
    InvalidCredentials,
    MethodNotEnabled,
    RateLimited,
    ValidationError,
)


@strawberry.input
class SignupInput:
    email: str
    password: str


@strawberry.input
class LoginInput:
    email: str
    password: str


SignupResult = Annotated[
    AuthPayload | EmailTaken | ValidationError | RateLimited, strawberry.union("SignupResult")
]
LoginResult = Annotated[
    AuthPayload
    | MfaRequired
    | InvalidCredentials
    | RateLimited
    | MethodNotEnabled
    | AccountDisabled,
    strawberry.union("LoginResult"),
]


@extends_mutation
@strawberry.type
class AccountMutations:
    @mutation("Create an account and log it in.")
    async def signup(self, info: Info, input: SignupInput) -> SignupResult:
        context = info.context
        result = await in_hash_lane(
            context.state.hash_lane,
            context.use(AuthService).signup,
            input.email,
            input.password,
            context.client,
        )
        context.state.wake_mail_sender()  # the verification message was queued with the account
        return AuthPayload.issued(context, result)

    @mutation(
        "Log in with email and password; opens a new session, or, for an account with MFA, "
        "answers MfaRequired (finish with verifyMfa)."
    )
    async def login(self, info: Info, input: LoginInput) -> LoginResult:
        context = info.context
        result = await in_hash_lane(
            context.state.hash_lane,
            context.use(AuthService).login,
            input.email,
            input.password,
            context.client,
        )
        if isinstance(result, MfaChallenge):
            # The password was right; no session exists until verifyMfa.
            return MfaRequired.from_challenge(result)
        return AuthPayload.issued(context, result)
