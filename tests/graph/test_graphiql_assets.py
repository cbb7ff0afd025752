"""The GraphiQL page must load every asset from our own server, verified by SRI."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from strawberry.http.ides import get_graphql_ide_html

import graph.graphiql as graphiql
from graph.graphiql import (
    FIRST_PARTY_SCRIPT,
    FIRST_PARTY_STATIC_DIR,
    FIRST_PARTY_STYLESHEET,
    GRAPHIQL_STATIC_DIR,
    render_local_graphiql_html,
)

PREFIX = "/static/graphiql"
FIRST_PARTY = {f"/static/{FIRST_PARTY_SCRIPT}", f"/static/{FIRST_PARTY_STYLESHEET}"}


class _AssetRefs(HTMLParser):
    """Collects (url, integrity) of every <script src> and <link href>."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        url = attr.get("src") if tag == "script" else attr.get("href") if tag == "link" else None
        # The favicon is an inline data: URI, not an asset to serve.
        if url and not url.startswith("data:"):
            self.refs.append((url, attr.get("integrity")))


def _all_refs(html: str) -> list[tuple[str, str | None]]:
    parser = _AssetRefs()
    parser.feed(html)
    return parser.refs


def _asset_refs(html: str) -> list[tuple[str, str | None]]:
    """The vendored assets: everything but our own start-up script and stylesheet."""
    return [(url, integrity) for url, integrity in _all_refs(html) if url not in FIRST_PARTY]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # The renderer caches per prefix; isolate tests that monkeypatch its input.
    render_local_graphiql_html.cache_clear()
    yield
    render_local_graphiql_html.cache_clear()


def test_render_contains_no_unpkg_when_assets_are_vendored() -> None:
    assert "unpkg" not in render_local_graphiql_html(PREFIX).lower()


def test_render_has_no_external_src_or_href_when_assets_are_vendored() -> None:
    refs = _asset_refs(render_local_graphiql_html(PREFIX))
    assert len(refs) == 7
    for url, _ in refs:
        assert url.startswith(f"{PREFIX}/"), url
        assert "://" not in url, url
        assert not url.startswith("//"), url


def test_render_replaces_inline_startup_with_first_party_script() -> None:
    html = render_local_graphiql_html(PREFIX)
    assert {url for url, _ in _all_refs(html)} >= FIRST_PARTY
    # No inline script is left for a Content-Security-Policy to allow.
    assert "<script>" not in html
    assert "<title>authgraph GraphiQL</title>" in html
    for name in (FIRST_PARTY_SCRIPT, FIRST_PARTY_STYLESHEET):
        assert (FIRST_PARTY_STATIC_DIR / name).is_file(), name


def test_render_serves_first_party_files_from_root_when_prefix_is_top_level() -> None:
    urls = {url for url, _ in _all_refs(render_local_graphiql_html("/graphiql"))}
    assert f"/{FIRST_PARTY_SCRIPT}" in urls
    assert not any(url.startswith("//") for url in urls)


def test_render_raises_when_startup_script_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulates a Strawberry upgrade that splits its start-up code in two.
    html = get_graphql_ide_html("graphiql").replace("</body>", "<script>1</script></body>")
    monkeypatch.setattr(graphiql, "get_graphql_ide_html", lambda _ide: html)
    with pytest.raises(RuntimeError, match="inline start-up"):
        render_local_graphiql_html(PREFIX)


def test_render_references_existing_files_when_prefix_has_trailing_slash() -> None:
    for url, _ in _asset_refs(render_local_graphiql_html(f"{PREFIX}/")):
        local_name = url.removeprefix(f"{PREFIX}/")
        assert "/" not in local_name, url
        assert (GRAPHIQL_STATIC_DIR / local_name).is_file(), url


def test_local_files_match_integrity_when_rendered() -> None:
    for url, integrity in _asset_refs(render_local_graphiql_html(PREFIX)):
        data = (GRAPHIQL_STATIC_DIR / url.removeprefix(f"{PREFIX}/")).read_bytes()
        actual = "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
        assert integrity == actual, url


def test_render_returns_cached_html_when_called_twice() -> None:
    assert render_local_graphiql_html(PREFIX) is render_local_graphiql_html(PREFIX)


def test_render_raises_when_unvendored_cdn_url_remains(monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulates a Strawberry upgrade that adds/changes a CDN asset.
    extra = '<script src="https://unpkg.com/new-dep@1.0.0/x.js"></script></head>'
    html = get_graphql_ide_html("graphiql").replace("</head>", extra)
    monkeypatch.setattr(graphiql, "get_graphql_ide_html", lambda _ide: html)
    with pytest.raises(RuntimeError, match="new-dep"):
        render_local_graphiql_html(PREFIX)
