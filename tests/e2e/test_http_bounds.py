"""The HTTP server's bounds, shown with raw sockets against a real ``authgraph serve``.

Header size (``MAX_HEADER_BYTES``), header count (``MAX_HEADER_COUNT``) and slow clients
(``HEADER_READ_TIMEOUT_SECONDS``, ``BODY_READ_TIMEOUT_SECONDS``), each refused before the
app runs; after each, the next valid request still answers.
"""

from __future__ import annotations

import json
import selectors
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from graph.settings import HttpSettings
from tests.factories import SIGNUP, VIEWER, gql, signup, unique_email
from tests.servers import authgraph_env, run_cli, serve_process

SECRET = "http-bounds-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
# The size and count bounds are the defaults; the timeouts are shortened for the test.
MAX_HEADER_BYTES = HttpSettings.max_header_bytes
MAX_HEADER_COUNT = HttpSettings.max_header_count
TIMEOUT_SECONDS = 1.0
# How long a refused or timed-out connection may take to close: the timeout, the second for
# which a refused client's input is still read and dropped, and slack for a loaded machine.
CLOSE_WITHIN_SECONDS = TIMEOUT_SECONDS + 1 + 4


@dataclass
class Server:
    base: str
    host: str
    port: int
    process: subprocess.Popen[bytes]

    def rss_kib(self) -> int:
        """The server process's resident memory (one worker: the server itself)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def assert_serving(self) -> None:
        """A valid GraphQL request on a new connection answers 200."""
        with httpx.Client(base_url=self.base) as client:
            assert gql(client, VIEWER) == {"data": {"viewer": None}}


@contextmanager
def start(tmp_path: Path, *, workers: int = 1, database_url: str | None = None) -> Iterator[Server]:
    env = authgraph_env(
        DATABASE_URL=database_url or f"sqlite:///{tmp_path / 'bounds.db'}",
        JWT_SECRET=SECRET,
        HEADER_READ_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
        BODY_READ_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with serve_process(env, tmp_path, workers=workers) as (base, process):
        parts = urlsplit(base)
        assert parts.hostname is not None
        assert parts.port is not None
        yield Server(base, parts.hostname, parts.port, process)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per backend: the bounds sit below the app, but the table's rows are checked
    against both databases like every other row of issue 18's table."""
    database_url = (
        request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    )
    with start(tmp_path_factory.mktemp("http-bounds"), database_url=database_url) as started:
        yield started


def post_head(body: bytes, extra: bytes = b"", *, target: bytes = b"/graphql") -> bytes:
    return (
        b"POST " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n"
    )


def graphql_body(query: str, variables: dict[str, str] | None = None) -> bytes:
    return json.dumps({"query": query, "variables": variables or {}}).encode()


def exchange(server: Server, data: bytes, *, timeout: float = 10) -> bytes:
    """Send ``data`` on a new connection and read one response (b"" if reset or closed)."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        # A reset means the server stopped reading: what it answered, if anything, is below.
        with suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        return read_response(sock)


def read_response(sock: socket.socket) -> bytes:
    """One response: its head and ``Content-Length`` bytes, or what came before the close."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
            head, separator, rest = received.partition(b"\r\n\r\n")
            if separator:
                length = _content_length(head)
                if length is not None and len(rest) >= length:
                    break
    except ConnectionResetError:
        pass
    return received


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return None


def status_of(response: bytes) -> int | None:
    """The status code of a raw response, or None when the server answered nothing."""
    if not response:
        return None
    return int(response.split(b" ", 2)[1])


def head_of_size(size: int, body: bytes) -> bytes:
    """A POST head of exactly ``size`` bytes (padded with one header), for ``body``."""
    bare = post_head(body, b"X-Pad: \r\n")
    pad = size - len(bare)
    assert pad >= 0
    return post_head(body, b"X-Pad: " + b"p" * pad + b"\r\n")


