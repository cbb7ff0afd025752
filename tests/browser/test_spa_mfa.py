"""The example SPA's second factor in Chromium: enrollment, login with TOTP or a recovery code,
and the step-up prompt. Codes are computed with pyotp from the enrolled secret.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from tests.browser.conftest import Servers
from tests.browser.test_spa import SIGNED_IN, SIGNED_OUT, open_spa, sign_up, submit
from tests.factories import signup, unique_email
from tests.mfa import Enrolled, code_at, enroll

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.browser

MFA_STEP = "#mfa-step:not([hidden])"


def _next_code(secret: str) -> str:
    # The enrollment claimed the current step: the next one is inside the drift window.
    return code_at(secret, datetime.now(UTC) + timedelta(seconds=30))


def _enrolled_over_http(api: str) -> Enrolled:
    email = unique_email("spa-mfa")
    with httpx.Client(base_url=api, timeout=30) as client:
        token = signup(client, email=email)["accessToken"]
        return enroll(client, email, token, datetime.now(UTC))


def _second_step(page: Page, code: str, *, recovery: bool = False) -> None:
    page.wait_for_selector(MFA_STEP)
    if recovery:
        page.check("#mfa-recovery")
    page.fill("#mfa-code", code)
    page.click("#mfa-verify")
    page.wait_for_selector(SIGNED_IN)


def test_spa_enrolls_totp_then_logs_in_with_a_code(
    servers: Servers, context: BrowserContext
) -> None:
    _, spa = servers.api_and_spa()
    page = open_spa(context, spa)
    email = unique_email("spa-enrol")
    sign_up(page, email)
    expect(page.locator("#mfa-status")).to_have_text("off")

    page.click("#mfa-enroll")
    page.wait_for_selector("#enrollment:not([hidden])")
    assert (page.get_attribute("#totp-qr", "src") or "").startswith("data:image/svg+xml,")
    secret = page.inner_text("#totp-secret")
    page.fill("#enroll-code", code_at(secret, datetime.now(UTC)))
    page.click("#enroll-confirm")
    page.wait_for_selector("#recovery-codes:not([hidden])")
    codes = page.locator("#recovery-list li").all_inner_texts()
    assert len(codes) == 10
    expect(page.locator("#mfa-status")).to_have_text("on, 10 recovery codes left")
    expect(page.locator("#sessions")).to_contain_text("aal2")
    page.click("#recovery-done")

    page.click("#logout")
    page.wait_for_selector(SIGNED_OUT)
    submit(page, "#login", email)
    _second_step(page, _next_code(secret))
    assert page.inner_text("#viewer-email") == email
    expect(page.locator("#sessions tr:has(.current)")).to_contain_text("aal2")


def test_spa_logs_in_with_a_recovery_code(servers: Servers, context: BrowserContext) -> None:
    api, spa = servers.api_and_spa()
    user = _enrolled_over_http(api)
    page = open_spa(context, spa)
    submit(page, "#login", user.email)
    _second_step(page, user.recovery_codes[0], recovery=True)
    expect(page.locator("#mfa-status")).to_have_text("on, 9 recovery codes left")

    # The same code again is refused; the SPA stays on the second step and says why.
    page.click("#logout")
    page.wait_for_selector(SIGNED_OUT)
    submit(page, "#login", user.email)
    page.wait_for_selector(MFA_STEP)
    page.check("#mfa-recovery")
    page.fill("#mfa-code", user.recovery_codes[0])
    page.click("#mfa-verify")
    expect(page.locator("#status")).to_contain_text("not correct")
    assert page.locator(MFA_STEP).is_visible()


def test_spa_asks_for_step_up_then_retries(servers: Servers, context: BrowserContext) -> None:
    api, spa = servers.api_and_spa()
    user = _enrolled_over_http(api)
    page = open_spa(context, spa)
    submit(page, "#login", user.email)
    _second_step(page, _next_code(user.secret))

    # Age the session's authentication past REAUTH_MAX_AGE_SECONDS: the test's clock is the
    # database row, not a sleep.
    engine = create_engine(f"sqlite:///{servers.database}")
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE sessions SET authenticated_at = '2000-01-01 00:00:00.000000' "
                "WHERE user_id = (SELECT id FROM users WHERE email = :email)"
            ),
            {"email": user.email},
        )
    engine.dispose()

    page.click("#mfa-regenerate")
    page.wait_for_selector("#step-up:not([hidden])")
    assert page.locator("#step-up-code").is_visible()
    assert not page.locator("#step-up-password").is_visible()
    page.check("#step-up-recovery")
    page.fill("#step-up-code", user.recovery_codes[0])
    page.click("#step-up-submit")
    # Reauthenticated, the SPA retried regenerateRecoveryCodes: ten new codes.
    page.wait_for_selector("#recovery-codes:not([hidden])")
    codes = page.locator("#recovery-list li").all_inner_texts()
    assert len(codes) == 10
    assert not set(codes) & set(user.recovery_codes)
    assert page.locator("#step-up").is_hidden()
