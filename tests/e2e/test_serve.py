"""The real ``authgraph`` command: migrate, serve, and a plain HTTP client."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
from jose import jwt
from sqlalchemy import create_engine, text

from db.engine import normalize_database_url
from tests.factories import LOGOUT, VIEWER, error_codes, gql, login, signup, unique_email
from tests.servers import authgraph_env, run_cli, serve

SECRET = "e2e-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def test_serve_runs_signup_login_viewer(database_url: str, tmp_path: Path) -> None:
    env = authgraph_env(DATABASE_URL=database_url, JWT_SECRET=SECRET)
    # Migrations ship inside the package: any working directory will do.
    migrated = run_cli("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    with serve(env, tmp_path) as base, httpx.Client(base_url=base) as client:
        email = unique_email()
        created = signup(client, email=email)
        logged_in = login(client, email)
        assert logged_in["__typename"] == "AuthPayload"
        viewer = gql(client, VIEWER, token=logged_in["accessToken"])["data"]["viewer"]
        assert viewer == {"id": created["user"]["id"], "email": email}
        assert client.get("/readyz").status_code == 200
        page = client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "unpkg.com" not in page.text


def test_revocation_is_seen_by_another_process(tmp_path: Path) -> None:
    env = authgraph_env(DATABASE_URL=f"sqlite:///{tmp_path / 'shared.db'}", JWT_SECRET=SECRET)
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with (
        serve(env, tmp_path) as first,
        serve(env, tmp_path) as second,
        httpx.Client(base_url=first) as one,
        httpx.Client(base_url=second) as two,
    ):
        session = signup(one)
        assert gql(two, VIEWER, token=session["accessToken"])["data"]["viewer"] is not None
        gql(one, LOGOUT, {"scope": "CURRENT"}, token=session["accessToken"])
        body = gql(two, VIEWER, token=session["accessToken"])
        assert body["data"]["viewer"] is None
        assert error_codes(body) == ["UNAUTHENTICATED"]


def test_serve_in_production_refuses_weak_secret(tmp_path: Path) -> None:
    env = authgraph_env(AUTHGRAPH_ENV="production", JWT_SECRET="changeme")
    result = run_cli("serve", "--port", "1", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "JWT_SECRET" in result.stderr
    missing = run_cli("serve", env=authgraph_env(AUTHGRAPH_ENV="production"), cwd=tmp_path)
    assert missing.returncode == 2
    assert "JWT_SECRET is not set" in missing.stderr


def test_serve_in_development_generates_and_keeps_secret(tmp_path: Path) -> None:
    env = authgraph_env(DATABASE_URL=f"sqlite:///{tmp_path / 'dev.db'}")
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with serve(env, tmp_path) as base, httpx.Client(base_url=base) as client:
        token = signup(client)["accessToken"]
    assert (tmp_path / ".authgraph-dev-secret").exists()
    with serve(env, tmp_path) as base, httpx.Client(base_url=base) as client:
        assert gql(client, VIEWER, token=token)["data"]["viewer"] is not None


def test_prune_sessions_deletes_expired(database_url: str, tmp_path: Path) -> None:
    env = authgraph_env(DATABASE_URL=database_url, JWT_SECRET=SECRET)
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with serve(env, tmp_path) as base, httpx.Client(base_url=base) as client:
        email = unique_email()
        kept = signup(client, email=email)
        expired = login(client, email)
    engine = create_engine(normalize_database_url(database_url))
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE sessions SET expires_at = :past WHERE id <> :kept"),
            {"past": datetime(2000, 1, 1), "kept": _session_id(kept["accessToken"])},
        )
    result = run_cli("prune-sessions", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pruned 1 sessions, 0 email tokens and 0 delivered messages" in result.stdout
    with engine.connect() as connection:
        remaining = connection.execute(text("SELECT id FROM sessions")).scalars().all()
    engine.dispose()
    assert remaining == [_session_id(kept["accessToken"])]
    assert expired["accessToken"]


def _session_id(access_token: str) -> str:
    return str(jwt.get_unverified_claims(access_token)["sid"])


def test_export_schema_prints_sdl(tmp_path: Path) -> None:
    result = run_cli("export-schema", env=authgraph_env(), cwd=tmp_path)
    assert result.returncode == 0
    assert "type Query" in result.stdout
    assert result.stdout == (Path(__file__).resolve().parents[2] / "schema.graphql").read_text()


def test_migrate_in_production_needs_only_database_url_and_key_settings(tmp_path: Path) -> None:
    # No JWT_SECRET, SMTP_URL or APP_URL: serve would refuse, a migration does not need them.
    # With ES256 (the default) it needs KEY_ENCRYPTION_KEY to make the first signing key.
    database = f"sqlite:///{tmp_path / 'prod.db'}"
    env = authgraph_env(AUTHGRAPH_ENV="production", DATABASE_URL=database)
    no_kek = run_cli("migrate", env=env, cwd=tmp_path)
    assert no_kek.returncode == 2
    assert "KEY_ENCRYPTION_KEY" in no_kek.stderr
    hs256 = run_cli("migrate", env={**env, "JWT_ALGORITHM": "HS256"}, cwd=tmp_path)
    assert hs256.returncode == 0, hs256.stderr
    env["KEY_ENCRYPTION_KEY"] = "kek-" + SECRET
    migrated = run_cli("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "created signing key" in migrated.stderr
    assert (tmp_path / "prod.db").exists()
    refused = run_cli("serve", env=env, cwd=tmp_path)
    assert refused.returncode == 2
    assert "JWT_SECRET" in refused.stderr


def test_migrate_with_bad_database_url_names_it(tmp_path: Path) -> None:
    env = authgraph_env(DATABASE_URL="mysql://root:hunter2@db/auth")
    result = run_cli("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert "hunter2" not in result.stderr
