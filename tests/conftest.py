"""Shared fixtures: a real database per test (SQLite always, PostgreSQL when reachable)."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from auth.config import Secret
from auth.settings import AuthSettings
from db.engine import normalize_database_url
from db.features import metadata
from db.migrate import upgrade
from graph.app import create_app
from graph.root import ensure_signing_key
from graph.settings import DatabaseSettings, HttpSettings, Settings
from mail.settings import MailSettings, smtp_endpoint
from tests.mailbox import Mailbox, smtp_server
from tests.servers import (
    RELAXED_LIMITS,
    authgraph_env,
    free_port,
    log_problems,
    run_cli,
    serve,
    server_log,
)

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
# CI sets this: there a missing service is a failure, not a reason to skip.
REQUIRE_SERVICES = os.environ.get("AUTHGRAPH_TEST_REQUIRE_SERVICES") == "1"
TEST_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
# One KEY_ENCRYPTION_KEY for the suite: apps built from one test's settings share its keys.
TEST_KEK = "test-key-encryption-key-0123456789-abcdefghijklmnop"
# Every table the models declare: a new one is emptied between tests with no edit here.
TABLES = tuple(table.name for table in reversed(metadata().sorted_tables))


def skip_or_fail(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (AUTHGRAPH_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test: isolation without re-running Alembic."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    engine = create_engine(
        normalize_database_url(POSTGRES_URL), connect_args={"connect_timeout": 3}
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        skip_or_fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {type(exc).__name__}")
    finally:
        engine.dispose()
    upgrade(POSTGRES_URL)
    return POSTGRES_URL


def _truncate(url: str) -> None:
    engine = create_engine(normalize_database_url(url))
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database a test runs on; a module may override it to add targets of its own."""
    param: str = request.param
    return param


