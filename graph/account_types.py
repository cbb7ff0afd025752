"""GraphQL types of the account lifecycle: payloads, error types, result unions, inputs."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.types import (
    EmailTaken,
    Error,
    InvalidCredentials,
    RateLimited,
    User,
    ValidationError,
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


@strawberry.type(description="The link is unknown, spent, superseded, expired or for another use.")
class InvalidToken(Error):
    pass


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
    EmailChangeRequested | InvalidCredentials | EmailTaken | ValidationError | RateLimited,
    strawberry.union("RequestEmailChangeResult"),
]
ConfirmEmailChangeResult = Annotated[
    EmailChanged | InvalidToken | EmailTaken, strawberry.union("ConfirmEmailChangeResult")
]
DeleteAccountResult = Annotated[
    AccountDeleted | InvalidCredentials | RateLimited, strawberry.union("DeleteAccountResult")
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
