"""Social sign-in: OpenID Connect and OAuth 2 providers, and the identities linked to accounts.

The flow for SPAs: :meth:`OAuthService.start` answers the provider's authorization URL and
stores the attempt (``state``, PKCE verifier, nonce), bound to the provider, the redirect URI
and the browser (the hash of a cookie the transport sets); :meth:`OAuthService.complete`
takes the code the provider returned, spends the attempt once, redeems the code and signs in.

Accounts are found by (provider, subject), never by email. A new subject whose email the
provider has verified creates an account (email verified, no password) when no account has
that email, and is linked to the account that has it only if authgraph has verified that
address too; otherwise the answer is :class:`AccountLinkRequired`, and the owner links from
inside the account (``start`` with intent ``link``, then :meth:`OAuthService.link`).

Methods are synchronous (they call the provider over HTTP, bounded by timeouts) and run in a
worker thread. No database connection is held while the provider is called: the attempt is
spent and committed first.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from auth import errors, events
from auth.emails import canonical_email
from auth.guards import mfa_methods, throttle
from auth.oauth_client import (
    CodeRejected,
    ProviderClient,
    ProviderFailure,
    ProviderIdentity,
    log,
)
from auth.oauth_client import new_pkce_verifier as _new_verifier
from auth.ports import (
    Assurance,
    ClientInfo,
    IdentityRecord,
    IdentityRepository,
    NewOAuthState,
    UnitOfWork,
    UserRecord,
)
from auth.service import AuthResult, AuthService, MfaChallenge, Viewer
from auth.tokens import hash_opaque_token, new_opaque_token
from auth.toolkit import AuthToolkit
from auth.ways_in import IDENTITY, require_another_way_in

# An attempt's life: long enough to log in and consent at the provider.
STATE_SECONDS = 600
Intent = Literal["sign_in", "link"]
SIGN_IN: Intent = "sign_in"
LINK: Intent = "link"
# RFC 8176: "fed", authenticated by a federated identity provider.
FEDERATED = Assurance(aal=1, amr=("fed",))


# -- failures -------------------------------------------------------------------------------


class InvalidOAuthState(errors.AuthError):
    # One answer for an unknown, spent, expired, foreign (other browser, provider or redirect
    # URI) attempt, and for a code the provider refused.
    message = "This sign-in attempt is invalid or has expired. Start again."


class OAuthProviderError(errors.AuthError):
    # Never carries what the provider answered: that goes to the log only.
    message = "The sign-in provider could not be reached or answered unexpectedly. Try again."


class AccountLinkRequired(errors.AuthError):
    """An account has this email, but linking it automatically would not be safe."""

    message = (
        "An account with this email already exists. Log in to it, then link this provider "
        "from the account."
    )

    def __init__(self, email: str) -> None:
        super().__init__()
        self.email = email


class OAuthEmailNotVerified(errors.AuthError):
    message = (
        "The provider has not verified this account's email address. Verify it there, or sign "
        "up here and link the provider from your account."
    )


class IdentityTaken(errors.AuthError):
    message = "This provider account is already linked to another account."


class IdentityNotFound(errors.AuthError):
    # Also the answer for another user's identity id.
    message = "No such linked identity."


# -- results --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OAuthStart:
    """Where to send the browser, until when the attempt lives, and the browser's cookie."""

    authorization_url: str
    expires_at: datetime
    # The value of the HttpOnly cookie binding the attempt to this browser.
    browser_secret: str


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    id: str
    name: str


def new_browser_secret() -> str:
    return new_opaque_token()


def _usable_secret(value: str | None) -> bool:
    return value is not None and 32 <= len(value) <= 128 and value.isascii()


def _hash_matches(value: str, stored: str) -> bool:
    return hmac.compare_digest(hash_opaque_token(value), stored)


# -- the use cases --------------------------------------------------------------------------


