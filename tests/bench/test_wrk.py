from __future__ import annotations

import pytest

from bench.wrk import LUA_DIR, WrkError, command, parse

REPORT = """\
Running 2s test @ http://127.0.0.1:41234
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    11.52ms    3.10ms  45.01ms   90.12%
    Req/Sec     2.80k   120.00     3.00k    75.00%
  Latency Distribution
     50%  850.00us
     75%   12.31ms
     90%   14.02ms
     99%    1.20s
  5612 requests in 2.00s, 1.23MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   2801.23
Transfer/sec:    628.71KB
script failures: 5
"""


def test_parse_reads_rate_latencies_and_errors() -> None:
    result = parse(REPORT)
    assert result.requests == 5612
    assert result.requests_per_second == pytest.approx(2801.23)
    assert result.p50_ms == pytest.approx(0.85)
    assert result.p99_ms == pytest.approx(1200)
    assert result.errors == 2 + 1 + 4 + 5


def test_parse_without_errors_counts_none() -> None:
    clean = "\n".join(
        line
        for line in REPORT.splitlines()
        if not line.lstrip().startswith(("Socket", "Non", "script"))
    )
    assert parse(clean).errors == 0


def test_parse_refuses_a_report_without_latencies() -> None:
    with pytest.raises(WrkError):
        parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_command_pins_wrk_and_passes_script_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.wrk.wrk_path", lambda: "/usr/bin/wrk")
    argv = command(
        "http://127.0.0.1:1",
        "viewer.lua",
        seconds=2.4,
        connections=8,
        cpus="1",
        script_args=["tokens.txt"],
    )
    assert argv[:4] == ["taskset", "-c", "1", "/usr/bin/wrk"]
    assert {"-c8", "-d2s", "--latency"} <= set(argv)
    assert argv[argv.index("-s") + 1] == str(LUA_DIR / "viewer.lua")
    assert argv[-2:] == ["--", "tokens.txt"]


def test_parse_reads_the_mix_scripts_outcomes_p95_and_timeouts() -> None:
    mixed = REPORT + "outcomes: served 12 rate_limited 340\np95 us: 48250\n"
    result = parse(mixed)
    assert (result.served, result.rate_limited) == (12, 340)
    assert result.p95_ms == pytest.approx(48.25)
    assert result.timeouts == 1
    assert parse(REPORT).p95_ms is None
    assert parse(REPORT).served is None
