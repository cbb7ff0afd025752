"""The database work an authenticated request costs, counted on the real app's engines and
on the session check's own thread-free connections (db/session_check.py).

The session check (is the session live, does the user exist) and the viewer's row come
from one joined statement; an operation that never asks for the viewer touches nothing.
A token's first check runs on a session-check thread through the reader engine; once the
token is known, on the loop through the thread-free read: both are counted.
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

from db.session_check import PostgresLiveReads, SqliteLiveReads
from tests.conftest import MakeClient
from tests.factories import LOGOUT, VIEWER, error_codes, gql, signup


@dataclass
class DatabaseWork:
    statements: list[str] = field(default_factory=list)
    checkouts: int = 0
    held: set[int] = field(default_factory=set)
    """Connections checked out from the loop and not yet returned to the pool."""
    live_reads: int = 0
    """Reads of the thread-free session check (on a connection of its own, not the pool's)."""

    @property
    def connections(self) -> int:
        return self.checkouts + self.live_reads

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

    reads = state.live_reads
    find_active = reads.find_active

    async def counted(**kwargs: Any) -> Any:
        work.live_reads += 1
        if isinstance(reads, PostgresLiveReads):
            # psycopg's asynchronous connections have no statement hook: the read is one
            # execute of one statement (and one flight: see the libpq trace test below).
            work.statements.append(reads._compiled.sql)
        return await find_active(**kwargs)

    if isinstance(reads, SqliteLiveReads):
        # SQLite reports each statement its connection really runs.
        reads._connect().set_trace_callback(work.statements.append)
    reads.find_active = counted
    for engine in engines:
        event.listen(engine, "before_cursor_execute", on_execute)
        event.listen(engine.pool, "checkout", on_checkout)
        event.listen(engine.pool, "checkin", on_checkin)
    try:
        yield work
    finally:
        del reads.find_active
        if isinstance(reads, SqliteLiveReads):
            reads._connect().set_trace_callback(None)
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
    assert work.connections == 1
    assert work.live_reads == 0  # a token's first check: on a thread, through the reader


def test_viewer_with_known_token_reads_once_without_the_pool(client: TestClient) -> None:
    account = signup(client)
    gql(client, VIEWER, token=account["accessToken"])  # the token is verified, then known
    with counting(client) as work:
        body = gql(client, VIEWER, token=account["accessToken"])
    assert body["data"]["viewer"]["email"] == account["user"]["email"]
    assert len(work.selects) == len(work.statements) == 1, work.statements
    assert (work.live_reads, work.checkouts) == (1, 0)


def test_connection_is_returned_after_each_operation(client: TestClient) -> None:
    account = signup(client)
    for query in (VIEWER, "{ viewer { sessions { id } } }"):
        with counting(client) as work:
            gql(client, query, token=account["accessToken"])
        assert work.connections >= 1
        assert work.held == set()


def test_viewer_repeated_stays_one_select_each(client: TestClient) -> None:
    account = signup(client)
    for _ in range(3):
        with counting(client) as work:
            gql(client, VIEWER, token=account["accessToken"])
        assert len(work.statements) == 1, work.statements
        assert work.connections == 1


def test_viewer_of_revoked_session_costs_one_select(client: TestClient) -> None:
    account = signup(client)
    gql(client, LOGOUT, {"scope": "CURRENT"}, token=account["accessToken"])
    with counting(client) as work:
        body = gql(client, VIEWER, token=account["accessToken"])
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert len(work.statements) == 1, work.statements


def test_typename_with_token_touches_no_database(client: TestClient) -> None:
    account = signup(client)
    gql(client, VIEWER, token=account["accessToken"])  # known from now on
    with counting(client) as work:
        body = gql(client, "{ __typename }", token=account["accessToken"])
    assert body == {"data": {"__typename": "Query"}}
    assert work.statements == []
    assert work.connections == 0


def test_viewer_with_forged_token_touches_no_database(client: TestClient) -> None:
    account = signup(client)
    header_and_claims = account["accessToken"].rsplit(".", 1)[0]
    forged = header_and_claims + "." + "A" * 43  # a well-formed but wrong HS256 signature
    with counting(client) as work:
        body = gql(client, VIEWER, token=forged)
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert work.connections == 0


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


def test_viewer_with_known_token_is_one_network_round_trip_on_postgresql(
    make_client: MakeClient, postgres_url: str, tmp_path: Path
) -> None:
    """The thread-free read's asynchronous connection sends one flight too."""
    client = make_client(database_url=postgres_url)
    account = signup(client)
    reads = client.app.state.authgraph.live_reads  # type: ignore[attr-defined]
    assert isinstance(reads, PostgresLiveReads)
    for _ in range(2):  # verified, then read once without a thread: a connection is open
        assert gql(client, VIEWER, token=account["accessToken"])["data"]["viewer"] is not None
    trace = (tmp_path / "libpq.trace").open("w+b")
    connections = list(reads._idle)
    assert connections
    for connection in connections:
        connection.pgconn.trace(trace.fileno())
    try:
        body = gql(client, VIEWER, token=account["accessToken"])
    finally:
        for connection in connections:
            connection.pgconn.untrace()
    assert body["data"]["viewer"]["id"] == account["user"]["id"]
    trace.seek(0)
    sent = [line.split("\t") for line in trace.read().decode().splitlines()]
    flights = [f[3:] for f in sent if len(f) > 3 and f[1] == "F" and f[3] in ("Query", "Sync")]
    assert len(flights) == 1, flights


def test_viewer_survives_server_dropping_connections(
    make_client: MakeClient, postgres_url: str
) -> None:
    """Without a pre-ping, a connection the server closed is found by the read: retried once.

    Both reads: a new token's (the reader engine's pooled connection) and a known token's
    (the thread-free read's idle asynchronous connection).
    """
    from sqlalchemy import create_engine, text

    from db.engine import normalize_database_url

    client = make_client(database_url=postgres_url)
    known, new = signup(client), signup(client)
    for _ in range(2):  # the second read leaves an asynchronous connection idle
        assert gql(client, VIEWER, token=known["accessToken"])["data"]["viewer"] is not None
    reads = client.app.state.authgraph.live_reads  # type: ignore[attr-defined]
    assert isinstance(reads, PostgresLiveReads)
    assert reads._idle
    killer = create_engine(normalize_database_url(postgres_url))
    with killer.begin() as connection:
        killed = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    killer.dispose()
    assert killed >= 2
    for account in (new, known):
        body = gql(client, VIEWER, token=account["accessToken"])
        assert body["data"]["viewer"]["id"] == account["user"]["id"]
        assert "errors" not in body
