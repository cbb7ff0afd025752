"""Rotating ``KEY_ENCRYPTION_KEY`` and ``MFA_ENCRYPTION_KEY`` without downtime, as the README's
production guide has an operator do it: real servers and real ``authgraph keys reencrypt`` /
``authgraph mfa reencrypt`` processes against one database (SQLite and PostgreSQL).

The old server keeps running while one with the new keys (the old ones as previous) starts:
a rolling restart. After the commands, a server with the previous keys removed signs, and an
enrolled user's TOTP code still verifies at login.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt as pyjwt
import pytest
from sqlalchemy import create_engine, text

from db.engine import normalize_database_url
from tests.conftest import TEST_KEK, TEST_SECRET
from tests.factories import VIEWER, error_codes, gql, signup
from tests.mfa import code_at, enroll, login_mfa, verify
from tests.servers import authgraph_env, run_cli, serve

pytestmark = pytest.mark.timeout(240)

OLD_KEK, NEW_KEK = TEST_KEK, "new-" + TEST_KEK
OLD_MFA, NEW_MFA = "mfa-old-" + TEST_SECRET, "mfa-new-" + TEST_SECRET
REWROTE = re.compile(r"rewrote (\d+) .* (\d+) already current")


def _env(database_url: str, cwd: Path, kek: str, mfa: str, **extra: str) -> dict[str, str]:
    return authgraph_env(
        DATABASE_URL=database_url,
        JWT_SECRET=TEST_SECRET,
        KEY_ENCRYPTION_KEY=kek,
        MFA_ENCRYPTION_KEY=mfa,
        KEY_REFRESH_SECONDS="1",
        MAIL_DIR=str(cwd / "mail"),
        **extra,
    )


def _sealed(database_url: str) -> dict[str, str]:
    """Every stored ciphertext: the signing keys' private keys and the TOTP secrets."""
    engine = create_engine(normalize_database_url(database_url))
    try:
        with engine.connect() as connection:
            keys = connection.execute(text("SELECT kid, private_key FROM signing_keys"))
            factors = connection.execute(text("SELECT id, secret_sealed FROM mfa_factors"))
            return {str(k): str(v) for k, v in [*keys.all(), *factors.all()]}
    finally:
        engine.dispose()


def _reencrypt(group: str, env: dict[str, str], cwd: Path) -> tuple[int, int]:
    """Run ``authgraph GROUP reencrypt``: (rows rewritten, rows already current)."""
    done = run_cli(group, "reencrypt", env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    found = REWROTE.search(done.stdout)
    assert found, done.stdout
    return int(found[1]), int(found[2])


def _accepted(base: str, token: str) -> bool:
    with httpx.Client(base_url=base, timeout=10) as client:
        body = gql(client, VIEWER, token=token)
    if body["data"]["viewer"] is not None:
        return True
    assert error_codes(body) == ["UNAUTHENTICATED"], body
    return False


def _login_with_totp(base: str, email: str, secret: str, when: datetime) -> str:
    """Password, then the TOTP code of ``when``, over HTTP; the access token."""
    with httpx.Client(base_url=base, timeout=10) as client:
        challenge = login_mfa(client, email)
        assert challenge["__typename"] == "MfaRequired", challenge
        signed = verify(client, challenge["mfaToken"], code_at(secret, when))
    assert signed["__typename"] == "AuthPayload", signed
    token: str = signed["accessToken"]
    return token


def test_encryption_keys_rotate_without_downtime(database_url: str, tmp_path: Path) -> None:
    old = _env(database_url, tmp_path, OLD_KEK, OLD_MFA)
    migrated = run_cli("migrate", env=old, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    generated = run_cli("keys", "generate", env=old, cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    standby = generated.stdout.strip().splitlines()[-1]
    rotating = _env(
        database_url,
        tmp_path,
        NEW_KEK,
        NEW_MFA,
        KEY_ENCRYPTION_PREVIOUS_KEYS=OLD_KEK,
        MFA_ENCRYPTION_PREVIOUS_KEYS=OLD_MFA,
    )
    with serve(old, tmp_path) as a:
        with httpx.Client(base_url=a, timeout=10) as client:
            account = signup(client)
            email = account["user"]["email"]
            # Each accepted code claims its 30-second step: enrol with the previous step's
            # code, log in during the rotation with the current one, and after it with the
            # next one. Each taken when it is sent: a server start under load can outlast a step.
            enrolled = enroll(
                client, email, account["accessToken"], datetime.now(UTC) - timedelta(seconds=30)
            )
        signed_before = enrolled.access_token
        # The rolling restart: B has the new keys and the old as previous, A still serves.
        with serve(rotating, tmp_path) as b:
            assert _accepted(b, signed_before)
            # B signs (its private key opens under the previous KEK) after a TOTP secret
            # sealed under the previous MFA key verified.
            signed_during = _login_with_totp(b, email, enrolled.secret, datetime.now(UTC))
            for base in (a, b):
                assert _accepted(base, signed_during), base

            # Without the previous keys nothing opens yet: the standby key cannot be activated.
            final = _env(database_url, tmp_path, NEW_KEK, NEW_MFA)
            early = run_cli("keys", "activate", standby, env=final, cwd=tmp_path)
            assert early.returncode == 1
            assert "KEY_ENCRYPTION_KEY" in early.stderr

            # A wrong previous key: each command names its setting and rewrites nothing.
            stored = _sealed(database_url)
            assert len(stored) == 3  # two signing keys, one TOTP factor
            wrong = {
                **rotating,
                "KEY_ENCRYPTION_PREVIOUS_KEYS": "wrong-" + OLD_KEK,
                "MFA_ENCRYPTION_PREVIOUS_KEYS": "wrong-" + OLD_MFA,
            }
            for group, setting in (
                ("keys", "KEY_ENCRYPTION_PREVIOUS_KEYS"),
                ("mfa", "MFA_ENCRYPTION_PREVIOUS_KEYS"),
            ):
                refused = run_cli(group, "reencrypt", env=wrong, cwd=tmp_path)
                assert refused.returncode == 1, refused.stdout
                assert setting in refused.stderr
            assert _sealed(database_url) == stored

            # Once: every row moves to the new keys. Again: nothing is left to do.
            assert _reencrypt("keys", rotating, tmp_path) == (2, 0)
            assert _reencrypt("mfa", rotating, tmp_path) == (1, 0)
            rewritten = _sealed(database_url)
            assert set(rewritten) == set(stored)
            assert all(rewritten[row] != stored[row] for row in stored)
            assert _reencrypt("keys", rotating, tmp_path) == (0, 2)
            assert _reencrypt("mfa", rotating, tmp_path) == (0, 1)
            assert _sealed(database_url) == rewritten

    # The previous keys removed, a rolling restart: signing and TOTP work on the new keys alone.
    with serve(final, tmp_path) as c:
        for token in (signed_before, signed_during):
            assert _accepted(c, token)
        signed_after = _login_with_totp(
            c, email, enrolled.secret, datetime.now(UTC) + timedelta(seconds=30)
        )
        assert _accepted(c, signed_after)
        current = pyjwt.get_unverified_header(signed_after)["kid"]
        assert current == pyjwt.get_unverified_header(signed_before)["kid"]
        # The standby key's private half opens under the new key too: it can be activated.
        activated = run_cli("keys", "activate", standby, env=final, cwd=tmp_path)
        assert activated.returncode == 0, activated.stderr
