"""Real Chromium (Debian's, never a downloaded build) against real ``authgraph serve`` processes.

Every page a test opened is photographed when the test ends, pass or fail, into
test-artifacts/screenshots/ at the repository root.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import skip_or_fail
from tests.servers import EXAMPLES, authgraph_env, free_port, serve, serve_spa

SPA_MANIFEST = EXAMPLES / "spa" / "trusted-documents.json"

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Request

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking switches Chromium calls Google hosts on start.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
SECRET = "browser-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
# Generous for a loaded 2-core machine, small enough that a hung page fails fast.
TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        skip_or_fail(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is missing (pip install -e '.[dev]')")
    # The folder shows the latest run only: no picture from an older run can be mistaken for it.
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS, timeout=60_000
        )
        yield browser
        browser.close()


@dataclass
class Seen:
    """Every request the pages of one browser context made."""

    requests: list[Request] = field(default_factory=list)

    def record(self, request: Request) -> None:
        self.requests.append(request)

    def hosts(self) -> set[str]:
        return {_host(request.url) for request in self.requests}

    def graphql(self, needle: str) -> list[Request]:
        """POSTs to /graphql whose body contains ``needle`` (an operation or field name)."""
        return [
            r
            for r in self.requests
            if r.method == "POST" and r.url.endswith("/graphql") and needle in (r.post_data or "")
        ]


def _host(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def context(
    browser: Browser, seen: Seen, request: pytest.FixtureRequest
) -> Iterator[BrowserContext]:
    """A fresh profile (cookies, storage) for one test; its pages are photographed at the end."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    context.on("request", seen.record)
    try:
        yield context
    finally:
        _photograph(context.pages, request.node.name)
        context.close()


def _photograph(pages: list[Page], test_name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name)
    for index, page in enumerate(pages, start=1):
        suffix = f"-tab{index}" if len(pages) > 1 else ""
        try:
            page.screenshot(path=SCREENSHOTS / f"{stem}{suffix}.png", full_page=True)
        except Exception as exc:  # a crashed page must not hide the test's own failure
            print(f"screenshot of {page.url} failed: {exc}")


class Servers:
    """Starts the API and the SPA for one test; everything stops when the test ends."""

    def __init__(self, stack: ExitStack, workdir: Path, template: Path) -> None:
        self.stack = stack
        self.workdir = workdir
        self.database = workdir / "authgraph.db"
        shutil.copy(template, self.database)  # an already migrated SQLite file

    def api_env(self, **settings: str) -> dict[str, str]:
        return authgraph_env(
            DATABASE_URL=f"sqlite:///{self.database}", JWT_SECRET=SECRET, **settings
        )

    def api_context(self, port: int, **settings: str) -> AbstractContextManager[str]:
        """``authgraph serve`` on ``port`` until the ``with`` block ends (for restarts)."""
        return serve(self.api_env(**settings), self.workdir, port=port)

    def api(self, **settings: str) -> str:
        """Start the API; return its base URL on ``localhost`` (same site as the SPA)."""
        base = self.stack.enter_context(serve(self.api_env(**settings), self.workdir))
        return base.replace("127.0.0.1", "localhost")

    def spa(self, api: str, port: int | None = None, *, trusted_documents: bool = False) -> str:
        """Serve examples/spa pointed at ``api``; return its base URL on ``localhost``."""
        base = self.stack.enter_context(
            serve_spa(
                f"{api}/graphql", self.workdir, port=port, trusted_documents=trusted_documents
            )
        )
        return base.replace("127.0.0.1", "localhost")

    def api_and_spa(
        self, *, trusted_documents: bool = False, **settings: object
    ) -> tuple[str, str]:
        """The API in cookie mode with CORS open to the SPA's origin, and the SPA.

        ``trusted_documents``: the API runs only the SPA's manifest (TRUSTED_DOCUMENTS_ONLY)
        and the SPA sends documentIds.
        """
        spa_port = free_port()
        if trusted_documents:
            settings = {
                "TRUSTED_DOCUMENTS": str(SPA_MANIFEST),
                "TRUSTED_DOCUMENTS_ONLY": "true",
                **settings,
            }
        chosen = {
            # Passkey ceremonies run on the SPA's page: its origin is the one they carry.
            "WEBAUTHN_ORIGINS": f"http://localhost:{spa_port}",
            **{key: str(value) for key, value in settings.items()},
        }
        api = self.api(
            REFRESH_TOKEN_TRANSPORT="cookie", CORS_ORIGINS=f"http://localhost:{spa_port}", **chosen
        )
        return api, self.spa(api, port=spa_port, trusted_documents=trusted_documents)


@pytest.fixture
def servers(tmp_path: Path, sqlite_template: Path) -> Iterator[Servers]:
    with ExitStack() as stack:
        yield Servers(stack, tmp_path, sqlite_template)