# -- header size -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [100_000, 1_000_000], ids=["100KB", "1MB"])
def test_oversized_header_is_refused_before_the_app_runs(server: Server, size: int) -> None:
    email = unique_email("big-header")
    body = graphql_body(SIGNUP, {"email": email, "password": "correct horse battery staple"})
    response = exchange(server, post_head(body, b"X-Big: " + b"a" * size + b"\r\n") + body)
    # 431, or a connection reset when the client was still sending as the server closed.
    assert status_of(response) in (431, None), response[:200]
    if response:
        error = json.loads(response.partition(b"\r\n\r\n")[2])["errors"][0]
        assert error["extensions"]["code"] == "REQUEST_HEADER_FIELDS_TOO_LARGE"
    server.assert_serving()
    # The signup never ran: the address is still free.
    with httpx.Client(base_url=server.base) as client:
        signup(client, email=email)


def test_head_of_exactly_max_header_bytes_is_answered(server: Server) -> None:
    body = graphql_body(VIEWER)
    response = exchange(server, head_of_size(MAX_HEADER_BYTES, body) + body)
    assert status_of(response) == 200, response[:200]
    over = exchange(server, head_of_size(MAX_HEADER_BYTES + 1, body) + body)
    assert status_of(over) == 431, over[:200]


def test_4kb_authorization_header_and_cookie_are_answered(server: Server) -> None:
    # Well under the limit, as a large token or a browser's cookies would be: no false 431.
    with httpx.Client(base_url=server.base) as client:
        response = client.post(
            "/graphql",
            json={"query": VIEWER},
            headers={"Authorization": "Bearer " + "t" * 4096, "Cookie": "c=" + "v" * 4096},
        )
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_head_arriving_a_few_bytes_at_a_time_is_counted_across_reads(server: Server) -> None:
    body = graphql_body(VIEWER)
    request = head_of_size(MAX_HEADER_BYTES + 1, body) + body
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sent = 0
        try:
            for start in range(0, len(request), 1024):
                sock.sendall(request[start : start + 1024])
                sent += 1024
                time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = read_response(sock)
    assert status_of(response) in (431, None)
    server.assert_serving()


def test_64mib_header_stream_is_refused_before_it_is_buffered(server: Server) -> None:
    server.assert_serving()  # warm: the first requests grow the process by themselves
    before = server.rss_kib()
    chunk = b"a" * 65536
    sent = 0
    deadline = time.monotonic() + 30
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ")
        try:
            while sent < 64 * 1024 * 1024 and time.monotonic() < deadline:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
    grown_kib = server.rss_kib() - before
    assert sent < 64 * 1024 * 1024, "the server read the whole 64 MiB header"
    assert grown_kib < 4 * 1024, f"the server grew by {grown_kib} KiB"
    server.assert_serving()


# -- header count ----------------------------------------------------------------------------


def test_2000_headers_are_refused_with_431(server: Server) -> None:
    body = graphql_body(VIEWER)
    many = b"".join(b"h%d: v\r\n" % i for i in range(2000))
    assert len(many) < MAX_HEADER_BYTES  # the count, not the size, is what is refused
    response = exchange(server, post_head(body, many) + body)
    assert status_of(response) == 431, response[:200]
    assert b"More than %d request headers" % MAX_HEADER_COUNT in response
    server.assert_serving()


def test_max_header_count_headers_are_answered(server: Server) -> None:
    body = graphql_body(VIEWER)
    base_headers = 3  # Host, Content-Type, Content-Length
    extra = b"".join(b"h%d: v\r\n" % i for i in range(MAX_HEADER_COUNT - base_headers))
    assert status_of(exchange(server, post_head(body, extra) + body)) == 200
    one_more = extra + b"last: v\r\n"
    assert status_of(exchange(server, post_head(body, one_more) + body)) == 431


