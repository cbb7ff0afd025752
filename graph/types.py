"""GraphQL types that several features share: users, sessions, tokens and common failures.

Each feature's own types stand beside its resolvers (graph/accounts.py, sessions.py,
lifecycle.py). Types are built from domain records by explicit conversion: only the fields
named here reach the schema, so a column added to a table (a password hash, say) stays
invisible until someone writes it into one of these types on purpose.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from enum import Enum

import strawberry

from auth import errors
from auth.mfa import MfaService
from auth.oauth import OAuthService
from auth.passkeys import PasskeyService
from auth.ports import IdentityRecord, MfaFactorRecord, PasskeyRecord, SessionRecord, UserRecord
from auth.service import AuthResult, AuthService
from auth.ways_in import has_password
from graph.context import Context, Info
from graph.cookies import remember_device
from graph.errors import Error, expected
from graph.events import SecurityEventConnection, read_events
from graph.runner import in_session_worker


@strawberry.type(description="A session: one login on one device, ended by logout or revocation.")
class Session:
    id: strawberry.ID
    current: bool = strawberry.field(description="Whether this is the caller's own session.")
    created_at: datetime
    last_used_at: datetime = strawberry.field(
        description="When the session last logged in or refreshed its access token."
    )
    expires_at: datetime
    user_agent: str | None
    ip_address: str | None
    aal: int = strawberry.field(
        description="Authenticator assurance level: 1 after a password, 2 with a second factor."
    )
    authenticated_at: datetime = strawberry.field(
        description="When the user last proved who they are in this session (login, "
        "`verifyMfa`, `reauthenticate`)."
    )

    @classmethod
    def from_record(cls, record: SessionRecord, *, current_session_id: str | None) -> Session:
        return cls(
            aal=record.aal,
            authenticated_at=record.authenticated_at,
            id=strawberry.ID(record.id),
            current=record.id == current_session_id,
            created_at=record.created_at,
            last_used_at=record.last_used_at,
            expires_at=record.expires_at,
            user_agent=record.user_agent,
            ip_address=record.ip_address,
        )


@strawberry.enum(description="A way to answer the second step of a login or a step-up.")
class MfaMethod(Enum):
    TOTP = "totp"
    RECOVERY_CODE = "recovery_code"
    PASSKEY = "passkey"


@strawberry.type(description="A confirmed second factor.")
class MfaFactor:
    id: strawberry.ID
    kind: MfaMethod
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(
        description="When a code of this factor was last accepted."
    )

    @classmethod
    def from_record(cls, record: MfaFactorRecord) -> MfaFactor:
        return cls(
            id=strawberry.ID(record.id),
            kind=MfaMethod(record.kind),
            created_at=record.created_at,
            last_used_at=record.last_used_at,
        )


@strawberry.type(description="A passkey (WebAuthn credential) of the account.")
class Passkey:
    id: strawberry.ID
    name: str
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(
        description="When it last signed in or answered a second step."
    )
    backed_up: bool = strawberry.field(
        description="Whether the authenticator says the key is backed up (synced to other devices)."
    )

    @classmethod
    def from_record(cls, record: PasskeyRecord) -> Passkey:
        return cls(
            id=strawberry.ID(record.id),
            name=record.name,
            created_at=record.created_at,
            last_used_at=record.last_used_at,
            backed_up=record.backed_up,
        )


def _read_passkeys(context: Context, user_id: str) -> list[PasskeyRecord]:
    """The user's passkeys, in a database session of its own (see :func:`_read_mfa`)."""
    with context.state.database() as database:
        return list(context.state.service(PasskeyService, database).passkeys_of(user_id))


@strawberry.type(description="An account at a sign-in provider, linked to this account.")
class Identity:
    id: strawberry.ID
    provider: strawberry.ID = strawberry.field(description="The provider's id (oauthProviders).")
    email: str | None = strawberry.field(
        description="The email the provider last gave; shown only, never used to sign in."
    )
    linked_at: datetime
    last_used_at: datetime | None = strawberry.field(
        description="When the user last signed in with it."
    )

    @classmethod
    def from_record(cls, record: IdentityRecord) -> Identity:
        return cls(
            id=strawberry.ID(record.id),
            provider=strawberry.ID(record.provider),
            email=record.email,
            linked_at=record.linked_at,
            last_used_at=record.last_used_at,
        )


def _read_identities(context: Context, user_id: str) -> list[IdentityRecord]:
    """The user's identities, in a database session of its own (see :func:`_read_mfa`)."""
    with context.state.database() as database:
        return list(context.state.service(OAuthService, database).identities(user_id))


