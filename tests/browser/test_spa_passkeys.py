"""The example SPA's passkeys and email codes in Chromium, with the DevTools virtual
authenticator (CTAP2, internal transport, resident keys, user verification) driven through
Playwright's CDP session: register, log out, sign in with no email typed, rename, remove; a
passkey as second factor; an authenticator without user verification refused; "Email me a
code" with the code read from the message the server wrote (MAIL_DIR).
"""

from __future__ import annotations

import re
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Servers
from tests.browser.test_spa import SIGNED_IN, SIGNED_OUT, open_spa, sign_up, submit
from tests.browser.test_spa_mfa import MFA_STEP, _enrolled_over_http, _next_code
from tests.factories import unique_email

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, CDPSession, Page

pytestmark = pytest.mark.browser


def _authenticator(
    context: BrowserContext, page: Page, *, user_verification: bool = True
) -> tuple[CDPSession, str]:
    """A platform authenticator on ``page``: the CDP session and the authenticator's id."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": user_verification,
                "isUserVerified": user_verification,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, str(added["authenticatorId"])


def _credentials(cdp: CDPSession, authenticator_id: str) -> list[dict[str, Any]]:
    found = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    credentials: list[dict[str, Any]] = found["credentials"]
    return credentials


def _add_passkey(page: Page, count: int = 1) -> None:
    page.click("#passkey-add")
    expect(page.locator("#passkeys li")).to_have_count(count)
    expect(page.locator("#status")).to_contain_text("Passkey added")


def test_spa_registers_passkey_then_signs_in_without_email_and_removes_it(
    servers: Servers, context: BrowserContext
) -> None:
    _, spa = servers.api_and_spa()
    page = open_spa(context, spa)
    cdp, authenticator = _authenticator(context, page)
    email = unique_email("spa-passkey")
    sign_up(page, email)
    expect(page.locator("#passkeys-empty")).to_be_visible()

    _add_passkey(page)
    (stored,) = _credentials(cdp, authenticator)
    assert stored["isResidentCredential"] is True

    page.click("#logout")
    page.wait_for_selector(SIGNED_OUT)
    page.fill("#email", "")  # no address typed: a discoverable login
    page.click("#passkey-login")
    page.wait_for_selector(SIGNED_IN)
    assert page.inner_text("#viewer-email") == email
    # The passkey session is aal2 (user verification counts as a second factor).
    expect(page.locator("#sessions tr:has(td.current) td").nth(4)).to_have_text("aal2")

    page.fill(".passkey-name", "Work laptop")
    page.click(".passkey-rename")
    expect(page.locator("#status")).to_have_text("Passkey renamed.")
    expect(page.locator(".passkey-name")).to_have_value("Work laptop")

    page.click(".passkey-remove")
    expect(page.locator("#status")).to_have_text("Passkey removed.")
    expect(page.locator("#passkeys li")).to_have_count(0)
    page.click("#logout")
    page.wait_for_selector(SIGNED_OUT)
    # The key is still on the authenticator; the server no longer knows it.
    page.click("#passkey-login")
    expect(page.locator("#status")).to_contain_text("could not be verified")
    assert page.locator(SIGNED_OUT).count() == 1


def test_spa_uses_passkey_as_second_factor(servers: Servers, context: BrowserContext) -> None:
    api, spa = servers.api_and_spa()
    user = _enrolled_over_http(api)
    page = open_spa(context, spa)
    _authenticator(context, page)
    submit(page, "#login", user.email)
    page.wait_for_selector(MFA_STEP)
    expect(page.locator("#mfa-passkey")).to_be_hidden()  # no passkey yet
    page.fill("#mfa-code", _next_code(user.secret))
    page.click("#mfa-verify")
    page.wait_for_selector(SIGNED_IN)
    _add_passkey(page)  # the session is aal2 and recent: no step-up prompt
    page.click("#logout")
    page.wait_for_selector(SIGNED_OUT)

    submit(page, "#login", user.email)
    page.wait_for_selector(MFA_STEP)
    page.click("#mfa-passkey")
    page.wait_for_selector(SIGNED_IN)
    assert page.inner_text("#viewer-email") == user.email
    expect(page.locator("#sessions tr:has(td.current) td").nth(4)).to_have_text("aal2")


def test_spa_refuses_passkey_login_without_user_verification(
    servers: Servers, context: BrowserContext
) -> None:
    _, spa = servers.api_and_spa()
    page = open_spa(context, spa)
    cdp, authenticator = _authenticator(context, page, user_verification=False)
    sign_up(page, unique_email("spa-no-uv"))
    _add_passkey(page)  # presence is enough to register
    assert len(_credentials(cdp, authenticator)) == 1
    page.click("#logout")
    page.wait_for_selector(SIGNED_OUT)
    page.click("#passkey-login")
    expect(page.locator("#status")).to_have_attribute("data-kind", "error")
    assert page.locator(SIGNED_OUT).count() == 1


def test_spa_offers_passkey_in_email_autofill_on_open(
    servers: Servers, context: BrowserContext
) -> None:
    _, spa = servers.api_and_spa()
    page = open_spa(context, spa)
    _authenticator(context, page)
    email = unique_email("spa-autofill")
    sign_up(page, email)
    _add_passkey(page)
    page.click("#logout")
    page.wait_for_selector(SIGNED_OUT)
    # A page opened signed out asks for a passkey with mediation "conditional"; the virtual
    # authenticator answers it as a user picking the passkey from the autofill would.
    page.evaluate("localStorage.clear()")
    page.reload()
    page.wait_for_selector(SIGNED_IN)
    assert page.inner_text("#viewer-email") == email
    assert page.evaluate("PublicKeyCredential.isConditionalMediationAvailable()") is True


def _code_from_mail_dir(mail_dir: Path, email: str) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for path in sorted(mail_dir.glob("*.eml")):
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            if message["To"] == email and "sign-in code" in str(message["Subject"]):
                body = message.get_body(("plain",))
                assert body is not None
                match = re.search(r"^\s*(\d{8})\s*$", str(body.get_content()), re.M)
                assert match
                return match.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no sign-in code for {email} in {mail_dir}")


def test_spa_signs_in_with_emailed_code(
    servers: Servers, context: BrowserContext, tmp_path: Path
) -> None:
    mail_dir = tmp_path / "mail"
    _, spa = servers.api_and_spa(MAIL_DIR=str(mail_dir))
    page = open_spa(context, spa)
    email = unique_email("spa-code")
    sign_up(page, email)
    page.click("#logout")
    page.wait_for_selector(SIGNED_OUT)

    page.fill("#email", email)
    page.click("#code-request")
    page.wait_for_selector("#code-step:not([hidden])")
    expect(page.locator("#code-sent")).to_contain_text("sign-in code is on its way")
    page.fill("#sign-in-code", _code_from_mail_dir(mail_dir, email))
    page.click("#code-verify")
    page.wait_for_selector(SIGNED_IN)
    assert page.inner_text("#viewer-email") == email
