"""Start the servers under test as real processes, pinned to chosen cores."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

PYTHON = sys.executable
AUTHGRAPH = str(Path(sys.executable).with_name("authgraph"))
STARTUP_SECONDS = 90  # generous: two workers on a loaded machine start slowly
VIEWER_BODY = {"query": "{ viewer { id email } }"}


@dataclass(frozen=True)
class Variant:
    """A server to measure: a name for the table and the command that serves it."""

    name: str
    argv: tuple[str, ...]
    # Settings of this variant over the shared environment.
    env: tuple[tuple[str, str], ...] = ()
    # Whether its viewer load uses the HS256 tokens (Seeded.hs256_tokens_file).
    hs256: bool = False


AUTHGRAPH_SERVER = Variant(
    "authgraph (ES256)", (AUTHGRAPH, "serve", "--host", "127.0.0.1", "--port")
)
# The same server signing and verifying with JWT_SECRET: what ES256 costs beside it.
AUTHGRAPH_HS256 = Variant(
    "authgraph HS256",
    AUTHGRAPH_SERVER.argv,
    env=(("JWT_ALGORITHM", "HS256"),),
    hs256=True,
)
SAME_LAYER = Variant("same-layer route", (PYTHON, "-m", "bench.serve_reference", "layer", "--port"))
RAW_FLOOR = Variant("raw floor", (PYTHON, "-m", "bench.serve_reference", "raw", "--port"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One running server; ``stop()`` ends it (and only it)."""

    def __init__(self, variant: Variant, *, cpus: str, env: Mapping[str, str], cwd: Path) -> None:
        self.variant = variant
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f"{variant.name.replace(' ', '-')}-{self.port}.log"
        argv: Sequence[str] = ["taskset", "-c", cpus, *variant.argv, str(self.port)]
        self._log = self.log_path.open("w")
        # taskset execs the server, so this pid is the server's own.
        self.process = subprocess.Popen(
            argv,
            env={**env, **dict(variant.env)},
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, token: str, email: str) -> None:
        """Wait until the server answers ``viewer`` for ``token`` with ``email``."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.variant.name} exited:\n{self.log_path.read_text()}")
            try:
                response = httpx.post(
                    f"{self.url}/graphql",
                    json=VIEWER_BODY,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=5,
                )
                viewer = response.json()["data"]["viewer"]
                if viewer["email"] != email:
                    raise RuntimeError(f"{self.variant.name} answered {response.text}")
                return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.variant.name} did not start:\n{self.log_path.read_text()}"
                )
            time.sleep(0.2)

    def peak_rss_mb(self) -> float:
        """Peak resident memory so far (VmHWM), in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc status")

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server, all its threads together."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime and stime, fields 14 and 15 of proc(5), counted from after the name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
