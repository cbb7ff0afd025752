"""Apollo Client's persisted-queries link against a real ``authgraph serve`` (Node, npm
``@apollo/client`` pinned in tests/apollo_client): not found, register, hit; a logged-in
``viewer`` through it."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_KEK, TEST_SECRET
from tests.factories import signup
from tests.servers import RELAXED_LIMITS, authgraph_env, run_cli, serve

APOLLO = Path(__file__).resolve().parent.parent / "apollo_client"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    env = authgraph_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'apollo.db'}",
        JWT_SECRET=TEST_SECRET,
        KEY_ENCRYPTION_KEY=TEST_KEK,
        MAIL_DIR=str(tmp_path / "mail"),
        **RELAXED_LIMITS,
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with serve(env, tmp_path) as base:
        yield base


def test_apollo_persisted_queries_not_found_register_hit(server: str) -> None:
    node = shutil.which("node")
    if node is None or not (APOLLO / "node_modules" / "@apollo" / "client").is_dir():
        pytest.skip("node or tests/apollo_client's packages are missing (make install)")
    with httpx.Client(base_url=server) as client:
        payload = signup(client)
    done = subprocess.run(
        [node, str(APOLLO / "apq.mjs"), f"{server}/graphql", payload["accessToken"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    exchanges = [
        (e["sentQuery"], e["sentHash"], e["status"], e["codes"]) for e in report["exchanges"]
    ]
    assert exchanges == [
        # The hash alone, unknown: the code the link retries on.
        (False, True, 400, ["PERSISTED_QUERY_NOT_FOUND"]),
        # The retry with the document (and its hash): run and kept.
        (True, True, 200, []),
        # Another client: the hash alone is now enough, logged in and anonymous.
        (False, True, 200, []),
        (False, True, 200, []),
    ]
    viewer = {"id": payload["user"]["id"], "email": payload["user"]["email"]}
    assert report["results"][0]["viewer"] == {"__typename": "User", **viewer}
    assert report["results"][1] == report["results"][0]
    assert report["results"][2] == {"viewer": None}
