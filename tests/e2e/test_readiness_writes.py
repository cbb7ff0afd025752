"""`/readyz` says when the database answers but takes no writes: full disk, read-only database.

SQLite: the database lives on a small tmpfs of the test's own, filled up with a file (a real
ENOSPC; chmod would not stop root, which CI runs as). PostgreSQL: the test's own database is
made read-only with ``default_transaction_read_only``, as a failed-over standby would be (a
private database: the test ends every connection to it).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from db.engine import normalize_database_url
from db.migrate import upgrade
from tests.factories import SIGNUP, gql, signup, unique_email
from tests.servers import authgraph_env, run_cli, serve

SECRET = "readiness-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
DISK_BYTES = 8 * 1024 * 1024


def _ready(client: httpx.Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz")
    body: dict[str, Any] = response.json()
    return response.status_code, body


def _signup_is_refused(client: httpx.Client) -> bool:
    body = gql(
        client,
        SIGNUP,
        {"email": unique_email(), "password": "correct horse battery staple"},
        expect_status=None,
    )
    return (body.get("data") or {}).get("signup") is None


@contextmanager
def small_disk(mountpoint: Path) -> Iterator[Path]:
    """A tmpfs of ``DISK_BYTES`` at ``mountpoint``; skips where this process may not mount."""
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        # Lazy: a straggling descriptor must not leave the mount behind.
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _fill(directory: Path) -> Path:
    """Write a file until the filesystem under ``directory`` is full; return it."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as file, suppress(OSError):
        while True:
            file.write(chunk)
    return filler


def test_readyz_reports_full_disk_on_sqlite(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        env = authgraph_env(DATABASE_URL=f"sqlite:///{disk / 'authgraph.db'}", JWT_SECRET=SECRET)
        assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
        with serve(env, tmp_path) as base, httpx.Client(base_url=base, timeout=15) as client:
            assert _ready(client) == (
                200,
                {
                    "status": "ok",
                    "database": True,
                    "database_writable": True,
                    "rate_limit_storage": True,
                },
            )
            signup(client)

            filler = _fill(disk)
            status, body = _ready(client)
            assert status == 503
            # It still answers reads: only the write probe can tell.
            assert body["database"] is True
            assert body["database_writable"] is False
            assert body["status"] == "unavailable"
            assert _signup_is_refused(client)

            filler.unlink()
            assert _ready(client)[0] == 200
            signup(client)


@pytest.fixture
def private_postgres(postgres_url: str) -> Iterator[str]:
    """A database of this test's own on the test server, migrated, dropped afterwards.

    Its own, because the test makes it read-only and ends every connection to it.
    """
    name = f"authgraph_readonly_{uuid.uuid4().hex[:12]}"
    url = make_url(normalize_database_url(postgres_url))
    server = create_engine(url, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    private = url.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(private)
        yield private
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def _set_read_only(admin: Any, database: str, read_only: bool) -> None:
    """Switch the database's default, then end its other connections so every new one sees it."""
    change = (
        "SET default_transaction_read_only = on"
        if read_only
        else "RESET default_transaction_read_only"
    )
    admin.execute(text(f'ALTER DATABASE "{database}" {change}'))
    admin.execute(
        text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid()"
        ),
        {"name": database},
    )


def test_readyz_reports_read_only_postgres(tmp_path: Path, private_postgres: str) -> None:
    url = private_postgres
    name = make_url(url).database
    assert name is not None
    env = authgraph_env(DATABASE_URL=url, JWT_SECRET=SECRET)
    admin_engine = create_engine(normalize_database_url(url), isolation_level="AUTOCOMMIT")
    try:
        with (
            admin_engine.connect() as admin,
            serve(env, tmp_path) as base,
            httpx.Client(base_url=base, timeout=15) as client,
        ):
            assert _ready(client)[1]["database_writable"] is True
            signup(client)
            try:
                _set_read_only(admin, name, True)
                status, body = _ready(client)
                assert status == 503
                assert body["database"] is True
                assert body["database_writable"] is False
                assert _signup_is_refused(client)
            finally:
                _set_read_only(admin, name, False)
            assert _ready(client) == (
                200,
                {
                    "status": "ok",
                    "database": True,
                    "database_writable": True,
                    "rate_limit_storage": True,
                },
            )
            signup(client)
    finally:
        admin_engine.dispose()