def _read_mfa(context: Context, user_id: str) -> tuple[list[MfaFactorRecord], int]:
    """The user's factors and unused recovery codes, in a database session of its own.

    Of its own: sibling fields (``sessions``) run in other worker threads at the same time,
    and one ORM session cannot serve two threads.
    """
    with context.state.database() as database:
        mfa = context.state.service(MfaService, database)
        return list(mfa.factors(user_id)), mfa.recovery_codes_left(user_id)


@strawberry.type(description="An account.")
class User:
    id: strawberry.ID
    email: str
    created_at: datetime
    email_verified: bool = strawberry.field(
        description="Whether the owner proved the address by opening a link sent to it."
    )
    display_name: str | None
    has_password: bool = strawberry.field(
        description="Whether the account has a password (it may sign in other ways only)."
    )
    # The session through which the caller sees this user; only the owner ever does.
    session_id: strawberry.Private[str]
    # The MFA fields' one read, shared by whichever of them the operation asks for.
    mfa_read: strawberry.Private[asyncio.Future[tuple[list[MfaFactorRecord], int]] | None] = None

    def _mfa(self, context: Context) -> asyncio.Future[tuple[list[MfaFactorRecord], int]]:
        if self.mfa_read is None:
            self.mfa_read = asyncio.ensure_future(
                in_session_worker(context, _read_mfa, context, self.id)
            )
        return self.mfa_read

    @strawberry.field(description="The caller's own live sessions, most recently used first.")
    async def sessions(self, info: Info) -> list[Session]:
        records = await in_session_worker(
            info.context, info.context.use(AuthService).list_sessions, self.id
        )
        return [Session.from_record(r, current_session_id=self.session_id) for r in records]

    @strawberry.field(
        description="The account's security events (sign-ins, sign-outs, credential and "
        "factor changes), newest first; `first` from 1 to 100."
    )
    async def security_events(
        self, info: Info, first: int | None = 20, after: str | None = strawberry.UNSET
    ) -> SecurityEventConnection:
        after = after or None
        page = await in_session_worker(
            info.context, read_events, info.context, self.id, 20 if first is None else first, after
        )
        return SecurityEventConnection.from_page(
            page, current_session_id=self.session_id, after=after
        )

    @strawberry.field(description="Whether logins need a second factor.")
    async def mfa_enabled(self, info: Info) -> bool:
        factors, _ = await self._mfa(info.context)
        return bool(factors)

    @strawberry.field(description="The confirmed second factors, oldest first.")
    async def mfa_factors(self, info: Info) -> list[MfaFactor]:
        factors, _ = await self._mfa(info.context)
        return [MfaFactor.from_record(f) for f in factors]

    @strawberry.field(description="The account's passkeys, oldest first.")
    async def passkeys(self, info: Info) -> list[Passkey]:
        records = await in_session_worker(info.context, _read_passkeys, info.context, self.id)
        return [Passkey.from_record(r) for r in records]

    @strawberry.field(description="The sign-in providers' accounts linked to this one.")
    async def identities(self, info: Info) -> list[Identity]:
        records = await in_session_worker(info.context, _read_identities, info.context, self.id)
        return [Identity.from_record(r) for r in records]

    @strawberry.field(description="Unused recovery codes: warn the user when few are left.")
    async def recovery_codes_left(self, info: Info) -> int:
        _, left = await self._mfa(info.context)
        return left

    @classmethod
    def from_record(cls, record: UserRecord, *, session_id: str) -> User:
        return cls(
            id=strawberry.ID(record.id),
            email=record.email,
            created_at=record.created_at,
            email_verified=record.email_verified,
            display_name=record.display_name,
            has_password=has_password(record),
            session_id=session_id,
        )