@pytest.fixture
def database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A fresh, migrated database for one test, on each backend in turn."""
    if backend == "sqlite":
        path = tmp_path / "authgraph.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    assert backend == "postgresql", f"no database for the {backend!r} target"
    yield from empty_postgres(request)


def empty_postgres(request: pytest.FixtureRequest) -> Iterator[str]:
    """The test PostgreSQL database, emptied before and after use (for fixtures to yield from)."""
    url: str = request.getfixturevalue("postgres_url")
    _truncate(url)
    yield url
    _truncate(url)


# The two ways a document runs (graph/lean.py): the lean path, and Strawberry's full pipeline
# (LEAN_EXECUTION=false, and where the lean path hands a request on). Security and transport
# tests run on both: `pytestmark = pytest.mark.parametrize("graphql_path", GRAPHQL_PATHS)`.
GRAPHQL_PATHS = ("lean", "full")


@pytest.fixture
def graphql_path() -> str:
    """How the app runs documents; the lean path unless a module parametrises both."""
    return "lean"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, graphql_path: str) -> Settings:
    """Development settings against the test database, with cheap bcrypt."""
    return Settings(
        database=DatabaseSettings(database_url=database_url),
        # ES256 (the default): the suite exercises asymmetric tokens; HS256 has its own tests.
        auth=AuthSettings(
            jwt_secret=Secret(TEST_SECRET), key_encryption_key=Secret(TEST_KEK), bcrypt_rounds=4
        ),
        http=HttpSettings(session_prune_interval_seconds=0, lean_execution=graphql_path == "lean"),
        mail=MailSettings(mail_dir=str(tmp_path / "mail")),
    )


MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(settings: Settings) -> Iterator[MakeClient]:
    """Start the app (lifespan included) with settings overridden by keyword."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> TestClient:
            chosen = settings.with_values(**overrides)
            if chosen.is_production:
                # Production starts only once `authgraph migrate` has made the first key.
                ensure_signing_key(chosen)
            app = create_app(chosen)
            return stack.enter_context(TestClient(app, base_url="http://testserver"))

        yield make


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on a free loopback port, keeping what it receives."""
    with ExitStack() as stack:
        for attempt in range(3):
            try:
                box = stack.enter_context(smtp_server(free_port()))
                break
            except Exception:
                # Another process took the port between probe and bind: take another one.
                if attempt == 2:
                    raise
        yield box


def mail_settings(port: int) -> dict[str, Any]:
    """Settings overrides that deliver to 127.0.0.1:``port`` and retry quickly."""
    return {
        "smtp": smtp_endpoint(f"smtp://127.0.0.1:{port}"),
        "app_url": "https://app.example.com",
        "outbox_poll_interval_seconds": 0.2,
        "outbox_retry_base_seconds": 0.05,
        "outbox_retry_max_seconds": 0.4,
        "smtp_timeout_seconds": 5.0,
    }


@pytest.fixture
def mail_client(make_client: MakeClient, mailbox: Mailbox) -> TestClient:
    """The app, delivering its mail to :func:`mailbox`."""
    return make_client(**mail_settings(mailbox.port))


@dataclass
class LiveServer:
    """The suite's one shared ``authgraph serve``, and what its clients were answered."""

    base: str
    log: Path
    statuses: Counter[int] = field(default_factory=Counter)

    def record(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1

    def problems(self) -> list[str]:
        """Why the run is a failure: every 5xx answered, and every log line showing one."""
        answered = [
            f"answered {s} ({n} times)" for s, n in sorted(self.statuses.items()) if s >= 500
        ]
        return answered + log_problems(self.log.read_text(errors="replace"))


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real ``authgraph serve`` (SQLite, development) for the whole session.

    The bad-input families (tests/graph/test_request_decoding.py), the fuzzer and the attack
    suite (tests/security) send their requests here. A 5xx is a bug: when the session ends,
    the server's log must show no unhandled or masked exception, no error and no 5xx, and no
    client may have been answered a 5xx; otherwise the run fails at this fixture's teardown.
    """
    yield from _live_server(tmp_path_factory, "live-server")


@pytest.fixture(scope="session")
def live_server_full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """:func:`live_server`'s twin with ``LEAN_EXECUTION=false``: Strawberry's full pipeline."""
    yield from _live_server(tmp_path_factory, "live-server-full", LEAN_EXECUTION="false")


def _live_server(
    tmp_path_factory: pytest.TempPathFactory, name: str, **env_overrides: str
) -> Iterator[LiveServer]:
    cwd = tmp_path_factory.mktemp(name)
    env = authgraph_env(
        DATABASE_URL=f"sqlite:///{cwd / 'live.db'}",
        JWT_SECRET=TEST_SECRET,
        KEY_ENCRYPTION_KEY=TEST_KEK,
        MAIL_DIR=str(cwd / "mail"),
        # Access lines are logged at INFO: the 5xx check reads them.
        LOG_LEVEL="INFO",
        **RELAXED_LIMITS,
        **env_overrides,
    )
    migrated = run_cli("migrate", env=env, cwd=cwd)
    assert migrated.returncode == 0, migrated.stderr
    with serve(env, cwd) as base:
        server = LiveServer(base, server_log(cwd, base))
        yield server
    text = server.log.read_text(errors="replace")
    if 'HTTP/1.1" 200' not in text:
        # The readiness probe is always there: without it, access logging is off.
        pytest.fail(f"the shared server's log {server.log} has no access lines to check")
    problems = server.problems()
    if problems:
        shown = "\n".join(problems[:40])
        pytest.fail(f"a 5xx is a bug: the shared server {base} failed ({server.log}):\n{shown}")


@pytest.fixture
def live_client(request: pytest.FixtureRequest, graphql_path: str) -> Iterator[httpx.Client]:
    """An HTTP client of :func:`live_server` (of its full-pipeline twin when ``graphql_path``
    is ``"full"``); every answer it gets is counted."""
    server: LiveServer = request.getfixturevalue(
        "live_server_full" if graphql_path == "full" else "live_server"
    )
    with httpx.Client(
        base_url=server.base, timeout=30, event_hooks={"response": [server.record]}
    ) as client:
        yield client
