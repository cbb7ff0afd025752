"""What clients see while a dependency is down: SERVICE_UNAVAILABLE, 503 and Retry-After.

The database and the Redis here are a loopback port nothing listens on (connection
refused), so these run everywhere; the frozen servers are in tests/e2e.
"""

from __future__ import annotations

import logging
import shutil
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from auth.config import Secret
from graph.app import create_app
from graph.outages import OutageLog
from graph.settings import Settings
from tests.conftest import GRAPHQL_PATHS, TEST_SECRET
from tests.factories import LOGIN, VIEWER, gql, signup


@pytest.fixture(params=GRAPHQL_PATHS)
def graphql_path(request: pytest.FixtureRequest) -> str:
    """Outages are answered alike on the lean path and on the full pipeline."""
    path: str = request.param
    return path


UNAVAILABLE = "SERVICE_UNAVAILABLE"
REVOKE = 'mutation { revokeSession(id: "x") { __typename } }'
A_LOGIN = {"query": LOGIN, "variables": {"email": "a@example.com", "password": "x" * 10}}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "jwt_secret": Secret(TEST_SECRET),
        # HS256: the test can sign a token while the database (which holds the ES256 keys)
        # is down; with ES256 such a token would be an unknown kid, which is an outage too.
        "jwt_algorithm": "HS256",
        "bcrypt_rounds": 4,
        "session_prune_interval_seconds": 0,
        "mail_dir": str(tmp_path / "mail"),
    }
    return Settings().with_values(**{**defaults, **overrides})


@pytest.fixture
def database_down(tmp_path: Path, graphql_path: str) -> Iterator[TestClient]:
    """The app against a PostgreSQL that refuses connections."""
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/authgraph"
    settings = settings_for(tmp_path, database_url=url, db_connect_timeout_seconds=2)
    app = create_app(settings.with_values(lean_execution=graphql_path == "lean"))
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def a_valid_token(client: TestClient) -> str:
    """A well-signed token for a session the database would have to confirm."""
    toolkit = client.app.state.authgraph.toolkit  # type: ignore[attr-defined]
    issued = toolkit.tokens.issue(user_id="u-1", session_id="s-1", now=datetime.now(UTC))
    token: str = issued.token
    return token


