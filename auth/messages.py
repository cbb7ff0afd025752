"""The emails authgraph sends: plain-text and HTML bodies rendered from packaged templates.

Templates live in ``auth/templates`` as ``<name>.txt`` and ``<name>.html`` and use
:class:`string.Template` placeholders (``$link``, ``$email`` ...). Values are HTML-escaped
for the HTML body, so an address like ``"<b>"@x.com`` cannot inject markup.
"""

from __future__ import annotations

import functools
import html
from datetime import datetime
from importlib import resources
from string import Template
from urllib.parse import urlencode, urlsplit

from auth.ports import OutgoingMail
from auth.settings import AuthSettings

# The page of the SPA that each kind of link opens; the token rides in the query string.
VERIFY_EMAIL_PATH = "verify-email"
RESET_PASSWORD_PATH = "reset-password"
CONFIRM_EMAIL_CHANGE_PATH = "confirm-email-change"
SIGN_IN_CODE_PATH = "sign-in-code"
# Where a security notice sends a user who did not do what it reports (no token: the SPA's
# page asks for the address and calls requestPasswordReset).
FORGOT_PASSWORD_PATH = "forgot-password"


@functools.cache
def _template(name: str) -> Template:
    return Template(resources.files("auth").joinpath("templates", name).read_text("utf-8"))


def render(name: str, values: dict[str, str]) -> tuple[str, str]:
    """The plain-text and HTML bodies of template ``name``."""
    text = _template(f"{name}.txt").substitute(values)
    escaped = {key: html.escape(value, quote=True) for key, value in values.items()}
    return text, _template(f"{name}.html").substitute(escaped)


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "1 hour" if hours == 1 else f"{hours} hours"
    minutes = max(1, seconds // 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


class MailComposer:
    """Builds each message from the settings (``APP_URL``, token lifetimes)."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.app_url = settings.app_url.rstrip("/")
        self.app_name = urlsplit(self.app_url).hostname or self.app_url

    def link(self, path: str, token: str) -> str:
        return f"{self.app_url}/{path}?{urlencode({'token': token})}"

    def verification(self, recipient: str, token: str) -> OutgoingMail:
        return self._compose(
            "verify_email",
            recipient,
            "Confirm your email address",
            link=self.link(VERIFY_EMAIL_PATH, token),
            valid_for=_duration(self.settings.email_verification_ttl_seconds),
        )

    def password_reset(self, recipient: str, token: str) -> OutgoingMail:
        return self._compose(
            "reset_password",
            recipient,
            "Reset your password",
            link=self.link(RESET_PASSWORD_PATH, token),
            valid_for=_duration(self.settings.password_reset_ttl_seconds),
        )

    def email_change(self, recipient: str, token: str) -> OutgoingMail:
        return self._compose(
            "change_email",
            recipient,
            "Confirm your new email address",
            link=self.link(CONFIRM_EMAIL_CHANGE_PATH, token),
            valid_for=_duration(self.settings.email_change_ttl_seconds),
        )

    def sign_in_code(self, recipient: str, code: str, *, valid_seconds: int) -> OutgoingMail:
        """The one-time sign-in code, and a link that fills it in (address and code)."""
        query = urlencode({"email": recipient, "code": code})
        return self._compose(
            "sign_in_code",
            recipient,
            f"Your sign-in code: {code}",
            code=code,
            link=f"{self.app_url}/{SIGN_IN_CODE_PATH}?{query}",
            valid_for=_duration(valid_seconds),
        )

    def email_change_notice(self, recipient: str, new_email: str) -> OutgoingMail:
        return self._compose(
            "email_change_notice", recipient, "Your email address is changing", new_email=new_email
        )

    def security_notice(
        self,
        recipient: str,
        *,
        subject: str,
        what: str,
        when: datetime,
        device: str | None,
        ip_address: str | None,
    ) -> OutgoingMail:
        """A notice of a security event: what, when, from where, and what to do if it
        was not the user (reset the password from APP_URL/forgot-password)."""
        return self._compose(
            "security_notice",
            recipient,
            subject,
            what=what,
            when=when.strftime("%d %B %Y at %H:%M UTC"),
            device=device or "an unknown device",
            ip_address=ip_address or "an unknown address",
            link=f"{self.app_url}/{FORGOT_PASSWORD_PATH}",
        )

    def _compose(self, name: str, recipient: str, subject: str, **values: str) -> OutgoingMail:
        text, body_html = render(name, {"app": self.app_name, "email": recipient, **values})
        return OutgoingMail(
            recipient=recipient, subject=f"{subject} ({self.app_name})", text=text, html=body_html
        )
