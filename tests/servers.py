"""Start real ``authgraph`` processes on free loopback ports, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

AUTHGRAPH = str(Path(sys.executable).with_name("authgraph"))
SPA_SERVER = Path(__file__).resolve().parent.parent / "examples" / "spa" / "serve.py"
STARTUP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def authgraph_env(**settings: str) -> dict[str, str]:
    """The current environment plus authgraph settings, with cheap bcrypt for tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "AUTHGRAPH_ENV"))}
    env.update({"BCRYPT_ROUNDS": "4", "SESSION_PRUNE_INTERVAL_SECONDS": "0", **settings})
    return env


def run_cli(*args: str, env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AUTHGRAPH, *args], env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=60
    )


@contextmanager
def serve(env: Mapping[str, str], cwd: Path, port: int | None = None) -> Iterator[str]:
    """Run ``authgraph serve`` until the block ends; yield its base URL once it is healthy."""
    with serve_process(env, cwd, port) as (base, _):
        yield base


@contextmanager
def serve_process(
    env: Mapping[str, str], cwd: Path, port: int | None = None, *, workers: int = 1
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Like :func:`serve`, with ``--workers`` and the process (with one worker, the server)."""
    port = port or free_port()
    command = [AUTHGRAPH, "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    with _running(command, env, cwd, port, "/healthz") as (base, process):
        yield base, process


@contextmanager
def serve_spa(api_url: str, cwd: Path, port: int | None = None) -> Iterator[str]:
    """Serve examples/spa pointed at ``api_url`` (its GraphQL URL); yield the SPA's base URL."""
    port = port or free_port()
    command = [sys.executable, str(SPA_SERVER), "--port", str(port), "--api", api_url]
    with _running(command, os.environ, cwd, port, "/") as (base, _):
        yield base


@contextmanager
def _running(
    command: list[str], env: Mapping[str, str], cwd: Path, port: int, probe: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``command`` until the block ends; yield its base URL once ``probe`` answers 200."""
    log = (cwd / f"server-{port}.log").open("w")
    process = subprocess.Popen(
        command, env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {(cwd / f'server-{port}.log').read_text()}")
            try:
                if httpx.get(f"{base}{probe}", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command)} did not answer {probe} in time")
            time.sleep(0.1)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
