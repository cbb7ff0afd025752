"""Property-based fuzzing of the whole GraphQL schema against a real ``authgraph serve``.

hypothesis-graphql generates queries and mutations from the exported schema, both valid ones
and ones with a single schema violation, sent anonymously, with a live token or with a bad
one. Every operation must get an answer that is not a 5xx and not a masked crash
("Unexpected error."), and the server must still be up at the end. On SQLite the fuzzer
targets the suite's shared server (tests/conftest.py ``live_server``, whose log is checked
when the session ends); on PostgreSQL a server of its own, whose log is checked at once. The
number of operations tried is printed, given as a warning in pytest's summary, and written to
test-artifacts/fuzz-report.json (one entry per database).
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, mutations

from graph.errors import UNEXPECTED_MESSAGE
from graph.schema import build_schema
from tests.conftest import LiveServer, empty_postgres
from tests.factories import VIEWER, gql, login, signup, unique_email
from tests.servers import RELAXED_LIMITS, authgraph_env, log_problems, run_cli, serve, server_log

EXAMPLES = 500
REPORT = Path(__file__).resolve().parents[2] / "test-artifacts" / "fuzz-report.json"
SDL = build_schema().as_str()
SECRET = "fuzz-secret-0123456789-abcdefghijklmnopqrstuvwxyz"

operations = st.one_of(
    from_schema(SDL, mode=Mode.POSITIVE),
    # Query has no arguments to violate: invalid operations come from the mutations.
    mutations(SDL, mode=Mode.NEGATIVE),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def fuzz_server(request: pytest.FixtureRequest, tmp_path: Path, graphql_path: str) -> Iterator[str]:
    """Both databases: PostgreSQL refuses inputs (NUL bytes) that SQLite stores. Each runs
    the lean path and the full pipeline (``graphql_path``)."""
    if request.param == "sqlite":
        live: LiveServer = request.getfixturevalue(
            "live_server_full" if graphql_path == "full" else "live_server"
        )
        yield live.base
        return
    for database_url in empty_postgres(request):
        # Generous limits, so that generated operations reach the resolvers, not the limiter.
        env = authgraph_env(
            DATABASE_URL=database_url,
            JWT_SECRET=SECRET,
            LEAN_EXECUTION=str(graphql_path == "lean").lower(),
            **RELAXED_LIMITS,
        )
        assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
        with serve(env, tmp_path) as base:
            yield base
        # A 5xx is a bug, even one the fuzzer's own assertions missed.
        assert log_problems(server_log(tmp_path, base).read_text()) == []


def test_fuzzed_operations_never_crash_the_server(
    fuzz_server: str, request: pytest.FixtureRequest
) -> None:
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=fuzz_server, timeout=30) as client:
        email = unique_email("fuzz")
        signup(client, email=email)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(query=operations, auth=st.sampled_from(["none", "live", "forged"]))
        def send(query: str, auth: str) -> None:
            headers = {}
            if auth == "live":
                # A fresh session each time: a fuzzed logout or password change may end one.
                token = login(client, email)["accessToken"]
                headers["Authorization"] = f"Bearer {token}"
            elif auth == "forged":
                headers["Authorization"] = "Bearer eyJhbGciOiJub25lIn0.e30."
            response = client.post("/graphql", json={"query": query}, headers=headers)
            statuses[response.status_code] += 1
            assert response.status_code < 500, (query, response.text)
            body = response.json()
            assert "data" in body or "errors" in body, body
            assert UNEXPECTED_MESSAGE not in response.text, (query, response.text)

        send()
        # Still up, and still right.
        assert client.get("/healthz").status_code == 200
        assert gql(client, VIEWER)["data"] == {"viewer": None}
    tried = sum(statuses.values())
    report = {"operations": tried, "statuses": {str(k): v for k, v in sorted(statuses.items())}}
    REPORT.parent.mkdir(exist_ok=True)
    runs = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    runs[request.node.callspec.id] = report
    REPORT.write_text(json.dumps(runs, indent=2) + "\n")
    print(f"fuzz: {tried} operations, statuses {report['statuses']}")
    warnings.warn(f"fuzz: {tried} GraphQL operations tried, no 5xx: {report}", stacklevel=1)
    assert tried >= EXAMPLES
    assert not any(status >= 500 for status in statuses)
