"""The database work an authenticated request costs, counted on the real app's engine.

The session check (is the session live, does the user exist) and the viewer's row come
from one joined statement; an operation that never asks for the viewer touches nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from tests.conftest import MakeClient
from tests.factories import LOGOUT, VIEWER, error_codes, gql, signup


@dataclass
class DatabaseWork:
    statements: list[str] = field(default_factory=list)
    checkouts: int = 0
    held: set[int] = field(default_factory=set)
    """Connections checked out from the loop and not yet returned to the pool."""

    @property
    def selects(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")]


def for_the_request() -> bool:
    """Whether the current thread works for requests, not for the mail sender.

    Requests run on the loop, the session-check threads and the use-case workers; the mail
    sender polls the outbox on its own schedule from asyncio's default executor, whose
    threads asyncio names ``asyncio_<n>``, so its work is left out of the count.
    """
    return not threading.current_thread().name.startswith("asyncio_")


@contextmanager
def counting(client: TestClient) -> Iterator[DatabaseWork]:
    """Record the statements and pool checkouts the app's engines see for requests."""
    state = client.app.state.authgraph  # type: ignore[attr-defined]
    engines: set[Engine] = {state.engine, state.reader or state.engine}
    work = DatabaseWork()

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if for_the_request():
            work.statements.append(statement)

    def on_checkout(dbapi_connection: Any, *_args: Any) -> None:
        if for_the_request():
            work.checkouts += 1
            work.held.add(id(dbapi_connection))

    def on_checkin(dbapi_connection: Any, *_args: Any) -> None:
        work.held.discard(id(dbapi_connection))

    for engine in engines:
        event.listen(engine, "before_cursor_execute", on_execute)
        event.listen(engine.pool, "checkout", on_checkout)
        event.listen(engine.pool, "checkin", on_checkin)
    try:
        yield work
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", on_execute)
            event.remove(engine.pool, "checkout", on_checkout)
            event.remove(engine.pool, "checkin", on_checkin)


def test_viewer_costs_one_select_and_one_checkout(client: TestClient) -> None:
    account = signup(client)
    with counting(client) as work:
        body = gql(client, VIEWER, token=account["accessToken"])
    assert body["data"]["viewer"]["email"] == account["user"]["email"]
    assert len(work.statements) == 1, work.statements
    assert len(work.selects) == 1
    assert work.checkouts == 1


def test_connection_is_returned_after_each_operation(client: TestClient) -> None:
    account = signup(client)
    for query in (VIEWER, "{ viewer { sessions { id } } }"):
        with counting(client) as work:
            gql(client, query, token=account["accessToken"])
        assert work.checkouts >= 1
        assert work.held == set()


def test_viewer_repeated_stays_one_select_each(client: TestClient) -> None:
    account = signup(client)
    for _ in range(3):
        with counting(client) as work:
            gql(client, VIEWER, token=account["accessToken"])
        assert len(work.statements) == 1, work.statements


def test_viewer_of_revoked_session_costs_one_select(client: TestClient) -> None:
    account = signup(client)
    gql(client, LOGOUT, {"scope": "CURRENT"}, token=account["accessToken"])
    with counting(client) as work:
        body = gql(client, VIEWER, token=account["accessToken"])
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert len(work.statements) == 1, work.statements


def test_typename_with_token_touches_no_database(client: TestClient) -> None:
    account = signup(client)
    with counting(client) as work:
        body = gql(client, "{ __typename }", token=account["accessToken"])
    assert body == {"data": {"__typename": "Query"}}
    assert work.statements == []
    assert work.checkouts == 0


def test_viewer_with_forged_token_touches_no_database(client: TestClient) -> None:
    account = signup(client)
    header_and_claims = account["accessToken"].rsplit(".", 1)[0]
    forged = header_and_claims + "." + "A" * 43  # a well-formed but wrong HS256 signature
    with counting(client) as work:
        body = gql(client, VIEWER, token=forged)
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert work.checkouts == 0


def test_viewer_is_one_network_round_trip_on_postgresql(
    make_client: MakeClient, postgres_url: str, tmp_path: Path
) -> None:
    """Count what libpq really sends: a pre-ping, BEGIN or ROLLBACK would each be a flight."""
    client = make_client(database_url=postgres_url)
    account = signup(client)
    state = client.app.state.authgraph  # type: ignore[attr-defined]
    trace = (tmp_path / "libpq.trace").open("w+b")
    traced: list[Any] = []

    def on_checkout(dbapi_connection: Any, *_args: Any) -> None:
        if for_the_request():  # not the mail sender's polls
            dbapi_connection.pgconn.trace(trace.fileno())
            traced.append(dbapi_connection)

    engines = {state.engine, state.reader}
    for engine in engines:
        event.listen(engine.pool, "checkout", on_checkout)
    try:
        body = gql(client, VIEWER, token=account["accessToken"])
    finally:
        for engine in engines:
            event.remove(engine.pool, "checkout", on_checkout)
        for connection in traced:
            connection.pgconn.untrace()
    assert body["data"]["viewer"]["id"] == account["user"]["id"]
    trace.seek(0)
    sent = [line.split("\t") for line in trace.read().decode().splitlines()]
    # Each Query, or each Sync closing an extended-protocol batch, waits for the server.
    flights = [
        fields[3:]
        for fields in sent
        if len(fields) > 3 and fields[1] == "F" and fields[3] in ("Query", "Sync")
    ]
    assert len(flights) == 1, flights


def test_viewer_survives_server_dropping_connections(
    make_client: MakeClient, postgres_url: str
) -> None:
    """Without a pre-ping, a connection the server closed is found by the read: retried once."""
    from sqlalchemy import create_engine, text

    from db.engine import normalize_database_url

    client = make_client(database_url=postgres_url)
    account = signup(client)
    assert gql(client, VIEWER, token=account["accessToken"])["data"]["viewer"] is not None
    killer = create_engine(normalize_database_url(postgres_url))
    with killer.begin() as connection:
        killed = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    killer.dispose()
    assert killed >= 1
    body = gql(client, VIEWER, token=account["accessToken"])
    assert body["data"]["viewer"]["id"] == account["user"]["id"]
    assert "errors" not in body
