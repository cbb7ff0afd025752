"""The example SPA's passkeys and email codes in Chromium, with the DevTools virtual
authenticator (CTAP2, internal transport, resident keys, user verification) driven through
Playwright's CDP session: register, log out, sign in with no email typed, rename, remove; a
passkey as second factor; an authenticator without user verification refused; "Email me a
code" with the code read from the message the server wrote (MAIL_DIR). Adding or removing a
passkey on a session older than REAUTH_MAX_AGE_SECONDS asks for a step-up each kind of
account can give: the password, a second-factor code, a passkey, or (no password, no passkey)
signing in again with an emailed code.
"""

from __future__ import annotations

import re
import time
from collections.abc import Container
from email import message_from_bytes, policy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from tests.browser.conftest import Servers
from tests.browser.test_spa import SIGNED_IN, SIGNED_OUT, open_spa, sign_up, submit
from tests.browser.test_spa_mfa import MFA_STEP, _enrolled_over_http, _next_code
from tests.factories import DEFAULT_PASSWORD, signup, unique_email
from tests.passwordless import drop_password

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, CDPSession, Page

pytestmark = pytest.mark.browser

STEP_UP = "#step-up:not([hidden])"


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

    # On an old session the step-up takes the passkey too, beside a code.
    _age_sessions(servers, user.email)
    page.click(".passkey-remove")
    page.wait_for_selector(STEP_UP)
    assert page.locator("#step-up-code").is_visible()
    page.click("#step-up-passkey")
    expect(page.locator("#status")).to_have_text("Passkey removed.")
    expect(page.locator("#passkeys li")).to_have_count(0)


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


