"""Signing keys through real ``authgraph`` processes: migrate, the keys commands, rotation
across two servers sharing one database, PyJWT's PyJWKClient, and the upgrade from HS256."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from tests.conftest import TEST_KEK, TEST_SECRET
from tests.factories import VIEWER, error_codes, gql, login, signup
from tests.servers import authgraph_env, run_cli, serve, serve_resource_server

pytestmark = pytest.mark.timeout(180)
TTL = 600


def _env(database_url: str, cwd: Path, **extra: str) -> dict[str, str]:
    return authgraph_env(
        DATABASE_URL=database_url,
        JWT_SECRET=TEST_SECRET,
        KEY_ENCRYPTION_KEY=TEST_KEK,
        KEY_REFRESH_SECONDS="1",
        ACCESS_TOKEN_TTL_SECONDS=str(TTL),
        MAIL_DIR=str(cwd / "mail"),
        **extra,
    )


def _kid(token: str) -> str:
    return str(pyjwt.get_unverified_header(token)["kid"])


def _accepted(base: str, token: str) -> bool:
    with httpx.Client(base_url=base, timeout=10) as client:
        body = gql(client, VIEWER, token=token)
    if body["data"]["viewer"] is not None:
        return True
    assert error_codes(body) == ["UNAUTHENTICATED"], body
    return False


def _eventually(check: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}")
        time.sleep(0.2)


def _resource_accepts(base: str, token: str) -> bool:
    response = httpx.get(
        f"{base}/protected", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def _refuses(base: str, token: str) -> Callable[[], bool]:
    return lambda: not _accepted(base, token)


def _keys(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = run_cli("keys", *args, env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _states(env: dict[str, str], cwd: Path) -> dict[str, str]:
    rows: list[dict[str, Any]] = json.loads(_keys(env, cwd, "list", "--json"))
    assert all({"kid", "algorithm", "state", "createdAt"} <= set(r) for r in rows)
    return {r["kid"]: r["state"] for r in rows}


def _verify_with_pyjwt(base: str, token: str) -> dict[str, Any]:
    """An independent library, from the JWKS URL alone."""
    client = pyjwt.PyJWKClient(f"{base}/.well-known/jwks.json", cache_keys=True)
    key = client.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = pyjwt.decode(
        token,
        key,
        algorithms=["ES256"],
        audience="authgraph",
        issuer="authgraph",
        options={"require": ["exp", "iat", "sub", "jti"]},
    )
    return claims


def test_rotation_across_two_servers_without_restart(database_url: str, tmp_path: Path) -> None:
    env = _env(database_url, tmp_path)
    migrated = run_cli("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "created signing key" in migrated.stderr
    (old_kid,) = _states(env, tmp_path)
    # A second migrate makes no second key.
    assert "created signing key" not in run_cli("migrate", env=env, cwd=tmp_path).stderr
    with (
        serve(env, tmp_path) as a,
        serve(env, tmp_path) as b,
        serve_resource_server(b, tmp_path, "--jwks-cache-seconds", "1") as resource,
    ):
        with httpx.Client(base_url=a, timeout=10) as client:
            account = signup(client)
        old = account["accessToken"]
        assert _kid(old) == old_kid
        assert _accepted(b, old)
        assert _resource_accepts(resource, old)
        assert _verify_with_pyjwt(b, old)["sub"] == account["user"]["id"]

        generated = _keys(env, tmp_path, "generate").strip().splitlines()
        new_kid = generated[-1]
        assert _states(env, tmp_path) == {old_kid: "current", new_kid: "standby"}
        _eventually(
            lambda: new_kid in httpx.get(f"{b}/.well-known/jwks.json").text,
            "the standby key is published by the other server",
        )
        _keys(env, tmp_path, "activate", new_kid)
        assert _states(env, tmp_path) == {old_kid: "retired", new_kid: "current"}

        tokens: list[str] = []

        def signs_with_new_key() -> bool:
            with httpx.Client(base_url=a, timeout=10) as client:
                tokens.append(login(client, account["user"]["email"])["accessToken"])
            return _kid(tokens[-1]) == new_kid

        _eventually(signs_with_new_key, "server A signs with the activated key")
        new = tokens[-1]
        for base in (a, b):
            assert _accepted(base, new), base
            assert _accepted(base, old), base  # retired, but its tokens have not expired
        assert _resource_accepts(resource, new)  # an unknown kid: it fetched the JWKS again
        assert _resource_accepts(resource, old)
        assert _verify_with_pyjwt(a, new)["sub"] == account["user"]["id"]
        assert {k["kid"] for k in httpx.get(f"{a}/.well-known/jwks.json").json()["keys"]} == {
            old_kid,
            new_kid,
        }

        refused = run_cli("keys", "retire", new_kid, env=env, cwd=tmp_path)
        assert refused.returncode == 1
        assert "current" in refused.stderr

        # Emergency brake: the old key is unpublished and its tokens refused, everywhere.
        _keys(env, tmp_path, "retire", old_kid)
        for base in (a, b):
            _eventually(_refuses(base, old), f"{base} refuses the old key")
            assert _accepted(base, new)
            keys = httpx.get(f"{base}/.well-known/jwks.json").json()["keys"]
            assert [k["kid"] for k in keys] == [new_kid]
        with pytest.raises(pyjwt.PyJWKClientError):
            _verify_with_pyjwt(b, old)
        # The resource server drops it once its cached key set is older than its lifespan.
        _eventually(lambda: not _resource_accepts(resource, old), "resource server refuses it")
        assert _resource_accepts(resource, new)


def test_upgrade_from_hs256_keeps_issued_tokens(database_url: str, tmp_path: Path) -> None:
    # Today's code: HS256 with JWT_SECRET, no signing key in the database.
    before = _env(database_url, tmp_path, JWT_ALGORITHM="HS256")
    migrated = run_cli("migrate", env=before, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "created signing key" not in migrated.stderr
    with serve(before, tmp_path) as base, httpx.Client(base_url=base, timeout=10) as client:
        account = signup(client)
    legacy = account["accessToken"]
    assert pyjwt.get_unverified_header(legacy)["alg"] == "HS256"

    # The upgrade: JWT_ALGORITHM left to its default (ES256), migrate, serve.
    after = _env(database_url, tmp_path)
    migrated = run_cli("migrate", env=after, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "created signing key" in migrated.stderr
    with serve(after, tmp_path) as base, httpx.Client(base_url=base, timeout=10) as client:
        assert _accepted(base, legacy)
        fresh = login(client, account["user"]["email"])["accessToken"]
        assert pyjwt.get_unverified_header(fresh)["alg"] == "ES256"
        assert _verify_with_pyjwt(base, fresh)["sub"] == account["user"]["id"]
        # The secret never appears in the JWKS.
        keys = client.get("/.well-known/jwks.json").json()["keys"]
        assert [k["alg"] for k in keys] == ["ES256"]


def test_production_refuses_to_start_without_key_encryption_key(tmp_path: Path) -> None:
    env = authgraph_env(
        AUTHGRAPH_ENV="production",
        DATABASE_URL=f"sqlite:///{tmp_path / 'p.db'}",
        JWT_SECRET=TEST_SECRET,
        MFA_ENCRYPTION_KEY="mfa-" + TEST_SECRET,
        APP_URL="https://app.example.com",
        SMTP_URL="smtp://127.0.0.1:1",
        BCRYPT_ROUNDS="12",
    )
    env.pop("KEY_ENCRYPTION_KEY", None)
    done = run_cli("serve", "--port", "1", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "KEY_ENCRYPTION_KEY" in done.stderr
    # HS256 needs none.
    hs = run_cli("migrate", env={**env, "JWT_ALGORITHM": "HS256"}, cwd=tmp_path)
    assert hs.returncode == 0, hs.stderr


def test_production_refuses_to_start_without_a_current_key(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'p.db'}"
    env = authgraph_env(
        AUTHGRAPH_ENV="production",
        DATABASE_URL=database,
        JWT_SECRET=TEST_SECRET,
        KEY_ENCRYPTION_KEY=TEST_KEK,
        MFA_ENCRYPTION_KEY="mfa-" + TEST_SECRET,
        APP_URL="https://app.example.com",
        SMTP_URL="smtp://127.0.0.1:1",
        BCRYPT_ROUNDS="12",
    )
    from db.migrate import upgrade

    upgrade(database)  # the schema alone, as Alembic makes it: no key
    with pytest.raises(RuntimeError, match="authgraph migrate"), serve(env, tmp_path):
        pass


def test_database_of_the_landed_schema_keeps_its_hs256_tokens(tmp_path: Path) -> None:
    """A database at 0004_health_probe (the revision before signing keys) with a session and
    an access token made exactly as the HS256 code made them, upgraded by `authgraph migrate`."""
    from datetime import UTC, datetime, timedelta

    from jose import jwt as jose_jwt
    from sqlalchemy import create_engine, text

    from auth.keys import legacy_key_id
    from db.migrate import upgrade

    database = f"sqlite:///{tmp_path / 'landed.db'}"
    upgrade(database, "0004_health_probe")
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    user_id, session_id = (
        "00000000-0000-4000-8000-0000000000aa",
        "00000000-0000-4000-8000-0000000000bb",
    )
    engine = create_engine(database)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, email, password_hash, created_at, email_verified, "
                "credentials_version) VALUES (:id, 'landed@example.com', 'x', :now, 0, 0)"
            ),
            {"id": user_id, "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) "
                "VALUES (:id, :user, :now, :now, :later)"
            ),
            {"id": session_id, "user": user_id, "now": now, "later": now + timedelta(days=1)},
        )
    engine.dispose()
    issued = datetime.now(UTC) - timedelta(seconds=5)
    legacy = jose_jwt.encode(
        {
            "sub": user_id,
            "sid": session_id,
            "jti": "landed",
            "iss": "authgraph",
            "aud": "authgraph",
            "iat": int(issued.timestamp()),
            "exp": int((issued + timedelta(seconds=TTL)).timestamp()),
        },
        TEST_SECRET,
        algorithm="HS256",
        headers={"kid": legacy_key_id(TEST_SECRET), "typ": "at+jwt"},
    )
    env = _env(database, tmp_path)
    migrated = run_cli("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "created signing key" in migrated.stderr
    with serve(env, tmp_path) as base:
        assert _accepted(base, legacy)
        # Forged with the same secret after the switch: refused.
        late = jose_jwt.encode(
            {**jose_jwt.get_unverified_claims(legacy), "iat": int(time.time()) + 5},
            TEST_SECRET,
            algorithm="HS256",
            headers={"kid": legacy_key_id(TEST_SECRET), "typ": "at+jwt"},
        )
        assert not _accepted(base, late)
