"""Start real ``authgraph`` processes on free loopback ports, for end-to-end tests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx

AUTHGRAPH = str(Path(sys.executable).with_name("authgraph"))
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SPA_SERVER = EXAMPLES / "spa" / "serve.py"
RESOURCE_SERVER = EXAMPLES / "resource_server" / "server.py"
STARTUP_SECONDS = 60  # a loaded, shared machine starts a server slowly
# Limits generous enough that a server shared by many tests (or a fuzzer) never locks anyone
# out: the operations reach the resolvers instead of the rate limiter.
RELAXED_LIMITS = {
    "LOGIN_RATE_LIMIT": "100000/minute",
    "LOGIN_IP_RATE_LIMIT": "100000/minute",
    "SIGNUP_RATE_LIMIT": "100000/minute",
    "REFRESH_RATE_LIMIT": "100000/minute",
    "EMAIL_RATE_LIMIT": "100000/minute",
    "EMAIL_IP_RATE_LIMIT": "100000/minute",
    "MAX_MUTATION_FIELDS": "20",
}
# What a server's log shows when it failed a request: an exception that reached uvicorn, one
# that authgraph masked as "Unexpected error." (logged at ERROR with its traceback), any other
# record at ERROR or above, and an access line with a 5xx status.
_LOG_PROBLEM = re.compile(
    r"Traceback \(most recent call last\)"
    r"|Exception in ASGI application"
    r"|^ERROR:|^CRITICAL:|\d \b(?:ERROR|CRITICAL)\b "
    r'|HTTP/[\d.]+" 5\d\d\b',
    re.MULTILINE,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def authgraph_env(**settings: str) -> dict[str, str]:
    """The current environment plus authgraph settings, with cheap bcrypt for tests."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JWT_", "KEY_", "AUTHGRAPH_ENV", "INTROSPECTION_"))
    }
    env.update({"BCRYPT_ROUNDS": "4", "SESSION_PRUNE_INTERVAL_SECONDS": "0", **settings})
    return env


def run_cli(*args: str, env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AUTHGRAPH, *args], env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=60
    )


def server_log(cwd: Path, base: str) -> Path:
    """The file that :func:`serve` (run in ``cwd``) writes the server at ``base``'s output to."""
    return cwd / f"server-{base.rsplit(':', 1)[1]}.log"


def log_problems(text: str) -> list[str]:
    """The lines of a server log that show a failed request: a 5xx is a bug.

    A request that was the client's mistake is a 4xx and logs at most a warning, so each
    line returned is something to fix (or a failure the test caused on purpose).
    """
    return [line for line in text.splitlines() if _LOG_PROBLEM.search(line)]


class Served(NamedTuple):
    """A running server: its base URL, and its process for a test to signal."""

    base: str
    process: subprocess.Popen[bytes]


@contextmanager
def serve(env: Mapping[str, str], cwd: Path, port: int | None = None) -> Iterator[str]:
    """Run ``authgraph serve`` until the block ends; yield its base URL once it is healthy."""
    with serve_process(env, cwd, port) as served:
        yield served.base


@contextmanager
def serve_process(
    env: Mapping[str, str], cwd: Path, port: int | None = None, *, workers: int = 1
) -> Iterator[Served]:
    """:func:`serve` with ``--workers``, yielding the process too (to kill or freeze it; with
    one worker it is the server itself; it may be dead at exit)."""
    port = port or free_port()
    command = [AUTHGRAPH, "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    with _running(command, env, cwd, port, "/healthz") as served:
        yield served


@contextmanager
def serve_command(
    command: list[str],
    env: Mapping[str, str],
    cwd: Path,
    port: int,
    startup_seconds: float = STARTUP_SECONDS,
) -> Iterator[Served]:
    """Run an ``authgraph serve`` command line of one's own (a systemd unit's) on ``port``."""
    with _running(command, env, cwd, port, "/healthz", startup_seconds) as served:
        yield served


@contextmanager
def serve_spa(
    api_url: str, cwd: Path, port: int | None = None, *, trusted_documents: bool = False
) -> Iterator[str]:
    """Serve examples/spa pointed at ``api_url`` (its GraphQL URL); yield the SPA's base URL.

    ``trusted_documents``: the SPA sends documentIds of examples/spa/trusted-documents.json.
    """
    port = port or free_port()
    command = [sys.executable, str(SPA_SERVER), "--port", str(port), "--api", api_url]
    if trusted_documents:
        command.append("--trusted-documents")
    with _running(command, os.environ, cwd, port, "/") as served:
        yield served.base


@contextmanager
def serve_resource_server(
    api: str, cwd: Path, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Run examples/resource_server against the API at ``api``; yield its base URL."""
    port = free_port()
    command = [sys.executable, str(RESOURCE_SERVER), "--port", str(port), "--api", api, *args]
    with _running(command, env or os.environ, cwd, port, "/healthz") as served:
        yield served.base


@contextmanager
def _running(
    command: list[str],
    env: Mapping[str, str],
    cwd: Path,
    port: int,
    probe: str,
    startup_seconds: float = STARTUP_SECONDS,
) -> Iterator[Served]:
    """Run ``command`` until the block ends; yield it once ``probe`` answers 200."""
    log = (cwd / f"server-{port}.log").open("w")
    process = subprocess.Popen(
        command, env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_seconds
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
        yield Served(base, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