def _code_from_mail_dir(mail_dir: Path, email: str, seen: Container[str] = ()) -> str:
    """The sign-in code mailed to ``email``, other than those ``seen`` already."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for path in sorted(mail_dir.glob("*.eml")):
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            if message["To"] == email and "sign-in code" in str(message["Subject"]):
                body = message.get_body(("plain",))
                assert body is not None
                match = re.search(r"^\s*(\d{8})\s*$", str(body.get_content()), re.M)
                assert match
                if match.group(1) not in seen:
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


def _age_sessions(servers: Servers, email: str) -> None:
    """Move the account's authentications past REAUTH_MAX_AGE_SECONDS: the test's clock is the
    database row, not a sleep."""
    engine = create_engine(f"sqlite:///{servers.database}")
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE sessions SET authenticated_at = '2000-01-01 00:00:00.000000' "
                "WHERE user_id = (SELECT id FROM users WHERE email = :email)"
            ),
            {"email": email},
        )
    engine.dispose()


def _passwordless_over_http(api: str, servers: Servers, prefix: str) -> str:
    """An account without a password (as one made by a social or code sign-in is)."""
    email = unique_email(prefix)
    with httpx.Client(base_url=api, timeout=30) as client:
        signup(client, email=email)
    drop_password(f"sqlite:///{servers.database}", email)
    return email


def _sign_in_with_code(page: Page, mail_dir: Path, email: str) -> str:
    page.fill("#email", email)
    page.click("#code-request")
    page.wait_for_selector("#code-step:not([hidden])")
    code = _code_from_mail_dir(mail_dir, email)
    page.fill("#sign-in-code", code)
    page.click("#code-verify")
    page.wait_for_selector(SIGNED_IN)
    return code


def test_spa_asks_password_before_adding_passkey_to_old_session(
    servers: Servers, context: BrowserContext
) -> None:
    _, spa = servers.api_and_spa()
    page = open_spa(context, spa)
    cdp, authenticator = _authenticator(context, page)
    email = unique_email("spa-stepup-pwd")
    sign_up(page, email)
    _age_sessions(servers, email)

    page.click("#passkey-add")
    page.wait_for_selector(STEP_UP)
    assert page.locator("#step-up-password").is_visible()
    assert not page.locator("#step-up-code").is_visible()
    assert not page.locator("#step-up-email-code").is_visible()
    # A wrong password: an error, the prompt stays, and no passkey was made or stored.
    page.fill("#step-up-password", "not the password at all")
    page.click("#step-up-submit")
    expect(page.locator("#status")).to_have_text("The password is not correct.")
    expect(page.locator("#status")).to_have_attribute("data-kind", "error")
    assert page.locator(STEP_UP).count() == 1
    assert _credentials(cdp, authenticator) == []
    expect(page.locator("#passkeys li")).to_have_count(0)

    page.fill("#step-up-password", DEFAULT_PASSWORD)
    page.click("#step-up-submit")
    # Reauthenticated, the SPA retried startPasskeyRegistration: the passkey is listed.
    expect(page.locator("#passkeys li")).to_have_count(1)
    expect(page.locator("#status")).to_contain_text("Passkey added")
    assert len(_credentials(cdp, authenticator)) == 1
    assert page.locator("#step-up").is_hidden()


def test_spa_asks_mfa_user_for_code_before_adding_passkey(
    servers: Servers, context: BrowserContext
) -> None:
    api, spa = servers.api_and_spa()
    user = _enrolled_over_http(api)
    page = open_spa(context, spa)
    _authenticator(context, page)
    submit(page, "#login", user.email)
    page.wait_for_selector(MFA_STEP)
    page.fill("#mfa-code", _next_code(user.secret))
    page.click("#mfa-verify")
    page.wait_for_selector(SIGNED_IN)
    _age_sessions(servers, user.email)

    page.click("#passkey-add")
    page.wait_for_selector(STEP_UP)
    assert page.locator("#step-up-code").is_visible()
    assert not page.locator("#step-up-password").is_visible()
    assert not page.locator("#step-up-passkey").is_visible()  # no passkey yet
    page.check("#step-up-recovery")
    page.fill("#step-up-code", user.recovery_codes[0])
    page.click("#step-up-submit")
    expect(page.locator("#passkeys li")).to_have_count(1)
    expect(page.locator("#status")).to_contain_text("Passkey added")


def test_spa_account_without_password_signs_in_again_with_code_to_add_passkey(
    servers: Servers, context: BrowserContext, tmp_path: Path
) -> None:
    mail_dir = tmp_path / "mail"
    api, spa = servers.api_and_spa(MAIL_DIR=str(mail_dir))
    email = _passwordless_over_http(api, servers, "spa-stepup-code")
    page = open_spa(context, spa)
    cdp, authenticator = _authenticator(context, page)
    first = _sign_in_with_code(page, mail_dir, email)
    current = "#sessions tr:has(td.current)"
    before = page.get_attribute(current, "data-session-id")
    sessions = page.locator("#sessions tr").count()  # this browser's and the signup's
    _age_sessions(servers, email)

    page.click("#passkey-add")
    page.wait_for_selector(STEP_UP)
    # Nothing to type and no passkey: the prompt offers a new sign-in by emailed code.
    assert not page.locator("#step-up-password").is_visible()
    assert not page.locator("#step-up-code").is_visible()
    assert not page.locator("#step-up-passkey").is_visible()
    assert not page.locator("#step-up-submit").is_visible()
    page.click("#step-up-email-code")
    page.wait_for_selector("#step-up-sign-in-code")
    page.fill("#step-up-sign-in-code", _code_from_mail_dir(mail_dir, email, seen={first}))
    page.click("#step-up-submit")
    expect(page.locator("#passkeys li")).to_have_count(1)
    expect(page.locator("#status")).to_contain_text("Passkey added")
    assert len(_credentials(cdp, authenticator)) == 1
    # The new sign-in replaced this browser's old session, which the SPA revoked.
    expect(page.locator("#sessions tr")).to_have_count(sessions)
    after = page.get_attribute(current, "data-session-id")
    assert before is not None
    assert after not in (None, before)
    expect(page.locator(f'#sessions tr[data-session-id="{before}"]')).to_have_count(0)


def test_spa_account_without_password_steps_up_with_passkey(
    servers: Servers, context: BrowserContext, tmp_path: Path
) -> None:
    mail_dir = tmp_path / "mail"
    api, spa = servers.api_and_spa(MAIL_DIR=str(mail_dir))
    email = _passwordless_over_http(api, servers, "spa-stepup-pk")
    page = open_spa(context, spa)
    _authenticator(context, page)
    _sign_in_with_code(page, mail_dir, email)
    _add_passkey(page)  # the code sign-in is recent: no prompt
    _age_sessions(servers, email)

    page.click(".passkey-remove")
    page.wait_for_selector(STEP_UP)
    assert not page.locator("#step-up-password").is_visible()
    page.click("#step-up-passkey")
    # The passkey confirmed it is the owner; the SPA retried removePasskey.
    expect(page.locator("#status")).to_have_text("Passkey removed.")
    expect(page.locator("#passkeys li")).to_have_count(0)
    assert page.locator("#step-up").is_hidden()
    expect(page.locator("#sessions tr:has(td.current) td").nth(4)).to_have_text("aal2")
