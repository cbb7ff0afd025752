"""A frozen PostgreSQL (a private cluster whose processes get SIGSTOP) does not freeze the server.

Liveness, anonymous operations and the GraphiQL page keep answering while the database is
frozen; `viewer`, login and `/token` answer SERVICE_UNAVAILABLE (HTTP 503, Retry-After)
within the statement and connect timeouts; after SIGCONT everything recovers, and the log
holds one line for the outage's start and one, with the count, for its end.

The shared PostgreSQL is never touched: the test runs `initdb` into a directory of its own
and starts that cluster on a free loopback port (as the `postgres` user when run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import skip_or_fail
from tests.e2e.test_frozen_redis import assert_unavailable, eventually
from tests.factories import VIEWER, signup
from tests.servers import authgraph_env, free_port, run_cli, serve

SECRET = "frozen-postgres-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
STATEMENT_TIMEOUT = 0.5
CONNECT_TIMEOUT = 1  # libpq waits at least 2 s
# The longest a request may take while the server is frozen: a wait for an answer
# (statement timeout + 1 s of grace), then a reconnect (2 s), with room for a loaded machine.
OUTAGE_ANSWER_BOUND = 8.0
LOGIN = (
    'mutation { login(input: {email: "nobody@example.com", password: "wrong guess"}) '
    "{ __typename } }"
)


@dataclass
class PrivatePostgres:
    url: str
    process: subprocess.Popen[bytes]

    def freeze(self) -> None:
        """SIGSTOP the postmaster, then every backend and helper process it forked.

        Each child of the postmaster is a process group of its own (it calls setsid), so
        one signal to the group would stop the postmaster alone.
        """
        os.kill(self.process.pid, signal.SIGSTOP)  # first: it forks nothing new once stopped
        for child in _children(self.process.pid):
            os.kill(child, signal.SIGSTOP)

    def thaw(self) -> None:
        for child in _children(self.process.pid):
            os.kill(child, signal.SIGCONT)
        os.kill(self.process.pid, signal.SIGCONT)


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _server_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    on_path = shutil.which("initdb")
    for candidate in [*found, *([on_path] if on_path else [])]:
        bindir = Path(candidate).parent
        if (bindir / "postgres").exists():
            return bindir
    return None


def _as_owner() -> dict[str, Any]:
    """Run the server as `postgres` when we are root (it refuses to run as root)."""
    if os.geteuid() != 0:
        return {}
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        skip_or_fail("running as root and there is no postgres user to run a private cluster")
        raise AssertionError from None  # unreachable: skip_or_fail raises
    return {"user": owner.pw_uid, "group": owner.pw_gid}


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = _server_binaries()
    if not Path("/proc/self/stat").exists():
        skip_or_fail("freezing a private PostgreSQL needs /proc to find its processes")
    if bindir is None:
        skip_or_fail("PostgreSQL server binaries (initdb, postgres) are not installed")
        raise AssertionError  # unreachable
    owner = _as_owner()
    # Not pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    data = Path(tempfile.mkdtemp(prefix="authgraph-frozen-pg-"))
    if owner:
        os.chown(data, owner["user"], owner["group"])
    port = free_port()
    process: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [bindir / "initdb", "-D", data / "db", "-U", "postgres", "-A", "trust", "--no-sync"],
            cwd=data,
            check=True,
            capture_output=True,
            timeout=120,
            **owner,
        )
        log = (data / "server.log").open("wb")
        process = subprocess.Popen(
            [
                bindir / "postgres",
                "-D",
                data / "db",
                "-p",
                str(port),
                "-k",
                data,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=60",
            ],
            cwd=data,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # no terminal's Ctrl-C reaches it
            **owner,
        )
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        eventually(lambda: _answers(url, process), seconds=30)
        yield PrivatePostgres(url, process)
    finally:
        if process is not None:
            PrivatePostgres("", process).thaw()
            process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(data, ignore_errors=True)


def _answers(url: str, process: subprocess.Popen[bytes]) -> None:
    assert process.poll() is None, "the private PostgreSQL exited"
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError as exc:
        raise AssertionError(str(exc)) from None


def timed(call: Callable[[], httpx.Response]) -> tuple[float, httpx.Response]:
    start = time.monotonic()
    answer = call()
    return time.monotonic() - start, answer


def test_frozen_postgres_answers_service_unavailable_and_leaves_the_rest_answering(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    env = authgraph_env(
        DATABASE_URL=private_postgres.url,
        JWT_SECRET=SECRET,
        DB_STATEMENT_TIMEOUT_SECONDS=str(STATEMENT_TIMEOUT),
        DB_CONNECT_TIMEOUT_SECONDS=str(CONNECT_TIMEOUT),
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with (
        serve(env, tmp_path) as base,
        httpx.Client(base_url=base, timeout=30) as client,
        httpx.Client(base_url=base, timeout=30) as other,
        ThreadPoolExecutor(1) as background,
    ):
        account = signup(client)
        auth = {"authorization": f"Bearer {account['accessToken']}"}

        def viewer() -> httpx.Response:
            return other.post("/graphql", json={"query": VIEWER}, headers=auth)

        assert viewer().json()["data"]["viewer"]["id"] == account["user"]["id"]

        private_postgres.freeze()
        try:
            # A viewer request waits on the frozen server; meanwhile the event loop is free.
            pending = background.submit(timed, viewer)
            time.sleep(0.3)
            health = [timed(lambda: client.get("/healthz")) for _ in range(5)]
            assert all(answer.status_code == 200 for _, answer in health)
            # A loose liveness bound, not a speed measurement: blocked, it took the freeze.
            seconds = [elapsed for elapsed, _ in health]
            assert statistics.median(seconds) < 0.1, seconds
            assert max(seconds) < 1.0, seconds
            anonymous = client.post("/graphql", json={"query": "{ __typename }"})
            assert anonymous.json() == {"data": {"__typename": "Query"}}
            page = client.get("/graphql", headers={"accept": "text/html"})
            assert page.status_code == 200
            assert "graphiql" in page.text.lower()

            elapsed, answer = pending.result(timeout=30)
            assert_unavailable(answer)
            assert elapsed < OUTAGE_ANSWER_BOUND
            elapsed, answer = timed(viewer)  # the pool knows by now: no connection answers
            assert_unavailable(answer)
            assert elapsed < OUTAGE_ANSWER_BOUND
            elapsed, answer = timed(lambda: client.post("/graphql", json={"query": LOGIN}))
            assert_unavailable(answer)
            assert elapsed < OUTAGE_ANSWER_BOUND
            form = {"username": account["user"]["email"], "password": "not the password"}
            elapsed, token = timed(lambda: client.post("/token", data=form))
            assert token.status_code == 503
            assert int(token.headers["retry-after"]) > 0
            assert elapsed < OUTAGE_ANSWER_BOUND
            assert client.get("/healthz").status_code == 200
        finally:
            private_postgres.thaw()

        # Recovery: the next requests find fresh connections.
        recovered = eventually(lambda: _viewer_ok(viewer(), account["user"]["id"]), seconds=10)
        assert recovered["data"]["viewer"]["email"] == account["user"]["email"]
        login = client.post("/graphql", json={"query": LOGIN})
        assert login.json() == {"data": {"login": {"__typename": "InvalidCredentials"}}}

        log = tmp_path / f"server-{base.rsplit(':', 1)[1]}.log"
        lines = eventually(lambda: _database_lines(log, 2))
        assert "database unavailable" in lines[0]
        # viewer twice, login, /token: four failed requests, one outage.
        assert "database available again after 4 failed requests" in lines[1], lines
        assert "unexpected error" not in log.read_text()


def _viewer_ok(answer: httpx.Response, user_id: str) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["data"]["viewer"]["id"] == user_id, body
    return body


def _database_lines(log: Path, count: int) -> list[str]:
    lines = [line for line in log.read_text().splitlines() if "authgraph.outages: database" in line]
    assert len(lines) == count, lines
    return lines