def assert_request_level(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == [UNAVAILABLE]
    assert body["errors"][0]["extensions"]["retryAfter"] == 5
    assert "unavailable" in body["errors"][0]["message"]


def test_viewer_with_database_down_is_503_with_retry_after(database_down: TestClient) -> None:
    token = a_valid_token(database_down)
    response = database_down.post(
        "/graphql", json={"query": VIEWER}, headers={"authorization": f"Bearer {token}"}
    )
    assert_request_level(response)


def test_field_that_resolved_keeps_200_beside_the_outage(database_down: TestClient) -> None:
    token = a_valid_token(database_down)
    response = database_down.post(
        "/graphql",
        json={"query": "{ __typename viewer { id } }"},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"__typename": "Query", "viewer": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == [UNAVAILABLE]
    assert body["errors"][0]["path"] == ["viewer"]


def test_mutations_with_database_down_are_503(database_down: TestClient) -> None:
    token = a_valid_token(database_down)
    login = database_down.post("/graphql", json=A_LOGIN)
    assert_request_level(login)
    # An access rule needing the session check fails the same way, before the resolver.
    revoke = database_down.post(
        "/graphql", json={"query": REVOKE}, headers={"authorization": f"Bearer {token}"}
    )
    assert_request_level(revoke)


def test_token_route_with_database_down_is_503(database_down: TestClient) -> None:
    response = database_down.post("/token", data={"username": "a@example.com", "password": "x"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["retry_after"] == 5


def test_requests_needing_no_database_answer_while_it_is_down(database_down: TestClient) -> None:
    assert database_down.get("/healthz").status_code == 200
    body = gql(database_down, "{ __typename }")
    assert body == {"data": {"__typename": "Query"}}
    assert gql(database_down, VIEWER) == {"data": {"viewer": None}}  # anonymous: no check


def test_database_outage_is_logged_once_not_per_request(
    database_down: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = a_valid_token(database_down)
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            database_down.post(
                "/graphql", json={"query": VIEWER}, headers={"authorization": f"Bearer {token}"}
            )
    # The start-up, which finds the keys' database down, may be what noticed it first.
    records = caplog.get_records("setup") + caplog.records
    outage = [r for r in records if r.name == "authgraph.outages"]
    assert [r.getMessage().split(":")[0] for r in outage] == ["database unavailable"]
    assert outage[0].exc_info is None
    assert not [r for r in caplog.records if r.name == "authgraph.graph"]  # no "unexpected"


def test_mail_sender_during_a_database_outage_logs_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/authgraph"
    settings = settings_for(
        tmp_path, database_url=url, db_connect_timeout_seconds=2, outbox_poll_interval_seconds=0.05
    )
    with caplog.at_level(logging.WARNING), TestClient(create_app(settings)) as client:
        state = client.app.state.authgraph  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while not state.outages.is_down("database") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # several more passes of the sender fail meanwhile
    assert state.outages.is_down("database")
    outage = [r.getMessage() for r in caplog.records if r.name == "authgraph.outages"]
    assert [m.split(":")[0] for m in outage] == ["database unavailable"]
    assert not [r for r in caplog.records if r.name == "authgraph.mail" and r.exc_info]


def test_outage_noticed_by_a_background_task_counts_no_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outages = OutageLog()
    with caplog.at_level(logging.WARNING, logger="authgraph.outages"):
        outages.noticed("database", "timeout")
        outages.noticed("database", "timeout")
        outages.failed("database", "timeout")
        outages.answered("database")
    assert [r.getMessage() for r in caplog.records] == [
        "database unavailable: timeout",
        "database available again after 1 failed request",
    ]


@pytest.fixture
def redis_down(tmp_path: Path, sqlite_template: Path, graphql_path: str) -> Iterator[TestClient]:
    """The app on a working SQLite database, counting limits in a Redis that refuses."""
    database = tmp_path / "authgraph.db"
    shutil.copy(sqlite_template, database)
    settings = settings_for(
        tmp_path,
        database_url=f"sqlite:///{database}",
        rate_limit_storage=f"redis://127.0.0.1:{closed_port()}",
        rate_limit_timeout_seconds=0.5,
        lean_execution=graphql_path == "lean",
    )
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


def test_rate_limited_calls_with_redis_down_are_503(
    redis_down: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            login = redis_down.post("/graphql", json=A_LOGIN)
            assert_request_level(login)
        token = redis_down.post("/token", data={"username": "a@example.com", "password": "x"})
    assert token.status_code == 503
    outage = [r.getMessage() for r in caplog.records if r.name == "authgraph.outages"]
    assert len(outage) == 1
    assert outage[0].startswith("rate-limit storage unavailable: ")


def test_outage_log_counts_failed_requests_until_an_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outages = OutageLog()
    answered = outages.listener("database")
    with caplog.at_level(logging.WARNING, logger="authgraph.outages"):
        answered()  # nothing under way: silent
        for _ in range(3):
            outages.failed("database", "connection refused")
        outages.failed("rate-limit storage", "timeout")
        answered()
        answered()
        outages.failed("database", "connection refused")
    assert [r.getMessage() for r in caplog.records] == [
        "database unavailable: connection refused",
        "rate-limit storage unavailable: timeout",
        "database available again after 3 failed requests",
        "database unavailable: connection refused",
    ]
    assert outages.is_down("database")
    assert outages.is_down("rate-limit storage")


def test_working_database_is_not_an_outage(client: TestClient) -> None:
    account = signup(client)
    body = gql(client, VIEWER, token=account["accessToken"])
    assert body["data"]["viewer"]["id"] == account["user"]["id"]
    assert not client.app.state.authgraph.outages.is_down("database")  # type: ignore[attr-defined]
