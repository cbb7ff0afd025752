"""What the server tells strangers: introspection, suggestions, CORS, headers, media types."""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser

import httpx
import pytest

from tests.conftest import MakeClient

INTROSPECTION = "{ __schema { types { name } } }"
TYPO = "{ viewr { id } }"


def test_introspection_is_off_in_production(make_client: MakeClient) -> None:
    client = make_client(env="production")
    response = client.post("/graphql", json={"query": INTROSPECTION})
    assert response.status_code == 400
    assert "introspection has been disabled" in response.text
    assert "User" not in response.text
    type_query = client.post("/graphql", json={"query": '{ __type(name: "User") { name } }'})
    assert type_query.status_code == 400
    # __typename is not introspection: clients need it to read result unions.
    assert client.post("/graphql", json={"query": "{ __typename }"}).json() == {
        "data": {"__typename": "Query"}
    }


def test_production_errors_make_no_field_suggestions(make_client: MakeClient) -> None:
    response = make_client(env="production").post("/graphql", json={"query": TYPO})
    assert response.status_code == 400
    assert "viewr" in response.text
    assert "Did you mean" not in response.text
    assert "viewer" not in response.text


def test_development_allows_introspection_and_suggestions(client: httpx.Client) -> None:
    names = {
        t["name"]
        for t in client.post("/graphql", json={"query": INTROSPECTION}).json()["data"]["__schema"][
            "types"
        ]
    }
    assert {"User", "RateLimited", "LoginResult"} <= names
    assert "Did you mean 'viewer'" in client.post("/graphql", json={"query": TYPO}).text


def test_production_can_turn_introspection_on(make_client: MakeClient) -> None:
    client = make_client(env="production", graphql_introspection=True)
    assert client.post("/graphql", json={"query": INTROSPECTION}).status_code == 200


def test_cors_preflight_from_unlisted_origin_gets_no_allowance(make_client: MakeClient) -> None:
    client = make_client(cors_origins=("https://app.example.com",))
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    evil = client.options("/graphql", headers={"Origin": "https://evil.example", **preflight})
    # Refused; without Allow-Origin the browser blocks the real request.
    assert evil.status_code == 400
    assert "access-control-allow-origin" not in evil.headers
    actual = client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in actual.headers
    good = client.options("/graphql", headers={"Origin": "https://app.example.com", **preflight})
    assert good.headers["access-control-allow-origin"] == "https://app.example.com"


def test_no_cors_origins_means_no_cross_origin_access(client: httpx.Client) -> None:
    response = client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/graphql", {"json": {"query": "{ __typename }"}}),
        ("POST", "/graphql", {"json": {"query": "{ nope }"}}),
        (
            "POST",
            "/graphql",
            {"content": b"x" * 70_000, "headers": {"content-type": "application/json"}},
        ),
        ("GET", "/healthz", {}),
        ("GET", "/nowhere", {}),
        ("POST", "/token", {"data": {"username": "a@b.co", "password": "wrong password"}}),
        ("GET", "/graphql", {"headers": {"Accept": "text/html"}}),
        ("GET", "/docs", {}),
    ],
)
def test_every_response_has_security_headers(
    client: httpx.Client, method: str, path: str, kwargs: dict[str, object]
) -> None:
    response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    # ASVS 5.0 3.4.3 and 3.4.6: every response has a CSP with these three.
    for directive in ("frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"):
        assert directive in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


def test_api_responses_allow_nothing_to_load(client: httpx.Client) -> None:
    response = client.post("/graphql", json={"query": "{ __typename }"})
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


class _InlineScripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[tuple[str, str]] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "style" or (tag == "script" and "src" not in dict(attrs)):
            self._open = tag
            self.blocks.append((tag, ""))

    def handle_data(self, data: str) -> None:
        if self._open:
            tag, text = self.blocks[-1]
            self.blocks[-1] = (tag, text + data)

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def test_graphiql_csp_allows_only_own_assets_and_its_inline_blocks(client: httpx.Client) -> None:
    page = client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    directives = dict(
        (d.split()[0], d.split()[1:]) for d in page.headers["content-security-policy"].split("; ")
    )
    assert directives["default-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    for directive in ("script-src", "style-src"):
        sources = directives[directive]
        assert "'unsafe-inline'" not in sources
        assert "'unsafe-eval'" not in sources
        assert not [s for s in sources if "://" in s or s == "*"], sources
    parser = _InlineScripts()
    parser.feed(page.text)
    assert parser.blocks, "the page has inline blocks to allow"
    for tag, text in parser.blocks:
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        directive = "script-src" if tag == "script" else "style-src"
        assert f"'sha256-{digest}'" in directives[directive]


def test_graphiql_assets_are_cacheable(client: httpx.Client) -> None:
    response = client.get("/static/graphiql/MANIFEST.json")
    assert response.status_code == 200
    assert response.headers.get("cache-control") != "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_graphql_response_json_is_used_when_asked_for(client: httpx.Client) -> None:
    accept = "application/graphql-response+json, application/json;q=0.9"
    ok = client.post("/graphql", json={"query": "{ __typename }"}, headers={"Accept": accept})
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("application/graphql-response+json")
    bad = client.post("/graphql", json={"query": "{ nope }"}, headers={"Accept": accept})
    # The GraphQL over HTTP spec: in this media type a request error is a 4xx.
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/graphql-response+json")
    plain = client.post("/graphql", json={"query": "{ __typename }"})
    assert plain.headers["content-type"] == "application/json"
    preferred_json = client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"Accept": "application/json, application/graphql-response+json;q=0.5"},
    )
    assert preferred_json.headers["content-type"] == "application/json"
