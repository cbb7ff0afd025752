"""The Content-Security-Policy of an html page, computed from the page itself.

Inline ``<script>`` and ``<style>`` blocks are allowed by their SHA-256 hashes, and every
other asset only from our own origin: whatever the page's html becomes, its policy follows.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from html.parser import HTMLParser


class _InlineBlocks(HTMLParser):
    """Collects the text of inline scripts (those without ``src``) and of style blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._current: list[str] | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and "src" not in dict(attrs):
            self._current, self._buffer = self.scripts, []
        elif tag == "style":
            self._current, self._buffer = self.styles, []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._buffer.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._current is not None and tag in ("script", "style"):
            self._current.append("".join(self._buffer))
            self._current = None


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@functools.lru_cache(maxsize=8)
def page_csp(html: str) -> str:
    """A strict policy for ``html``: own-origin assets plus its inline blocks, by hash.

    Computed once per distinct page (cached), so a page rendered once per process costs one
    parse.
    """
    blocks = _InlineBlocks()
    blocks.feed(html)
    blocks.close()
    scripts = " ".join(["'self'", *dict.fromkeys(_sha256(s) for s in blocks.scripts)])
    styles = " ".join(["'self'", *dict.fromkeys(_sha256(s) for s in blocks.styles)])
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {scripts}",
            f"style-src {styles}",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