@strawberry.type(description="Tokens for a newly authenticated session.")
class AuthPayload:
    access_token: str = strawberry.field(
        description="A short-lived JWT, sent as `Authorization: Bearer <accessToken>`."
    )
    token_type: str = strawberry.field(description='Always "Bearer".')
    expires_at: datetime = strawberry.field(description="When the access token expires.")
    user: User
    refresh_token: str | None = strawberry.field(
        description=(
            "Exchange it with `refreshToken` for new tokens. Single use. "
            "Null in cookie mode, where it travels in an HttpOnly cookie instead."
        )
    )
    refresh_token_expires_at: datetime | None
    csrf_token: str | None = strawberry.field(
        description=(
            "Cookie mode only: echo it in the `X-CSRF-Token` header on `refreshToken` and "
            "`logout`. Stable for the life of the session."
        )
    )

    @classmethod
    def issued(cls, context: Context, result: AuthResult) -> AuthPayload:
        """The payload of a new or rotated session, its tokens handed over by the transport."""
        transport = context.transport
        transport.deliver(context.response, result)
        if context.response is not None:
            remember_device(
                context.response, context.http_request, context.client, context.settings
            )
        return cls.from_result(result, refresh_in_body=transport.refresh_in_body)

    @classmethod
    def from_result(cls, result: AuthResult, *, refresh_in_body: bool) -> AuthPayload:
        """Build the payload: the refresh token, or (cookie mode) the CSRF token, in the body."""
        return cls(
            access_token=result.access.token,
            token_type="Bearer",
            expires_at=result.access.expires_at,
            user=User.from_record(result.user, session_id=result.session.id),
            refresh_token=result.refresh_token if refresh_in_body else None,
            refresh_token_expires_at=result.refresh_expires_at,
            csrf_token=None if refresh_in_body else result.csrf_token,
        )


# -- errors that several features return ---------------------------------------------------


@expected(errors.EmailTaken)
@strawberry.type(description="An account with this email already exists.")
class EmailTaken(Error):
    pass


@expected(errors.InvalidCredentials)
@strawberry.type(description="Unknown email or wrong password; deliberately not told apart.")
class InvalidCredentials(Error):
    pass


@expected(errors.AccountDisabled)
@strawberry.type(
    description=(
        "The credential was right, but an administrator disabled the account. Only ever "
        "answered after the password, code or refresh token was proven right."
    )
)
class AccountDisabled(Error):
    pass


@expected(errors.ValidationFailed)
@strawberry.type(description="An input field is unacceptable.")
class ValidationError(Error):
    field: str = strawberry.field(description="The input field at fault, as sent.")

    @classmethod
    def from_error(cls, exc: errors.ValidationFailed) -> ValidationError:
        return cls(message=exc.public_message, field=exc.field)


@expected(errors.ReauthenticationRequired)
@strawberry.type(
    description=(
        "The operation needs a recent authentication (at aal2 for a user with MFA): call "
        "`reauthenticate`, then try again. Nothing was changed."
    )
)
class ReauthenticationRequired(Error):
    max_age_seconds: int = strawberry.field(
        description="How recent the authentication must be, in seconds."
    )
    methods: list[MfaMethod] = strawberry.field(
        description="The second-factor methods `reauthenticate` takes (the account has MFA); "
        "empty: see `password` and `passkey`."
    )
    password: bool = strawberry.field(
        description="Whether `reauthenticate` takes the password alone: the account has no "
        "MFA and has a password. False with `methods` empty: an account without a password, "
        "which confirms with a passkey (`passkey`) or by signing in again (a new sign-in, with "
        "`requestSignInCode` for instance, is recent)."
    )
    passkey: bool = strawberry.field(
        description="Whether `reauthenticate` takes a passkey (`method: PASSKEY`, as `code` "
        "the assertion JSON of a ceremony started by `startPasskeyLogin(input: {email})`): "
        "the account has one. Without MFA the passkey must verify the user, as at a passkey "
        "login."
    )

    @classmethod
    def from_error(cls, exc: errors.ReauthenticationRequired) -> ReauthenticationRequired:
        return cls(
            message=exc.public_message,
            max_age_seconds=exc.max_age_seconds,
            methods=[MfaMethod(m) for m in exc.methods],
            password=exc.password,
            passkey=exc.passkey,
        )


@expected(errors.RateLimited)
@strawberry.type(
    description=(
        "Too many attempts from this client or for this account; nothing was checked. "
        "Identical whether or not the account exists."
    )
)
class RateLimited(Error):
    retry_after: int = strawberry.field(
        description="Seconds to wait before an attempt can succeed."
    )

    @classmethod
    def from_error(cls, exc: errors.RateLimited) -> RateLimited:
        return cls(message=exc.public_message, retry_after=exc.retry_after)


@expected(errors.LastSignInMethod)
@strawberry.type(
    description=(
        "The change would leave the account with no way to sign in; nothing was changed. "
        "Add another way first."
    )
)
class LastSignInMethod(Error):
    pass


@expected(errors.MethodNotEnabled)
@strawberry.type(
    description="This sign-in method is off on this server (`signInMethods` lists what is on)."
)
class MethodNotEnabled(Error):
    pass
