"""The example SPA's "Sign in with <provider>" in Chromium, through a real OpenID provider.

oidc-provider (tests/oidc_provider) serves its own login and consent pages; the SPA on its
origin, the API in cookie mode on another port of localhost (same site, so the HttpOnly
SameSite=Lax attempt cookie travels with the SPA's fetches).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import Seen, Servers
from tests.conftest import skip_or_fail
from tests.oidc import CLIENT_ID, CLIENT_SECRET, node_available, start_provider
from tests.servers import free_port

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

pytestmark = pytest.mark.browser

SIGNED_IN = "#signed-in:not([hidden])"


def test_spa_signs_in_with_the_provider_through_its_login_and_consent_pages(
    servers: Servers, context: BrowserContext, seen: Seen
) -> None:
    if not node_available():
        skip_or_fail("node or tests/oidc_provider/node_modules is missing (make install)")
    spa_port = free_port()
    callback = f"http://localhost:{spa_port}/"
    with start_provider((callback,)) as provider:
        api = servers.api(
            REFRESH_TOKEN_TRANSPORT="cookie",
            CORS_ORIGINS=f"http://localhost:{spa_port}",
            OAUTH_PROVIDERS="acme",
            OAUTH_ACME_ISSUER=provider.issuer,
            OAUTH_ACME_CLIENT_ID=CLIENT_ID,
            OAUTH_ACME_CLIENT_SECRET=CLIENT_SECRET,
            OAUTH_ACME_NAME="Acme ID",
            OAUTH_REDIRECT_URIS=callback,
        )
        spa = servers.spa(api, port=spa_port)
        page = context.new_page()
        page.goto(spa)
        page.click("text=Sign in with Acme ID")

        # The provider's own login page, then its consent page.
        page.wait_for_selector('input[name="login"]')
        assert page.url.startswith(f"{provider.issuer}/interaction/")
        page.fill('input[name="login"]', "alice")
        page.fill('input[name="password"]', "any password")
        page.click('button[type="submit"]')
        page.wait_for_selector('input[name="prompt"][value="consent"]', state="attached")
        page.click('button[type="submit"]')

        # Back on the SPA, signed in, the code and state gone from the address bar.
        page.wait_for_selector(SIGNED_IN)
        assert page.inner_text("#viewer-email") == "alice@example.com"
        assert page.url == callback
        completes = seen.graphql("completeOAuthSignIn")
        assert len(completes) == 1
        # The attempt cookie is the API's, HttpOnly: the page's scripts never see it.
        cookies = {c["name"]: c for c in context.cookies(f"{api}/graphql")}
        assert cookies["authgraph_oauth"]["httpOnly"] is True
        assert cookies["authgraph_oauth"]["sameSite"] == "Lax"
        assert "authgraph_oauth" not in page.evaluate("document.cookie")

        # A reload keeps the session (the refresh cookie, as after a password login).
        page.reload()
        page.wait_for_selector(SIGNED_IN)
        assert page.inner_text("#viewer-email") == "alice@example.com"
