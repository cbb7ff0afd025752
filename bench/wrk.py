"""Drive a server with wrk and read what it prints."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"
INSTALL_HINT = (
    "wrk is not installed: apt-get install -y wrk (Debian/Ubuntu), brew install wrk (macOS)"
)

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_LATENCY = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.MULTILINE)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.MULTILINE
)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_SCRIPT_FAILURES = re.compile(r"^script failures: (\d+)\s*$", re.MULTILINE)
# Printed by bench/lua/mix.lua.
_OUTCOMES = re.compile(r"^outcomes: served (\d+) rate_limited (\d+)\s*$", re.MULTILINE)
_P95 = re.compile(r"^p95 us: (\d+)\s*$", re.MULTILINE)


class WrkError(RuntimeError):
    pass


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    """Socket errors, non-2xx answers and answers the script found wrong, added up."""
    timeouts: int = 0
    """Requests wrk gave up on after its ``--timeout`` (also counted in ``errors``)."""
    p95_ms: float | None = None
    served: int | None = None
    """Answers the script counted as served (``mix.lua``), and as RateLimited below."""
    rate_limited: int | None = None


def parse(output: str) -> WrkResult:
    """Read a ``wrk --latency`` report (and the failure count our Lua scripts print)."""
    rps = _RPS.search(output)
    requests = _REQUESTS.search(output)
    latencies = {int(p): float(v) * _UNITS[u] for p, v, u in _LATENCY.findall(output)}
    if rps is None or requests is None or 50 not in latencies or 99 not in latencies:
        raise WrkError(f"unreadable wrk output:\n{output}")
    errors = timeouts = 0
    if socket := _SOCKET_ERRORS.search(output):
        errors += sum(int(n) for n in socket.groups())
        timeouts = int(socket.group(4))
    if non_2xx := _NON_2XX.search(output):
        errors += int(non_2xx.group(1))
    if failures := _SCRIPT_FAILURES.search(output):
        errors += int(failures.group(1))
    outcomes = _OUTCOMES.search(output)
    p95 = _P95.search(output)
    return WrkResult(
        requests=int(requests.group(1)),
        requests_per_second=float(rps.group(1)),
        p50_ms=latencies[50],
        p99_ms=latencies[99],
        errors=errors,
        timeouts=timeouts,
        p95_ms=int(p95.group(1)) / 1000 if p95 else None,
        served=int(outcomes.group(1)) if outcomes else None,
        rate_limited=int(outcomes.group(2)) if outcomes else None,
    )


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkError(INSTALL_HINT)
    return path


def command(
    url: str,
    script: str,
    *,
    seconds: float,
    connections: int,
    cpus: str | None,
    script_args: Sequence[str] = (),
) -> list[str]:
    """The wrk command line: one thread, ``--latency``, pinned to ``cpus`` with taskset."""
    pin = ["taskset", "-c", cpus] if cpus is not None else []
    return [
        *pin,
        wrk_path(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA_DIR / script),
        url,
        "--",
        *script_args,
    ]


def run(
    url: str,
    script: str,
    *,
    seconds: float,
    connections: int,
    cpus: str | None,
    script_args: Sequence[str] = (),
) -> WrkResult:
    argv = command(
        url, script, seconds=seconds, connections=connections, cpus=cpus, script_args=script_args
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise WrkError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse(done.stdout)