class OAuthService:
    """The social sign-in use cases, bound to one unit of work."""

    def __init__(self, toolkit: AuthToolkit, uow: UnitOfWork) -> None:
        self.toolkit = toolkit
        self.settings = toolkit.settings
        self.uow = uow
        self.store = uow.repository(IdentityRepository)
        self.auth = AuthService(toolkit, uow)

    def providers(self) -> list[ProviderInfo]:
        """The configured providers, for the SPA's buttons."""
        return [ProviderInfo(c.id, c.config.label) for c in self.toolkit.oauth.all()]

    def identities(self, user_id: str) -> Sequence[IdentityRecord]:
        return self.store.for_user(user_id)

    def start(
        self,
        provider_id: str,
        redirect_uri: str,
        intent: Intent,
        client: ClientInfo,
        *,
        browser_secret: str | None,
        viewer: Viewer | None = None,
    ) -> OAuthStart:
        """A new attempt: the authorization URL, and the browser cookie to bind it to.

        ``browser_secret`` is the cookie the browser already holds, if any (several attempts,
        in several tabs, share it). ``link`` needs the signed-in ``viewer``.
        """
        self._throttle(client)
        provider = self._provider(provider_id)
        if redirect_uri not in self.settings.oauth_redirect_uris:
            # Exact match: no prefix, no wildcard (RFC 9700 4.1.3).
            raise errors.ValidationFailed(
                "redirectUri", "This redirect URI is not allowed (OAUTH_REDIRECT_URIS)."
            )
        if intent == LINK and viewer is None:
            raise errors.Unauthenticated
        secret = browser_secret if _usable_secret(browser_secret) else new_browser_secret()
        assert secret is not None
        state, nonce, verifier = new_opaque_token(), new_opaque_token(), _new_verifier()
        try:
            url = provider.authorization_url(
                redirect_uri=redirect_uri, state=state, nonce=nonce, code_verifier=verifier
            )
        except ProviderFailure as exc:
            raise self._provider_error(exc) from None
        now = self.toolkit.clock()
        expires_at = (now + timedelta(seconds=STATE_SECONDS)).replace(microsecond=0)
        state_hash = hash_opaque_token(state)
        self.store.add_state(
            NewOAuthState(
                state_hash=state_hash,
                provider=provider.id,
                redirect_uri=redirect_uri,
                browser_hash=hash_opaque_token(secret),
                intent=intent,
                user_id=viewer.user.id if viewer is not None else None,
                nonce=nonce,
                code_verifier_sealed=self.toolkit.secret_box.seal(
                    verifier, user_id=_verifier_context(state_hash)
                ),
                expires_at=expires_at,
            ),
            now=now,
        )
        self.uow.commit()
        return OAuthStart(authorization_url=url, expires_at=expires_at, browser_secret=secret)

    def complete(
        self,
        provider_id: str,
        code: str,
        state: str,
        redirect_uri: str,
        client: ClientInfo,
        *,
        browser_secret: str | None,
    ) -> AuthResult | MfaChallenge:
        """Finish a sign-in attempt: a session, or ``MfaChallenge`` for an account with MFA."""
        self._throttle(client)
        provider, found = self._redeem(
            provider_id, code, state, redirect_uri, browser_secret, SIGN_IN, None
        )
        now = self.toolkit.clock()
        identity = self.store.find(provider=provider.id, subject=found.subject)
        if identity is not None:
            user = self.uow.users.get(identity.user_id)
            if user is None:
                raise InvalidOAuthState
            self.store.touch(identity.id, email=found.email, now=now)
            return self._signed_in(user, client)
        user = self._account_for(provider, found, now)
        return self._signed_in(user, client)

    def link(
        self,
        viewer: Viewer,
        provider_id: str,
        code: str,
        state: str,
        redirect_uri: str,
        client: ClientInfo,
        *,
        browser_secret: str | None,
    ) -> IdentityRecord:
        """Link the provider account that just signed in to the caller's own account.

        The attempt must have been started with intent ``link`` by this same user. Linking
        needs no matching email: the user proved both accounts (and, for the caller's, a
        recent authentication: the transport's step-up rule).
        """
        self._throttle(client)
        provider, found = self._redeem(
            provider_id, code, state, redirect_uri, browser_secret, LINK, viewer.user.id
        )
        now = self.toolkit.clock()
        existing = self.store.find(provider=provider.id, subject=found.subject)
        if existing is not None:
            if existing.user_id != viewer.user.id:
                raise IdentityTaken
            return existing
        identity = self.store.add(
            user_id=viewer.user.id,
            provider=provider.id,
            subject=found.subject,
            email=found.email,
            now=now,
        )
        events.record_event(
            self.toolkit,
            self.uow,
            events.EventKind.IDENTITY_LINKED,
            user_id=viewer.user.id,
            session_id=viewer.session.id,
            client=client,
            detail=provider.id,
        )
        self.uow.commit()
        return identity

    def unlink(self, viewer: Viewer, identity_id: str, client: ClientInfo | None = None) -> None:
        """Remove one of the caller's identities, unless it is the last way in."""
        user = self.uow.users.get(viewer.user.id)
        if user is None:
            raise errors.Unauthenticated
        owned = {i.id: i.provider for i in self.store.for_user(user.id)}
        if "\x00" in identity_id or identity_id not in owned:
            raise IdentityNotFound
        # An identity of a provider no longer configured is no way in: losing it costs none.
        losing = 1 if self.toolkit.oauth.get(owned[identity_id]) is not None else 0
        require_another_way_in(self.toolkit, self.uow, user, losing=IDENTITY, count=losing)
        if not self.store.delete(identity_id, user_id=user.id):
            raise IdentityNotFound
        events.record_event(
            self.toolkit,
            self.uow,
            events.EventKind.IDENTITY_UNLINKED,
            user_id=user.id,
            session_id=viewer.session.id,
            client=client,
            detail=owned[identity_id],
        )
        self.uow.commit()

    def prune(self) -> int:
        """Delete spent and expired attempts."""
        count = self.store.prune_states(now=self.toolkit.clock())
        self.uow.commit()
        return count

    # -- internals -------------------------------------------------------------------------

    def _provider(self, provider_id: str) -> ProviderClient:
        provider = self.toolkit.oauth.get(provider_id)
        if provider is None:
            raise errors.ValidationFailed("provider", "No such sign-in provider.")
        return provider

    def _throttle(self, client: ClientInfo) -> None:
        throttle(self.toolkit, (self.settings.oauth_rate_limit, "oauth-ip", client.ip_address))

    def _redeem(
        self,
        provider_id: str,
        code: str,
        state: str,
        redirect_uri: str,
        browser_secret: str | None,
        intent: Intent,
        user_id: str | None,
    ) -> tuple[ProviderClient, ProviderIdentity]:
        """Spend the attempt ``state`` names (checking every binding) and redeem ``code``."""
        provider = self.toolkit.oauth.get(provider_id)
        if provider is None or not state or "\x00" in state or not _usable_secret(browser_secret):
            raise InvalidOAuthState
        assert browser_secret is not None
        state_hash = hash_opaque_token(state)
        attempt = self.store.find_state(state_hash)
        now = self.toolkit.clock()
        if (
            attempt is None
            or attempt.used_at is not None
            or attempt.expires_at <= now
            or attempt.provider != provider.id
            or attempt.redirect_uri != redirect_uri
            or attempt.intent != intent
            or attempt.user_id != user_id
            or not _hash_matches(browser_secret, attempt.browser_hash)
        ):
            raise InvalidOAuthState
        verifier = self.toolkit.secret_box.open(
            attempt.code_verifier_sealed, user_id=_verifier_context(state_hash)
        )
        if verifier is None or not self.store.claim_state(attempt.id, now=now):
            self.uow.rollback()
            raise InvalidOAuthState
        nonce = attempt.nonce
        # Spent for good before the provider is asked: a replay fails even if this one does.
        self.uow.commit()
        try:
            found = provider.identity(
                code=code, redirect_uri=redirect_uri, code_verifier=verifier, nonce=nonce
            )
        except CodeRejected as exc:
            self._log(exc)
            raise InvalidOAuthState from None
        except ProviderFailure as exc:
            raise self._provider_error(exc) from None
        return provider, found

    def _account_for(
        self, provider: ProviderClient, found: ProviderIdentity, now: datetime
    ) -> UserRecord:
        """The account a new subject signs in to: created, linked by email, or refused."""
        address = _address(found.email)
        existing = self.uow.users.get_by_email(address) if address else None
        if existing is not None:
            # Both must have verified the address, or this could hand the account to whoever
            # registered the victim's email at the provider (or here) first.
            if not (found.email_verified and existing.email_verified):
                self.uow.rollback()
                raise AccountLinkRequired(existing.email)
            self._add_identity(existing, provider, found, now)
            return existing
        if address is None or not found.email_verified:
            self.uow.rollback()
            raise OAuthEmailNotVerified
        try:
            user = self.uow.users.add(email=address, password_hash=None, now=now)
        except errors.EmailTaken:
            # Another sign-in or signup took the address meanwhile: decide again, safely.
            self.uow.rollback()
            raise AccountLinkRequired(address) from None
        self.uow.users.mark_email_verified(user.id, email=address)
        self._add_identity(user, provider, found, now)
        fresh = self.uow.users.get(user.id)
        return fresh if fresh is not None else user

    def _add_identity(
        self, user: UserRecord, provider: ProviderClient, found: ProviderIdentity, now: datetime
    ) -> None:
        try:
            identity = self.store.add(
                user_id=user.id,
                provider=provider.id,
                subject=found.subject,
                email=found.email,
                now=now,
            )
        except IdentityTaken:
            # The same subject signing in twice at once: the other request linked it.
            self.uow.rollback()
            raise InvalidOAuthState from None
        self.store.touch(identity.id, email=found.email, now=now)

    def _signed_in(self, user: UserRecord, client: ClientInfo) -> AuthResult | MfaChallenge:
        if mfa_methods(self.uow, user.id):
            return self.auth.challenge(user, first_factor="fed")
        return self.auth.open_session(user, client, assurance=FEDERATED, method=events.IDENTITY)

    def _provider_error(self, exc: ProviderFailure) -> OAuthProviderError:
        self._log(exc)
        return OAuthProviderError()

    @staticmethod
    def _log(exc: ProviderFailure) -> None:
        log.warning("OAuth provider %s: %s", exc.provider, exc.reason)


def _address(email: str | None) -> str | None:
    if not email:
        return None
    try:
        return canonical_email(email)
    except errors.ValidationFailed:
        return None


def _verifier_context(state_hash: str) -> str:
    # The sealed verifier's associated data: it opens only for its own attempt.
    return f"oauth-state:{state_hash}"
