"""The example SPA ends its UI everywhere when its session ends (viewerSessionEvents).

Two browser profiles are two devices of one user. Revoking the second device's session from
the first, or logging out everywhere on the first, ends the second's UI in both of its tabs,
without any action there: the server's SESSION_REVOKED or SIGNED_OUT event and its 4403 close
arrive over graphql-transport-ws. The wait is bounded generously; no timing is asserted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import Servers
from tests.browser.test_spa import SIGNED_IN, SIGNED_OUT, open_spa, sign_up, submit
from tests.factories import unique_email

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

pytestmark = pytest.mark.browser

BOUND_MS = 20_000


@pytest.mark.parametrize("ending", ["revoke the device", "log out everywhere"])
def test_ending_a_device_session_ends_its_ui_in_every_tab(
    servers: Servers, context: BrowserContext, browser: Browser, ending: str
) -> None:
    _, spa = servers.api_and_spa()
    email = unique_email("live-spa")
    first = open_spa(context, spa)
    sign_up(first, email)

    device = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        phone = open_spa(device, spa)
        submit(phone, "#login", email)
        phone.wait_for_selector(SIGNED_IN)
        second_tab = open_spa(device, spa)
        second_tab.wait_for_selector(SIGNED_IN)

        first.click("#reload")
        first.wait_for_selector("#sessions tr >> nth=1")
        if ending == "revoke the device":
            first.click("#sessions button.revoke")
        else:
            first.click("#logout-everywhere")
            first.wait_for_selector(SIGNED_OUT)
        # Nobody touches the phone: both of its tabs show the login screen.
        phone.wait_for_selector(SIGNED_OUT, timeout=BOUND_MS)
        second_tab.wait_for_selector(SIGNED_OUT, timeout=BOUND_MS)
        # A revocation leaves the first device signed in.
        assert first.is_visible(SIGNED_IN) == (ending == "revoke the device")
    finally:
        device.close()
