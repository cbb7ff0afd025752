"""Account lifecycle use cases: email verification, password reset, email change, deletion.

Like :class:`auth.service.AuthService`, methods are synchronous, may hash passwords and run
in a worker thread. Every message is queued in the outbox inside the transaction of the
change that caused it, so a commit means the mail will be delivered, however late.
"""

from __future__ import annotations

from dataclasses import dataclass

from auth import errors
from auth.email_tokens import EmailTokens
from auth.emails import canonical_email
from auth.events import EventKind, record_event
from auth.guards import confirm_owner, queue_verification, throttle, throttle_mail
from auth.passwords import check_password_policy
from auth.ports import ClientInfo, UnitOfWork, UserRecord
from auth.service import Viewer
from auth.toolkit import AuthToolkit

MAX_DISPLAY_NAME_LENGTH = 100
PASSWORD_INCORRECT = "The password is not correct."


@dataclass(frozen=True, slots=True)
class EmailChangeRequest:
    new_email: str


class AccountService:
    """The lifecycle use cases, bound to one unit of work."""

    def __init__(self, toolkit: AuthToolkit, uow: UnitOfWork) -> None:
        self.toolkit = toolkit
        self.settings = toolkit.settings
        self.uow = uow
        self.tokens = EmailTokens(toolkit.settings, uow)

    # -- email verification -----------------------------------------------------------------

    def verify_email(self, token: str, client: ClientInfo | None = None) -> str:
        """Mark the address the token was sent to as verified; return that address."""
        now = self.toolkit.clock()
        record = self.tokens.find_valid(token, "verify_email", now=now)
        self.tokens.spend(record, now=now)
        # A token sent to an address the user has since left must not verify the new one.
        if not self.uow.users.mark_email_verified(record.user_id, email=record.email):
            self.uow.rollback()
            raise errors.InvalidEmailToken
        self._record(EventKind.EMAIL_VERIFIED, record.user_id, client)
        self.uow.commit()
        return record.email

    def resend_verification(self, viewer: Viewer, client: ClientInfo) -> str:
        """Queue a new verification message (the older link stops working); return the address."""
        user = self._current(viewer)
        if user.email_verified:
            raise errors.EmailAlreadyVerified
        self._throttle_mail(user.email, client)
        queue_verification(
            self.toolkit, self.uow, user_id=user.id, email=user.email, now=self.toolkit.clock()
        )
        self.uow.commit()
        return user.email

    # -- password reset ---------------------------------------------------------------------

    def accept_password_reset(self, email: str, client: ClientInfo) -> str:
        """Validate and count a reset request; return the canonical address to pass on.

        Touches no account: the answer so far is the same whoever owns the address.
        """
        address = canonical_email(email)
        self._throttle_mail(address, client)
        return address

    def request_password_reset(self, address: str) -> None:
        """Queue a reset message if ``address`` (from :meth:`accept_password_reset`) has an
        account that is not disabled.

        Callers answer before this runs (see the resolver): whether a row was written is the
        one difference between an address with an account and one without, and it must not
        show in the response time.
        """
        user = self.uow.users.get_by_email(address)
        now = self.toolkit.clock()
        if user is None or user.disabled_at is not None:
            # A disabled account gets no link either: a reset must not bring it back.
            self.uow.rollback()
            return
        token = self.tokens.issue(user_id=user.id, purpose="reset_password", email=address, now=now)
        self.uow.outbox.enqueue(self.toolkit.mail.password_reset(address, token), now=now)
        self.uow.commit()

    def reset_password(self, token: str, new_password: str, client: ClientInfo) -> str:
        """Set a new password with a reset token and end every session; return the user id."""
        throttle(self.toolkit, (self.settings.email_ip_rate_limit, "reset-ip", client.ip_address))
        now = self.toolkit.clock()
        record = self.tokens.find_valid(token, "reset_password", now=now)
        user = self.uow.users.get(record.user_id)
        if user is None or user.disabled_at is not None:
            raise errors.InvalidEmailToken
        # A policy failure leaves the token unspent: the user may try a better password.
        check_password_policy(new_password, email=user.email, field="newPassword")
        # No pooled connection is held during the hash.
        self.uow.rollback()
        password_hash = self.toolkit.hasher.hash(new_password)
        now = self.toolkit.clock()
        self.tokens.spend(record, now=now)
        # The barrier (see AuthService.change_password); a change that won meanwhile leaves
        # this token unspent for another try.
        if not self.uow.users.bump_credentials(user):
            raise errors.InvalidEmailToken
        self.uow.users.set_password_hash(user, password_hash)
        # Whoever knew the old password may hold sessions: end them all, refresh tokens too.
        self.uow.sessions.revoke(user_id=user.id, now=now, reason="password_reset")
        self._record(EventKind.PASSWORD_RESET, user.id, client)
        # The message reached its inbox, which proves the address as well as a verification.
        self.uow.users.mark_email_verified(user.id, email=record.email)
        self.uow.commit()
        return user.id

    # -- email change -----------------------------------------------------------------------

    def request_email_change(
        self, viewer: Viewer, new_email: str, password: str, client: ClientInfo
    ) -> EmailChangeRequest:
        """Check the password, then mail a link to the new address and a notice to the old."""
        user = self._current(viewer)
        address = canonical_email(new_email, field="newEmail")
        self._throttle_mail(address, client)
        confirm_owner(self.toolkit, self.uow, user, viewer.session, password, PASSWORD_INCORRECT)
        if address == user.email:
            raise errors.ValidationFailed("newEmail", "This is already your email address.")
        if self.uow.users.get_by_email(address) is not None:
            raise errors.EmailTaken
        now = self.toolkit.clock()
        token = self.tokens.issue(user_id=user.id, purpose="change_email", email=address, now=now)
        self.uow.outbox.enqueue(self.toolkit.mail.email_change(address, token), now=now)
        self.uow.outbox.enqueue(self.toolkit.mail.email_change_notice(user.email, address), now=now)
        self._record(
            EventKind.EMAIL_CHANGE_REQUESTED, user.id, client, session_id=viewer.session.id
        )
        self.uow.commit()
        return EmailChangeRequest(new_email=address)

    def confirm_email_change(self, token: str, client: ClientInfo | None = None) -> str:
        """Switch to the address the token was sent to, if still free; return it."""
        now = self.toolkit.clock()
        record = self.tokens.find_valid(token, "change_email", now=now)
        if self.uow.users.get_by_email(record.email) is not None:
            raise errors.EmailTaken
        self.tokens.spend(record, now=now)
        # The unique index still decides a race with a signup for the same address.
        self.uow.users.set_email(record.user_id, record.email)
        self._record(EventKind.EMAIL_CHANGED, record.user_id, client)
        self.uow.commit()
        return record.email

    # -- profile and deletion ---------------------------------------------------------------

    def update_profile(self, viewer: Viewer, display_name: str | None) -> UserRecord:
        name = " ".join(display_name.split()) if display_name is not None else None
        if name is not None and len(name) > MAX_DISPLAY_NAME_LENGTH:
            raise errors.ValidationFailed(
                "displayName", f"Display name must be at most {MAX_DISPLAY_NAME_LENGTH} characters."
            )
        self.uow.users.set_display_name(viewer.user.id, name or None)
        self.uow.commit()
        user = self.uow.users.get(viewer.user.id)
        if user is None:
            raise errors.Unauthenticated
        return user

    def delete_account(self, viewer: Viewer, password: str) -> str:
        """Delete the caller's account after checking the password; return its id.

        An account without a password needs a recent sign-in instead (``confirm_owner``).
        """
        user = viewer.user
        confirm_owner(self.toolkit, self.uow, user, viewer.session, password, PASSWORD_INCORRECT)
        # A password changed since the check wins; a sign-in holding the row is waited for,
        # so its session goes with the account.
        if not self.uow.users.bump_credentials(user):
            raise errors.InvalidCredentials("The password is no longer current.")
        # Sessions, refresh tokens and email tokens cascade; queued mail is left to go out.
        if not self.uow.users.delete(user.id):
            raise errors.Unauthenticated
        # The trail stays (user id, kinds, times) without what identifies a person: the
        # earlier events lose their IP and device, and this one never has any.
        self.uow.events.forget_client(user_id=user.id)
        self._record(EventKind.ACCOUNT_DELETED, user.id, None, session_id=viewer.session.id)
        self.uow.commit()
        return user.id

    # -- internals --------------------------------------------------------------------------

    def _current(self, viewer: Viewer) -> UserRecord:
        user = self.uow.users.get(viewer.user.id)
        if user is None:
            raise errors.Unauthenticated
        return user

    def _record(
        self,
        kind: EventKind,
        user_id: str,
        client: ClientInfo | None,
        *,
        session_id: str | None = None,
    ) -> None:
        record_event(
            self.toolkit, self.uow, kind, user_id=user_id, session_id=session_id, client=client
        )

    def _throttle_mail(self, address: str, client: ClientInfo) -> None:
        throttle_mail(self.toolkit, address, client)
