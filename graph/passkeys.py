"""Passkeys (WebAuthn): registration with step-up, first-factor login, rename and remove.

The options travel as JSON for ``PublicKeyCredential.parseCreationOptionsFromJSON`` /
``parseRequestOptionsFromJSON``, and the browser's answer comes back as the JSON of
``PublicKeyCredential.toJSON()``. A passkey as second factor goes through ``verifyMfa``
(graph/mfa.py) with ``method: PASSKEY``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from auth.passkeys import (
    InvalidPasskeyResponse as InvalidPasskeyResponseError,
)
from auth.passkeys import (
    PasskeyNotFound as PasskeyNotFoundError,
)
from auth.passkeys import (
    PasskeyOptions as Options,
)
from auth.passkeys import (
    PasskeyService,
)
from auth.passkeys import (
    TooManyPasskeys as TooManyPasskeysError,
)
from auth.service import MfaChallenge
from graph.accounts import LoginResult
from graph.context import Info
from graph.errors import Error, expected
from graph.features import extends_mutation
from graph.lifecycle import InvalidToken
from graph.mfa import STEP_UP, MfaRequired
from graph.runner import Authenticated, in_worker, mutation
from graph.types import (
    AuthPayload,
    LastSignInMethod,
    MethodNotEnabled,
    Passkey,
    RateLimited,
    ReauthenticationRequired,
    ValidationError,
)


@strawberry.type(description="Options for the browser's WebAuthn call, for one ceremony.")
class PasskeyOptions:
    ceremony_id: strawberry.ID = strawberry.field(
        description="Send it back with the browser's answer. Single use, 5 minutes."
    )
    public_key_json: str = strawberry.field(
        description="JSON for `PublicKeyCredential.parseCreationOptionsFromJSON` "
        "(registration) or `parseRequestOptionsFromJSON` (login)."
    )
    expires_at: datetime

    @classmethod
    def from_options(cls, options: Options) -> PasskeyOptions:
        return cls(
            ceremony_id=strawberry.ID(options.ceremony_id),
            public_key_json=options.public_key_json,
            expires_at=options.expires_at,
        )


@strawberry.type(description="The passkey is registered to the account.")
class PasskeyAdded:
    passkey: Passkey


@strawberry.type(description="The passkey's new name.")
class PasskeyRenamed:
    passkey: Passkey


@strawberry.type(description="The passkey is gone; it no longer signs in.")
class PasskeyRemoved:
    removed_passkey_id: strawberry.ID


@expected(InvalidPasskeyResponseError)
@strawberry.type(
    description="The browser's answer did not verify (origin, relying party, challenge, "
    "signature), or the credential is registered already."
)
class InvalidPasskeyResponse(Error):
    pass


@expected(PasskeyNotFoundError)
@strawberry.type(description="No such passkey among the caller's own.")
class PasskeyNotFound(Error):
    pass


@expected(TooManyPasskeysError)
@strawberry.type(description="The account has as many passkeys as MAX_PASSKEYS_PER_USER allows.")
class TooManyPasskeys(Error):
    limit: int

    @classmethod
    def from_error(cls, exc: TooManyPasskeysError) -> TooManyPasskeys:
        return cls(message=exc.public_message, limit=exc.limit)


@strawberry.input
class StartPasskeyRegistrationInput:
    name: str | None = strawberry.field(
        default=None, description='What to call the passkey ("Laptop"); "Passkey" if omitted.'
    )


@strawberry.input
class FinishPasskeyRegistrationInput:
    ceremony_id: strawberry.ID
    credential: str = strawberry.field(description="The JSON of `PublicKeyCredential.toJSON()`.")


@strawberry.input
class StartPasskeyLoginInput:
    email: str | None = strawberry.field(
        default=None,
        description="Omitted: a discoverable (usernameless) login. Given: only that "
        "account's passkeys answer; the options look the same whether or not it has any.",
    )


@strawberry.input
class FinishPasskeyLoginInput:
    ceremony_id: strawberry.ID
    credential: str = strawberry.field(description="The JSON of `PublicKeyCredential.toJSON()`.")


@strawberry.input
class RenamePasskeyInput:
    id: strawberry.ID
    name: str


StartPasskeyRegistrationResult = Annotated[
    PasskeyOptions
    | ReauthenticationRequired
    | RateLimited
    | MethodNotEnabled
    | TooManyPasskeys
    | ValidationError,
    strawberry.union("StartPasskeyRegistrationResult"),
]
FinishPasskeyRegistrationResult = Annotated[
    PasskeyAdded | InvalidPasskeyResponse | InvalidToken | MethodNotEnabled | TooManyPasskeys,
    strawberry.union("FinishPasskeyRegistrationResult"),
]
StartPasskeyLoginResult = Annotated[
    PasskeyOptions | RateLimited | MethodNotEnabled | ValidationError,
    strawberry.union("StartPasskeyLoginResult"),
]
RenamePasskeyResult = Annotated[
    PasskeyRenamed | PasskeyNotFound | ValidationError, strawberry.union("RenamePasskeyResult")
]
RemovePasskeyResult = Annotated[
    PasskeyRemoved | PasskeyNotFound | ReauthenticationRequired | LastSignInMethod,
    strawberry.union("RemovePasskeyResult"),
]


@extends_mutation
@strawberry.type
class PasskeyMutations:
    @mutation(
        "Begin adding a passkey to the caller's account (its existing ones excluded). Needs a "
        "recent authentication at the user's highest level.",
        requires=STEP_UP,
    )
    async def start_passkey_registration(
        self, info: Info, input: StartPasskeyRegistrationInput | None = None
    ) -> StartPasskeyRegistrationResult:
        context = info.context
        options = await in_worker(
            context.use(PasskeyService).start_registration,
            context.require_viewer(),
            input.name if input is not None else None,
        )
        return PasskeyOptions.from_options(options)

    @mutation(
        "Finish adding a passkey with the browser's answer to startPasskeyRegistration.",
        requires=[Authenticated()],
    )
    async def finish_passkey_registration(
        self, info: Info, input: FinishPasskeyRegistrationInput
    ) -> FinishPasskeyRegistrationResult:
        context = info.context
        record = await in_worker(
            context.use(PasskeyService).finish_registration,
            context.require_viewer(),
            str(input.ceremony_id),
            input.credential,
            context.client,
        )
        return PasskeyAdded(passkey=Passkey.from_record(record))

    @mutation(
        "Begin a passkey login: without an email a discoverable one (the browser offers the "
        "user's passkeys), with one for that account only."
    )
    async def start_passkey_login(
        self, info: Info, input: StartPasskeyLoginInput | None = None
    ) -> StartPasskeyLoginResult:
        context = info.context
        options = await in_worker(
            context.use(PasskeyService).start_login,
            input.email if input is not None else None,
            context.client,
        )
        return PasskeyOptions.from_options(options)

    @mutation(
        "Finish a passkey login with the browser's answer: a new aal2 session (user "
        "verification is required). An unknown passkey answers InvalidCredentials."
    )
    async def finish_passkey_login(self, info: Info, input: FinishPasskeyLoginInput) -> LoginResult:
        context = info.context
        result = await in_worker(
            context.use(PasskeyService).finish_login,
            str(input.ceremony_id),
            input.credential,
            context.client,
        )
        if isinstance(result, MfaChallenge):  # not at aal2: never, kept for the union's sake
            return MfaRequired.from_challenge(result)
        return AuthPayload.issued(context, result)

    @mutation("Rename one of the caller's passkeys.", requires=[Authenticated()])
    async def rename_passkey(self, info: Info, input: RenamePasskeyInput) -> RenamePasskeyResult:
        context = info.context
        record = await in_worker(
            context.use(PasskeyService).rename,
            context.require_viewer(),
            str(input.id),
            input.name,
        )
        return PasskeyRenamed(passkey=Passkey.from_record(record))

    @mutation(
        "Remove one of the caller's passkeys; refused (LastSignInMethod) when it is the "
        "account's last way to sign in. Needs a recent authentication.",
        requires=STEP_UP,
    )
    async def remove_passkey(self, info: Info, id: strawberry.ID) -> RemovePasskeyResult:
        context = info.context
        await in_worker(
            context.use(PasskeyService).remove, context.require_viewer(), str(id), context.client
        )
        return PasskeyRemoved(removed_passkey_id=id)
