"""Social sign-in: the providers the SPA may show, starting and completing a provider's
sign-in, and linking or unlinking the identities of an account (auth/oauth.py)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from auth import oauth
from auth.oauth import STATE_SECONDS, OAuthService
from auth.service import MfaChallenge
from graph.context import Info
from graph.cookies import OAUTH_COOKIE, set_oauth_cookie
from graph.errors import Error, expected
from graph.features import extends_mutation, extends_query

# Linking and unlinking change the ways into the account: the step-up of factor changes.
from graph.mfa import STEP_UP, MfaRequired
from graph.paths import GRAPHQL_PATH
from graph.runner import in_worker, mutation, viewer_or_refuse
from graph.types import (
    AccountDisabled,
    AuthPayload,
    Identity,
    LastSignInMethod,
    RateLimited,
    ReauthenticationRequired,
    ValidationError,
)


@strawberry.type(description="A configured sign-in provider: a button the SPA may show.")
class OAuthProvider:
    id: strawberry.ID
    name: str = strawberry.field(description="The button label (OAUTH_<ID>_NAME).")


@strawberry.enum(description="What a provider's sign-in is for.")
class OAuthIntent(Enum):
    SIGN_IN = "sign_in"
    LINK = "link"


@strawberry.input
class StartOAuthInput:
    provider: strawberry.ID
    redirect_uri: str = strawberry.field(
        description="The SPA's callback URL: exactly one of OAUTH_REDIRECT_URIS."
    )
    intent: OAuthIntent | None = OAuthIntent.SIGN_IN


@strawberry.input
class CompleteOAuthInput:
    provider: strawberry.ID
    code: str
    state: str
    redirect_uri: str


@strawberry.type(
    description="Send the browser here. The attempt is bound to this browser by an HttpOnly "
    "cookie set with this answer."
)
class OAuthRedirect:
    authorization_url: str
    expires_at: datetime


@strawberry.type(description="The provider account is linked to this account.")
class IdentityLinked:
    identity: Identity


@strawberry.type(description="The identity is no longer linked.")
class IdentityUnlinked:
    unlinked_identity_id: strawberry.ID


@expected(oauth.AccountLinkRequired)
@strawberry.type(
    description="An account has this email, but it cannot be linked automatically (the "
    "provider or authgraph has not verified the address): log in to it and link from there."
)
class AccountLinkRequired(Error):
    email: str

    @classmethod
    def from_error(cls, exc: oauth.AccountLinkRequired) -> AccountLinkRequired:
        return cls(message=exc.public_message, email=exc.email)


@expected(oauth.InvalidOAuthState)
@strawberry.type(
    description="The attempt is unknown, spent, expired, or not this browser's, provider's or "
    "redirect URI's; or the provider refused the code. Start again."
)
class InvalidOAuthState(Error):
    pass


@expected(oauth.OAuthProviderError)
@strawberry.type(description="The provider is unreachable, too slow, or answered unexpectedly.")
class OAuthProviderError(Error):
    pass


@expected(oauth.OAuthEmailNotVerified)
@strawberry.type(
    description="The provider gave no verified email for a new account: none was created."
)
class OAuthEmailNotVerified(Error):
    pass


@expected(oauth.IdentityTaken)
@strawberry.type(description="That provider account is linked to another account.")
class IdentityTaken(Error):
    pass


@expected(oauth.IdentityNotFound)
@strawberry.type(description="No such identity among the caller's own.")
class IdentityNotFound(Error):
    pass


StartOAuthSignInResult = Annotated[
    OAuthRedirect | ValidationError | RateLimited | OAuthProviderError,
    strawberry.union("StartOAuthSignInResult"),
]
CompleteOAuthSignInResult = Annotated[
    AuthPayload
    | MfaRequired
    | AccountLinkRequired
    | InvalidOAuthState
    | OAuthProviderError
    | RateLimited
    | OAuthEmailNotVerified
    | AccountDisabled,
    strawberry.union("CompleteOAuthSignInResult"),
]
LinkIdentityResult = Annotated[
    IdentityLinked
    | IdentityTaken
    | InvalidOAuthState
    | ReauthenticationRequired
    | OAuthProviderError
    | RateLimited,
    strawberry.union("LinkIdentityResult"),
]
UnlinkIdentityResult = Annotated[
    IdentityUnlinked | IdentityNotFound | LastSignInMethod | ReauthenticationRequired,
    strawberry.union("UnlinkIdentityResult"),
]


@extends_query
@strawberry.type
class OAuthQueries:
    @strawberry.field(description="The sign-in providers configured (OAUTH_PROVIDERS), in order.")
    async def oauth_providers(self, info: Info) -> list[OAuthProvider]:
        providers = info.context.state.toolkit.oauth.all()
        return [OAuthProvider(id=strawberry.ID(p.id), name=p.config.label) for p in providers]


@extends_mutation
@strawberry.type
class OAuthMutations:
    @mutation(
        "Begin a provider's sign-in (or, with intent LINK and a bearer token, linking): the URL "
        "to send the browser to. Sets the HttpOnly cookie that completeOAuthSignIn needs."
    )
    async def start_o_auth_sign_in(
        self, info: Info, input: StartOAuthInput
    ) -> StartOAuthSignInResult:
        context = info.context
        viewer = await viewer_or_refuse(context) if input.intent is OAuthIntent.LINK else None
        started = await in_worker(
            context.use(OAuthService).start,
            str(input.provider),
            input.redirect_uri,
            "link" if input.intent is OAuthIntent.LINK else "sign_in",
            context.client,
            browser_secret=context.http_request.cookies.get(OAUTH_COOKIE),
            viewer=viewer,
        )
        assert context.response is not None  # the HTTP router always gives one
        set_oauth_cookie(
            context.response, started.browser_secret, STATE_SECONDS, context.settings, GRAPHQL_PATH
        )
        return OAuthRedirect(
            authorization_url=started.authorization_url, expires_at=started.expires_at
        )

    @mutation(
        "Finish a provider's sign-in with the code and state it returned to the SPA: a "
        "session, MfaRequired for an account with MFA, or AccountLinkRequired."
    )
    async def complete_o_auth_sign_in(
        self, info: Info, input: CompleteOAuthInput
    ) -> CompleteOAuthSignInResult:
        context = info.context
        result = await in_worker(
            context.use(OAuthService).complete,
            str(input.provider),
            input.code,
            input.state,
            input.redirect_uri,
            context.client,
            browser_secret=context.http_request.cookies.get(OAUTH_COOKIE),
        )
        if isinstance(result, MfaChallenge):
            return MfaRequired.from_challenge(result)
        return AuthPayload.issued(context, result)

    @mutation(
        "Link the provider account of an attempt started with intent LINK to the caller's account.",
        requires=STEP_UP,
    )
    async def link_identity(self, info: Info, input: CompleteOAuthInput) -> LinkIdentityResult:
        context = info.context
        identity = await in_worker(
            context.use(OAuthService).link,
            context.require_viewer(),
            str(input.provider),
            input.code,
            input.state,
            input.redirect_uri,
            context.client,
            browser_secret=context.http_request.cookies.get(OAUTH_COOKIE),
        )
        return IdentityLinked(identity=Identity.from_record(identity))

    @mutation(
        "Unlink one of the caller's identities; refused for the account's last way in.",
        requires=STEP_UP,
    )
    async def unlink_identity(self, info: Info, id: strawberry.ID) -> UnlinkIdentityResult:
        context = info.context
        await in_worker(
            context.use(OAuthService).unlink, context.require_viewer(), str(id), context.client
        )
        return IdentityUnlinked(unlinked_identity_id=id)
