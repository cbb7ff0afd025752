"""Linked provider identities and pending sign-in attempts: tables and the repository.

Implements :class:`auth.oauth.IdentityRepository`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    CursorResult,
    ForeignKey,
    String,
    UniqueConstraint,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm import Session as OrmSession

from auth.oauth import IdentityTaken
from auth.ports import IdentityRepository, NewOAuthState
from db.features import implements
from db.models import Base, UTCDateTime, new_id


class Identity(Base):
    """An account at a provider linked to a user: found by (provider, subject), never email."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The provider's id in OAUTH_PROVIDERS, and its stable subject (OIDC sub, GitHub user id).
    provider: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    # What the provider last said the email was: shown to the user, never used to find them.
    email: Mapped[str | None] = mapped_column(String(254))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OAuthState(Base):
    """A sign-in attempt between startOAuthSignIn and its completion: single use, 10 minutes."""

    __tablename__ = "oauth_states"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # SHA-256 of the state parameter and of the browser's cookie; neither is stored.
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    # sign_in or link; for link, the user who started it.
    intent: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    nonce: Mapped[str] = mapped_column(String(64))
    # The PKCE verifier, AES-GCM under MFA_ENCRYPTION_KEY (auth.totp.SecretBox).
    code_verifier_sealed: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@implements(IdentityRepository)
class SqlIdentityRepository:
    def __init__(self, db: OrmSession) -> None:
        self.db = db

    def find(self, *, provider: str, subject: str) -> Identity | None:
        return self.db.scalars(
            select(Identity).where(Identity.provider == provider, Identity.subject == subject)
        ).first()

    def for_user(self, user_id: str) -> Sequence[Identity]:
        return self.db.scalars(
            select(Identity).where(Identity.user_id == user_id).order_by(Identity.linked_at)
        ).all()

    def add(
        self, *, user_id: str, provider: str, subject: str, email: str | None, now: datetime
    ) -> Identity:
        identity = Identity(
            user_id=user_id, provider=provider, subject=subject, email=email, linked_at=now
        )
        self.db.add(identity)
        try:
            self.db.flush()
        except IntegrityError:
            # Linked meanwhile by another request: the unique constraint decides.
            self.db.rollback()
            raise IdentityTaken from None
        return identity

    def touch(self, identity_id: str, *, email: str | None, now: datetime) -> None:
        self.db.execute(
            update(Identity)
            .where(Identity.id == identity_id)
            .values(last_used_at=now, email=email)
            .execution_options(synchronize_session=False)
        )

    def delete(self, identity_id: str, *, user_id: str) -> bool:
        result = self.db.execute(
            delete(Identity)
            .where(Identity.id == identity_id, Identity.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def add_state(self, state: NewOAuthState, *, now: datetime) -> None:
        self.db.add(
            OAuthState(
                state_hash=state.state_hash,
                browser_hash=state.browser_hash,
                provider=state.provider,
                redirect_uri=state.redirect_uri,
                intent=state.intent,
                user_id=state.user_id,
                nonce=state.nonce,
                code_verifier_sealed=state.code_verifier_sealed,
                created_at=now,
                expires_at=state.expires_at,
            )
        )
        self.db.flush()

    def find_state(self, state_hash: str) -> OAuthState | None:
        return self.db.scalars(
            select(OAuthState).where(OAuthState.state_hash == state_hash)
        ).first()

    def claim_state(self, state_id: str, *, now: datetime) -> bool:
        # Compare-and-set: of two requests with one state, exactly one spends it.
        result = self.db.execute(
            update(OAuthState)
            .where(OAuthState.id == state_id, OAuthState.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def prune_states(self, *, now: datetime) -> int:
        result = self.db.execute(
            delete(OAuthState)
            .where(or_(OAuthState.expires_at <= now, OAuthState.used_at.is_not(None)))
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount
