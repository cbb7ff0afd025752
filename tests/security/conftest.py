"""Attack tests: each sends one attack over HTTP and checks the defence that answers it.

These are transport and policy checks, so they run on SQLite only (the ``database_url``
fixture is narrowed here); the database-specific behaviour is covered in tests/graph.

An attack that needs no settings of its own (the ``client`` fixture) is sent to the suite's
shared real ``authgraph serve`` (tests/conftest.py ``live_server``), whose log must show no
exception and no 5xx when the session ends; one that needs its own limits builds its app in
process (``make_client``, ``client_from``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from graph.app import create_app
from graph.settings import Settings
from tests.conftest import GRAPHQL_PATHS

MakeClientFrom = Callable[..., TestClient]


@pytest.fixture(params=GRAPHQL_PATHS)
def graphql_path(request: pytest.FixtureRequest) -> str:
    """Every attack runs through the lean path and through Strawberry's full pipeline."""
    path: str = request.param
    return path


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "authgraph.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def client(live_client: httpx.Client) -> httpx.Client:
    """The shared real server, in development mode with the default document limits."""
    return live_client


@pytest.fixture
def client_from(settings: Settings) -> Iterator[MakeClientFrom]:
    """Like ``make_client``, but the requests come from the socket address ``peer``."""
    with ExitStack() as stack:

        def make(peer: str = "203.0.113.7", **overrides: Any) -> TestClient:
            app = create_app(settings.with_values(**overrides))
            return stack.enter_context(
                TestClient(app, base_url="http://testserver", client=(peer, 40000))
            )

        yield make
