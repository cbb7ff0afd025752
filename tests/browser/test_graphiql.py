"""GraphiQL at /graphql in Chromium: served offline, and it carries the token by itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.browser.conftest import Seen, Servers
from tests.factories import DEFAULT_PASSWORD, signup, unique_email
from tests.mfa import code_at, enroll

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Request

pytestmark = pytest.mark.browser

EDITOR = ".graphiql-query-editor .CodeMirror"
INDICATOR = ".authgraph-auth"


def open_graphiql(context: BrowserContext, api: str) -> Page:
    page = context.new_page()
    # GraphiQL asks for the schema as soon as it starts: wait until it has it.
    with page.expect_response(lambda r: "IntrospectionQuery" in (r.request.post_data or "")):
        page.goto(f"{api}/graphql")
    page.wait_for_selector(EDITOR)
    return page


def run_typed(page: Page, name: str, document: str) -> tuple[dict[str, Any], Request]:
    """Type ``document`` (operation ``name``) into the editor, run it, return body and request."""
    page.click(EDITOR)
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(document)
    # GraphiQL reads the operation name from the editor a moment later; the tab title shows it.
    page.wait_for_selector(f".graphiql-tab-active:has-text('{name}')")
    return run_active_tab(page)


def run_active_tab(page: Page) -> tuple[dict[str, Any], Request]:
    with page.expect_response(
        lambda r: r.url.endswith("/graphql") and r.request.method == "POST"
    ) as response:
        page.click(".graphiql-execute-button")
    body: dict[str, Any] = response.value.json()
    return body, response.value.request


def signup_document(email: str) -> str:
    return (
        f'mutation TrySignup {{ signup(input: {{email: "{email}", password: "{DEFAULT_PASSWORD}"}})'
        " { __typename ... on AuthPayload { accessToken user { id email } } } }"
    )


def test_graphiql_loads_from_server_only_with_auth_tabs(
    servers: Servers, context: BrowserContext, seen: Seen
) -> None:
    api = servers.api()
    errors: list[str] = []
    context.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page = open_graphiql(context, api)
    tabs = page.locator(".graphiql-tab").all_inner_texts()
    assert [tab.strip() for tab in tabs] == [
        "Signup",
        "Login",
        "VerifyMfa",
        "Viewer",
        "Sessions",
        "Refresh",
        "Logout",
    ]
    assert page.get_attribute(INDICATOR, "data-state") == "none"
    assert page.title() == "authgraph GraphiQL"
    assert len(seen.requests) >= 10  # the page, React, GraphiQL, our script, the schema...
    assert seen.hosts() == {api.split("://", 1)[1]}
    assert errors == []  # a Content-Security-Policy violation would be logged here


def test_graphiql_sends_signup_token_with_following_operations(
    servers: Servers, context: BrowserContext, seen: Seen
) -> None:
    api = servers.api()
    page = open_graphiql(context, api)
    email = unique_email("graphiql")

    body, _ = run_typed(page, "TrySignup", signup_document(email))
    payload = body["data"]["signup"]
    assert payload["__typename"] == "AuthPayload"
    assert "AuthPayload" in page.inner_text(".graphiql-response")
    page.wait_for_selector(f'{INDICATOR}[data-state="set"]')
    assert email in page.inner_text(INDICATOR)

    body, request = run_typed(page, "Me", "query Me { viewer { id email } }")
    assert body == {"data": {"viewer": {"id": payload["user"]["id"], "email": email}}}
    assert request.headers["authorization"] == f"Bearer {payload['accessToken']}"

    page.click(".graphiql-tab:has-text('Logout')")
    body, _ = run_active_tab(page)
    assert body["data"]["logout"]["revokedSessions"] == 1
    page.wait_for_selector(f'{INDICATOR}[data-state="none"]')
    body, request = run_typed(page, "MeAgain", "query MeAgain { viewer { id } }")
    assert body == {"data": {"viewer": None}}
    assert "authorization" not in request.headers
    assert seen.hosts() == {api.split("://", 1)[1]}


def test_graphiql_header_tab_wins_over_stored_token(
    servers: Servers, context: BrowserContext
) -> None:
    api = servers.api()
    page = open_graphiql(context, api)
    run_typed(page, "TrySignup", signup_document(unique_email("graphiql")))
    page.wait_for_selector(f'{INDICATOR}[data-state="set"]')
    page.click("button:has-text('Headers')")
    page.click(".graphiql-editor-tool .CodeMirror:visible")
    page.keyboard.insert_text(json.dumps({"Authorization": "Bearer not-a-token"}))

    body, request = run_typed(page, "Me", "query Me { viewer { id } }")
    assert request.headers["authorization"] == "Bearer not-a-token"
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # The stored token was not the one refused: it stays usable.
    assert page.get_attribute(INDICATOR, "data-state") == "set"


def test_graphiql_refresh_and_logout_use_cookie_in_cookie_mode(
    servers: Servers, context: BrowserContext
) -> None:
    api = servers.api(REFRESH_TOKEN_TRANSPORT="cookie")
    page = open_graphiql(context, api)
    body, _ = run_typed(page, "TrySignup", signup_document(unique_email("graphiql")))
    first = body["data"]["signup"]["accessToken"]

    page.click(".graphiql-tab:has-text('Refresh')")
    body, request = run_active_tab(page)
    refreshed = body["data"]["refreshToken"]
    assert refreshed["__typename"] == "AuthPayload"
    assert refreshed["accessToken"] != first
    assert request.headers["x-csrf-token"] == refreshed["csrfToken"]
    page.wait_for_selector(f"{INDICATOR}:has-text('{refreshed['accessToken'][-8:]}')")

    page.click(".graphiql-tab:has-text('Logout')")
    body, _ = run_active_tab(page)
    assert body["data"]["logout"]["revokedSessions"] == 1
    page.wait_for_selector(f'{INDICATOR}[data-state="none"]')
    assert {c["name"] for c in context.cookies()}.isdisjoint({"authgraph_refresh"})


def test_graphiql_keeps_the_mfa_token_for_verify_mfa(
    servers: Servers, context: BrowserContext
) -> None:
    api = servers.api()
    email = unique_email("graphiql-mfa")
    with httpx.Client(base_url=api, timeout=30) as client:
        token = signup(client, email=email)["accessToken"]
        user = enroll(client, email, token, datetime.now(UTC))
    page = open_graphiql(context, api)
    body, _ = run_typed(
        page,
        "TryLogin",
        f'mutation TryLogin {{ login(input: {{email: "{email}", password: "{DEFAULT_PASSWORD}"}})'
        " { __typename ... on MfaRequired { mfaToken methods } } }",
    )
    challenge = body["data"]["login"]
    assert challenge["__typename"] == "MfaRequired"
    assert page.get_attribute(INDICATOR, "data-state") == "none"

    # The enrollment claimed the current step: the next one is accepted (one step of drift).
    code = code_at(user.secret, datetime.now(UTC) + timedelta(seconds=30))
    body, request = run_typed(
        page,
        "TryVerify",
        "mutation TryVerify($mfaToken: String!) { verifyMfa(input: {mfaToken: $mfaToken, "
        f'method: TOTP, code: "{code}"}}) {{ __typename ... on AuthPayload {{ accessToken }} }} }}',
    )
    assert json.loads(request.post_data or "{}")["variables"]["mfaToken"] == challenge["mfaToken"]
    payload = body["data"]["verifyMfa"]
    assert payload["__typename"] == "AuthPayload"
    page.wait_for_selector(f'{INDICATOR}[data-state="set"]')
    body, request = run_typed(page, "Me", "query Me { viewer { email mfaEnabled } }")
    assert body == {"data": {"viewer": {"email": email, "mfaEnabled": True}}}
    assert request.headers["authorization"] == f"Bearer {payload['accessToken']}"
