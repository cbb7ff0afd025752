"""examples/resource_server against a real authgraph: offline (JWKS) and introspection."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import jwt as pyjwt
import pytest

from tests.conftest import TEST_KEK, TEST_SECRET
from tests.factories import LOGOUT, gql, login, signup
from tests.servers import authgraph_env, run_cli, serve, serve_resource_server

pytestmark = pytest.mark.timeout(180)
CLIENT_SECRET = "rs-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def _status(base: str, token: str) -> int:
    response = httpx.get(
        f"{base}/protected", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    return response.status_code


def test_resource_server_verifies_offline_and_by_introspection(
    database_url: str, tmp_path: Path
) -> None:
    env = authgraph_env(
        DATABASE_URL=database_url,
        JWT_SECRET=TEST_SECRET,
        KEY_ENCRYPTION_KEY=TEST_KEK,
        KEY_REFRESH_SECONDS="1",
        INTROSPECTION_CLIENTS=f"resource-server:{CLIENT_SECRET}",
        MAIL_DIR=str(tmp_path / "mail"),
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    rs_env = {**os.environ, "RESOURCE_SERVER_CLIENT_SECRET": CLIENT_SECRET}
    with (
        serve(env, tmp_path) as api,
        serve_resource_server(api, tmp_path, "--jwks-cache-seconds", "1") as offline,
        serve_resource_server(api, tmp_path, "--mode", "introspect", env=rs_env) as online,
        httpx.Client(base_url=api, timeout=10) as client,
    ):
        account = signup(client)
        token = account["accessToken"]
        assert _status(offline, token) == 200
        assert _status(online, token) == 200
        for bad in ("not-a-token", token[:-3] + "AAA"):
            assert _status(offline, bad) == 401
            assert _status(online, bad) == 401

        # A rotation: the new kid is unknown to the offline server's cache, so it refetches.
        generated = run_cli("keys", "generate", env=env, cwd=tmp_path)
        kid = generated.stdout.strip().splitlines()[-1]
        assert run_cli("keys", "activate", kid, env=env, cwd=tmp_path).returncode == 0
        deadline = time.monotonic() + 10
        fresh = token
        while pyjwt.get_unverified_header(fresh)["kid"] != kid:
            assert time.monotonic() < deadline, "the API did not sign with the new key"
            time.sleep(0.2)
            fresh = login(client, account["user"]["email"])["accessToken"]
        assert _status(offline, fresh) == 200
        assert _status(online, fresh) == 200
        assert _status(offline, token) == 200  # the retired key's tokens live on

        # Revocation: introspection sees it at once; offline verification cannot.
        gql(client, LOGOUT, {"scope": "ALL"}, token=fresh)
        assert _status(online, fresh) == 401
        assert _status(offline, fresh) == 200
