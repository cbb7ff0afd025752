"""Strawberry's GraphiQL page, pointed at our vendored copies of its assets, made auth-aware.

Strawberry's page loads React/GraphiQL from the unpkg CDN. We serve pinned copies
from graph/static/graphiql/ (produced by scripts/refresh_graphiql_assets.py) so
GraphiQL works without any network access beyond our own server.

Strawberry's inline start-up script is replaced by our own external one,
graph/static/authgraph-graphiql.js: it remembers the access token that signup, login
and refreshToken return and sends it on the following operations (see that file).
Being external, it needs no hash or nonce in the page's Content-Security-Policy.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

GRAPHIQL_STATIC_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
MANIFEST_PATH = GRAPHIQL_STATIC_DIR / "MANIFEST.json"
# Our own files, beside (not inside) the vendored directory, which the refresh script owns.
FIRST_PARTY_STATIC_DIR = GRAPHIQL_STATIC_DIR.parent
FIRST_PARTY_SCRIPT = "authgraph-graphiql.js"
FIRST_PARTY_STYLESHEET = "authgraph-graphiql.css"
PAGE_TITLE = "authgraph GraphiQL"

_REFRESH_HINT = "run `python scripts/refresh_graphiql_assets.py` to re-vendor them"
# Any src/href that would still leave our origin (http://, https:// or protocol-relative).
_EXTERNAL_REF_RE = re.compile(
    r"""\b(?:src|href)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", re.IGNORECASE
)
# A <script> element without attributes: Strawberry's inline start-up code.
_INLINE_SCRIPT_RE = re.compile(r"<script>.*?</script>", re.IGNORECASE | re.DOTALL)
_TITLE_RE = re.compile(r"<title>.*?</title>", re.IGNORECASE | re.DOTALL)


def _load_url_map() -> dict[str, str]:
    """Map each original CDN URL to its local file name, from MANIFEST.json."""
    try:
        manifest = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
        url_map = {str(a["url"]): str(a["local_name"]) for a in manifest["assets"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(
            f"GraphiQL asset manifest {MANIFEST_PATH} is missing or invalid; {_REFRESH_HINT}"
        ) from exc
    # Catch a deploy that shipped the manifest but not the files (e.g. package data not included).
    missing = sorted(
        name for name in url_map.values() if not (GRAPHIQL_STATIC_DIR / name).is_file()
    )
    if missing:
        raise RuntimeError(
            f"GraphiQL assets missing from {GRAPHIQL_STATIC_DIR}: {missing}; {_REFRESH_HINT}"
        )
    return url_map


def _with_first_party_bootstrap(html: str, first_party_prefix: str) -> str:
    """Swap Strawberry's inline start-up script for ours, and retitle the page."""
    for name in (FIRST_PARTY_SCRIPT, FIRST_PARTY_STYLESHEET):
        if not (FIRST_PARTY_STATIC_DIR / name).is_file():
            raise RuntimeError(f"GraphiQL start-up file {FIRST_PARTY_STATIC_DIR / name} is missing")
    inline = _INLINE_SCRIPT_RE.findall(html)
    if len(inline) != 1:
        raise RuntimeError(
            f"expected one inline start-up <script> in Strawberry's GraphiQL page, found "
            f"{len(inline)}; update graph/graphiql.py for this Strawberry version"
        )
    ours = (
        f'<link rel="stylesheet" href="{first_party_prefix}/{FIRST_PARTY_STYLESHEET}" />\n'
        f'    <script src="{first_party_prefix}/{FIRST_PARTY_SCRIPT}"></script>'
    )
    html = html.replace(inline[0], ours)
    return _TITLE_RE.sub(f"<title>{PAGE_TITLE}</title>", html, count=1)


@functools.cache
def render_local_graphiql_html(static_prefix: str) -> str:
    """Return authgraph's GraphiQL html with every asset served from our own origin.

    ``static_prefix`` is the URL path where graph/static/graphiql/ is served, e.g.
    ``"/static/graphiql"``; a trailing slash is ignored. Its parent path serves
    graph/static/, where our own start-up script and stylesheet live. The SRI
    ``integrity`` attributes are kept, so the browser still verifies the local
    copies. The result is computed once per prefix and cached.

    Raises:
        RuntimeError: if the manifest, an asset file or our start-up files are
            missing, or if the page still references an external URL afterwards
            (typically because a Strawberry upgrade changed its assets and they
            need re-vendoring).
    """
    prefix = static_prefix.rstrip("/")
    html = _with_first_party_bootstrap(
        get_graphql_ide_html("graphiql"), posixpath.dirname(prefix).rstrip("/")
    )
    for url, local_name in _load_url_map().items():
        html = html.replace(url, f"{prefix}/{local_name}")
    # Fail loudly rather than silently serve a page that needs the internet.
    leftovers = sorted(set(_EXTERNAL_REF_RE.findall(html)))
    if leftovers or "unpkg" in html.lower():
        raise RuntimeError(
            f"Strawberry's GraphiQL page still references external assets {leftovers or ['unpkg']} "
            f"not covered by {MANIFEST_PATH}; {_REFRESH_HINT}"
        )
    return html