def test_bounds_apply_with_several_workers(tmp_path: Path) -> None:
    with start(tmp_path, workers=2) as served:
        body = graphql_body(VIEWER)
        many = b"".join(b"h%d: v\r\n" % i for i in range(2000))
        assert status_of(exchange(served, post_head(body, many) + body)) == 431
        big = b"X-Big: " + b"a" * 100_000 + b"\r\n"
        assert status_of(exchange(served, post_head(body, big) + body)) in (431, None)
        served.assert_serving()


# -- slow clients ----------------------------------------------------------------------------


def test_slow_header_clients_are_dropped_after_the_header_timeout(server: Server) -> None:
    selector = selectors.DefaultSelector()
    sockets = []
    for _ in range(20):
        sock = socket.create_connection((server.host, server.port), timeout=5)
        sock.sendall(b"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        sockets.append(sock)
    by_fd = {sock.fileno(): sock for sock in sockets}
    answers: dict[socket.socket, bytes] = {sock: b"" for sock in sockets}
    closed: set[socket.socket] = set()
    started = time.monotonic()
    next_byte = started
    try:
        while len(closed) < len(sockets) and time.monotonic() - started < 15:
            if time.monotonic() >= next_byte:  # a header byte a second on each connection
                for sock in set(sockets) - closed:
                    try:
                        sock.send(b"x")
                    except OSError:
                        closed.add(sock)
                next_byte += 1
            for key, _ in selector.select(timeout=0.1):
                sock = by_fd[key.fd]
                try:
                    chunk = sock.recv(4096)
                except OSError:
                    chunk = b""
                answers[sock] += chunk
                if not chunk:
                    closed.add(sock)
                    selector.unregister(sock)
        elapsed = time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close()
        selector.close()
    assert len(closed) == 20, f"{20 - len(closed)} slow connections still open"
    assert elapsed < CLOSE_WITHIN_SECONDS
    assert {status_of(answer) for answer in answers.values()} <= {408, None}
    assert any(status_of(answer) == 408 for answer in answers.values())
    server.assert_serving()


def test_silent_connection_is_closed_after_the_header_timeout(server: Server) -> None:
    started = time.monotonic()
    with socket.create_connection((server.host, server.port), timeout=CLOSE_WITHIN_SECONDS) as s:
        response = b""
        while chunk := s.recv(4096):
            response += chunk
    assert time.monotonic() - started < CLOSE_WITHIN_SECONDS
    assert response == b""  # nothing was asked: closed without an answer, like an idle one
    server.assert_serving()


def test_slow_body_is_dropped_after_the_body_timeout(server: Server) -> None:
    body = graphql_body(VIEWER)
    started = time.monotonic()
    with socket.create_connection((server.host, server.port), timeout=CLOSE_WITHIN_SECONDS) as s:
        s.sendall(post_head(body) + body[:5])  # then nothing more
        response = b""
        try:
            while chunk := s.recv(4096):
                response += chunk
        except ConnectionResetError:
            pass
    assert time.monotonic() - started < CLOSE_WITHIN_SECONDS
    assert response == b""  # closed, never answered: the app saw a disconnect
    server.assert_serving()


def test_kept_alive_connection_may_idle_past_the_header_timeout(server: Server) -> None:
    # The header timeout runs from a request's first byte, not from the previous response.
    body = graphql_body(VIEWER)
    request = post_head(body) + body
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(request)
        assert status_of(read_response(sock)) == 200
        time.sleep(TIMEOUT_SECONDS + 0.5)  # under uvicorn's keep-alive timeout (5 s)
        sock.sendall(request)
        assert status_of(read_response(sock)) == 200


def test_pipelined_requests_are_all_answered(server: Server) -> None:
    body = graphql_body(VIEWER)
    request = post_head(body) + body
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(request * 3)
        received = b""
        deadline = time.monotonic() + 10
        while received.count(b"HTTP/1.1 200") < 3 and time.monotonic() < deadline:
            received += sock.recv(65536)
    assert received.count(b"HTTP/1.1 200") == 3
