"""The example SPA (examples/spa) in Chromium, on its own origin, against the API in cookie mode."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Seen, Servers
from tests.factories import DEFAULT_PASSWORD, error_codes, gql, login, signup, unique_email
from tests.servers import free_port

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Response

pytestmark = pytest.mark.browser

SIGNED_IN = "#signed-in:not([hidden])"
SIGNED_OUT = "#signed-out:not([hidden])"


def open_spa(context: BrowserContext, spa: str) -> Page:
    page = context.new_page()
    page.goto(spa)
    page.wait_for_selector("#loading[hidden]", state="attached")
    return page


def submit(page: Page, button: str, email: str, password: str = DEFAULT_PASSWORD) -> None:
    page.fill("#email", email)
    page.fill("#password", password)
    page.click(button)


def sign_up(page: Page, email: str) -> None:
    submit(page, "#signup", email)
    page.wait_for_selector(SIGNED_IN)
    assert page.inner_text("#viewer-email") == email


def graphql_responses(page: Page) -> list[tuple[str, dict[str, Any]]]:
    """(operation text, decoded body) of every GraphQL answer the page gets, as they come."""
    answers: list[tuple[str, dict[str, Any]]] = []

    def record(response: Response) -> None:
        if response.url.endswith("/graphql") and response.request.method == "POST":
            answers.append((response.request.post_data or "", response.json()))

    page.on("response", record)
    return answers


def test_spa_signup_survives_reload_and_manages_sessions(
    servers: Servers, context: BrowserContext, seen: Seen
) -> None:
    api, spa = servers.api_and_spa()
    page = open_spa(context, spa)
    email = unique_email("spa")
    with page.expect_response(lambda r: "Authenticate" in (r.request.post_data or "")) as answer:
        sign_up(page, email)
    access_token = answer.value.json()["data"]["signup"]["accessToken"]
    rows = page.locator("#sessions tr")
    assert rows.count() == 1
    assert "this browser" in rows.first.inner_text()

    # The access token is in memory only; the refresh token is an HttpOnly cookie of the API.
    stored = page.evaluate("JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert access_token not in stored
    cookie = next(c for c in context.cookies() if c["name"] == "authgraph_refresh")
    assert cookie["httpOnly"]

    page.reload()
    page.wait_for_selector(SIGNED_IN)
    assert page.inner_text("#viewer-email") == email
    assert seen.graphql("refreshToken")  # the reload came back through the refresh cookie

    # Another device logs in: it shows up, and revoking it here ends it there.
    with httpx.Client(base_url=api) as other:
        other_token = login(other, email)["accessToken"]
        page.click("#reload")
        page.wait_for_selector("#sessions tr >> nth=1")
        page.click("#sessions button.revoke")
        expect(rows).to_have_count(1)
        assert error_codes(gql(other, "{ viewer { id } }", token=other_token)) == [
            "UNAUTHENTICATED"
        ]
    assert page.is_hidden("#status")
    assert seen.hosts() == {spa.split("://")[1], api.split("://")[1]}


def test_spa_runs_on_its_trusted_documents_only(servers: Servers, context: BrowserContext) -> None:
    api, spa = servers.api_and_spa(trusted_documents=True)
    page = open_spa(context, spa)
    bodies: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: bodies.append(json.loads(r.post_data or "{}")) if r.method == "POST" else None,
    )
    email = unique_email("trusted")
    sign_up(page, email)
    page.reload()  # back through refreshToken, then the viewer
    page.wait_for_selector(SIGNED_IN)
    assert page.inner_text("#viewer-email") == email
    assert len(bodies) >= 3
    assert all(b.get("documentId", "").startswith("sha256:") and "query" not in b for b in bodies)
    # The same API refuses any other document.
    with httpx.Client(base_url=api) as other:
        refused = other.post("/graphql", json={"query": "{ viewer { id } }"})
        assert refused.status_code == 400
        assert error_codes(refused.json()) == ["TRUSTED_DOCUMENT_REQUIRED"]


def test_spa_refreshes_short_lived_token_silently_in_two_tabs(
    servers: Servers, context: BrowserContext, seen: Seen
) -> None:
    # A 4 s token is refreshed about a second before it expires (the lead is a quarter of it).
    _, spa = servers.api_and_spa(ACCESS_TOKEN_TTL_SECONDS=4)
    first = open_spa(context, spa)
    sign_up(first, unique_email("spa"))
    second = open_spa(context, spa)
    second.wait_for_selector(SIGNED_IN)  # the second tab joins through the cookie

    # Two more token lifetimes (whichever tab refreshes shares the tokens with the other).
    joined = len(seen.graphql("refreshToken"))
    deadline = time.monotonic() + 15
    while len(seen.graphql("refreshToken")) < joined + 2 and time.monotonic() < deadline:
        first.wait_for_timeout(200)
    assert len(seen.graphql("refreshToken")) >= joined + 2
    for page in (first, second):
        with page.expect_response(lambda r: "Account" in (r.request.post_data or "")) as answer:
            page.click("#reload")
        assert answer.value.json()["data"]["viewer"] is not None
        page.wait_for_selector(SIGNED_IN)
        assert page.is_hidden("#status")
        # Both tabs share one session: neither spent the other's refresh token.
        assert page.locator("#sessions tr").count() == 1
    bearers = {r.headers.get("authorization") for r in seen.graphql("Account")}
    assert len(bearers - {None}) >= 2  # later requests carried refreshed tokens


def test_spa_refreshes_and_retries_once_when_token_is_refused(
    servers: Servers, context: BrowserContext
) -> None:
    spa_port, api_port = free_port(), free_port()
    settings = {"REFRESH_TOKEN_TRANSPORT": "cookie", "CORS_ORIGINS": f"http://localhost:{spa_port}"}
    api = f"http://localhost:{api_port}"
    spa = servers.spa(api, port=spa_port)
    with servers.api_context(api_port, JWT_AUDIENCE="before", **settings):
        page = open_spa(context, spa)
        sign_up(page, unique_email("spa"))
    # The server comes back refusing every token issued so far (here: a new audience).
    with servers.api_context(api_port, JWT_AUDIENCE="after", **settings):
        answers = graphql_responses(page)
        page.click("#reload")
        expect(page.locator("#refresh-count")).to_have_text("1")
        page.wait_for_selector("#sessions tr")
        # Response events are delivered asynchronously: let the last one land.
        deadline = time.monotonic() + 5
        while len(answers) < 3 and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        kinds = [
            ("refresh" if "refreshToken" in sent else "viewer", error_codes(body))
            for sent, body in answers
        ]
        assert kinds == [("viewer", ["UNAUTHENTICATED"]), ("refresh", []), ("viewer", [])]
        assert page.is_visible(SIGNED_IN)
        assert page.is_hidden("#status")


def test_spa_logout_in_one_tab_ends_the_other_tab_at_once(
    servers: Servers, context: BrowserContext
) -> None:
    _, spa = servers.api_and_spa()
    first = open_spa(context, spa)
    sign_up(first, unique_email("spa"))
    second = open_spa(context, spa)
    second.wait_for_selector(SIGNED_IN)

    first.click("#logout")
    first.wait_for_selector(SIGNED_OUT)
    assert "logged out" in first.inner_text("#status")
    # Nobody touches the second tab: the logout reaches it (the BroadcastChannel, and the
    # server's SESSION_REVOKED over its subscription).
    second.wait_for_selector(SIGNED_OUT)
    assert second.is_hidden(SIGNED_IN)
    assert not any(c["name"] == "authgraph_refresh" for c in context.cookies())


def test_spa_on_origin_missing_from_cors_origins_is_refused(
    servers: Servers, context: BrowserContext
) -> None:
    api, _listed = servers.api_and_spa()
    unlisted = servers.spa(api)
    page = open_spa(context, unlisted)
    email = unique_email("spa")
    submit(page, "#signup", email)
    page.wait_for_selector("#status:not([hidden])")
    assert "refused this origin" in page.inner_text("#status")
    assert page.is_visible(SIGNED_OUT)
    # The browser never sent the signup: the email is still free.
    with httpx.Client(base_url=api) as client:
        assert signup(client, email=email)["__typename"] == "AuthPayload"
