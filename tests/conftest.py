"""Shared fixtures: a real database per test (SQLite always, PostgreSQL when reachable)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from auth.config import Secret
from auth.settings import AuthSettings
from db.engine import normalize_database_url
from db.migrate import upgrade
from db.models import Base
from graph.app import create_app
from graph.settings import DatabaseSettings, HttpSettings, Settings
from mail.settings import MailSettings, smtp_endpoint
from tests.mailbox import Mailbox, smtp_server
from tests.servers import free_port

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
# CI sets this: there a missing service is a failure, not a reason to skip.
REQUIRE_SERVICES = os.environ.get("AUTHGRAPH_TEST_REQUIRE_SERVICES") == "1"
TEST_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
# Every table the models declare: a new one is emptied between tests with no edit here.
TABLES = tuple(table.name for table in reversed(Base.metadata.sorted_tables))


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
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A fresh, migrated database for one test, on each backend in turn."""
    if request.param == "sqlite":
        path = tmp_path / "authgraph.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    yield from empty_postgres(request)


def empty_postgres(request: pytest.FixtureRequest) -> Iterator[str]:
    """The test PostgreSQL database, emptied before and after use (for fixtures to yield from)."""
    url: str = request.getfixturevalue("postgres_url")
    _truncate(url)
    yield url
    _truncate(url)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Development settings against the test database, with cheap bcrypt."""
    return Settings(
        database=DatabaseSettings(database_url=database_url),
        auth=AuthSettings(jwt_secret=Secret(TEST_SECRET), bcrypt_rounds=4),
        http=HttpSettings(session_prune_interval_seconds=0),
        mail=MailSettings(mail_dir=str(tmp_path / "mail")),
    )


MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(settings: Settings) -> Iterator[MakeClient]:
    """Start the app (lifespan included) with settings overridden by keyword."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> TestClient:
            app = create_app(settings.with_values(**overrides))
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
