"""Strawberry's GraphiQL page, pointed at our vendored copies of its assets.

Strawberry's page loads React/GraphiQL from the unpkg CDN. We serve pinned copies
from graph/static/graphiql/ (produced by scripts/refresh_graphiql_assets.py) so
GraphiQL works without any network access beyond our own server.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

GRAPHIQL_STATIC_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
MANIFEST_PATH = GRAPHIQL_STATIC_DIR / "MANIFEST.json"

_REFRESH_HINT = "run `python scripts/refresh_graphiql_assets.py` to re-vendor them"
# Any src/href that would still leave our origin (http://, https:// or protocol-relative).
_EXTERNAL_REF_RE = re.compile(
    r"""\b(?:src|href)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", re.IGNORECASE
)


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


@functools.cache
def render_local_graphiql_html(static_prefix: str) -> str:
    """Return Strawberry's GraphiQL html with every CDN asset served from ``static_prefix``.

    ``static_prefix`` is the URL path where graph/static/graphiql/ is served, e.g.
    ``"/static/graphiql"``; a trailing slash is ignored. The SRI ``integrity``
    attributes are kept, so the browser still verifies the local copies. The
    result is computed once per prefix and cached.

    Raises:
        RuntimeError: if the manifest or an asset file is missing, or if the page
            still references an external URL afterwards (typically because a
            Strawberry upgrade changed its assets and they need re-vendoring).
    """
    prefix = static_prefix.rstrip("/")
    html = get_graphql_ide_html("graphiql")
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
