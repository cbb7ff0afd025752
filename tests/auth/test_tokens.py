from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jose import jwt

from auth.errors import InvalidAccessToken
from auth.keys import KeyRing, KeyRingConfig, MemorySigningKeyStore
from auth.tokens import (
    LEEWAY_SECONDS,
    AccessTokenCodec,
    csrf_token,
    hash_opaque_token,
    key_id,
    new_opaque_token,
)

SECRET = "s" * 8 + "0123456789abcdefghijklmnopqrstuvwxyz"
NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _now_is_the_test_start() -> None:
    """NOW is when each test starts (python-jose checks `exp` against the real clock); the
    parametrised forgeries keep the import's NOW, and are minutes away from its edges."""
    global NOW
    NOW = datetime.now(UTC)


def codec(**overrides: Any) -> AccessTokenCodec:
    """An HS256 codec (JWT_ALGORITHM=HS256); tests/auth/test_keys.py covers ES256."""
    options: dict[str, Any] = {"issuer": "authgraph", "audience": "authgraph", "ttl_seconds": 900}
    options.update(overrides)
    config = KeyRingConfig(
        algorithm="HS256",
        secret=options.pop("secret", SECRET),
        previous_secrets=options.pop("previous_secrets", ()),
        ttl_seconds=options["ttl_seconds"],
    )
    return AccessTokenCodec(KeyRing(config, MemorySigningKeyStore()), **options)


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "user-1",
        "sid": "session-1",
        "jti": "j1",
        "iss": "authgraph",
        "aud": "authgraph",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def forge(
    payload: dict[str, Any], *, secret: str = SECRET, alg: str = "HS256", **header: Any
) -> str:
    headers = {"kid": key_id(SECRET), "typ": "at+jwt", **header}
    return jwt.encode(payload, secret, algorithm=alg, headers=headers)


def test_issue_then_verify_round_trips() -> None:
    issued = codec().issue(user_id="u", session_id="s", now=NOW)
    verified = codec().verify(issued.token)
    assert (verified.user_id, verified.session_id) == ("u", "s")
    assert verified.expires_at == issued.expires_at


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            _b64({"alg": "none", "typ": "at+jwt", "kid": key_id(SECRET)})
            + "."
            + _b64(claims())
            + ".",
            id="alg-none",
        ),
        pytest.param(forge(claims(), alg="HS512"), id="hs512-same-secret"),
        pytest.param(forge(claims(), secret="another-secret-" + "x" * 30), id="other-key"),
        pytest.param(
            forge(claims(exp=int((NOW - timedelta(minutes=5)).timestamp()))), id="expired"
        ),
        pytest.param(forge(claims(exp=None)), id="no-exp"),
        pytest.param(forge(claims(iat=None)), id="no-iat"),
        pytest.param(forge(claims(sub=None)), id="no-sub"),
        pytest.param(forge(claims(aud=None)), id="no-aud"),
        pytest.param(forge(claims(aud="someone-else")), id="wrong-aud"),
        pytest.param(forge(claims(iss=None)), id="no-iss"),
        pytest.param(forge(claims(iss="evil")), id="wrong-iss"),
        pytest.param(forge(claims(sid=None)), id="no-sid"),
        pytest.param(forge(claims(jti=None)), id="no-jti"),
        pytest.param(
            forge(claims(nbf=int((NOW + timedelta(minutes=10)).timestamp()))), id="nbf-future"
        ),
        pytest.param(forge(claims(), typ="JWT"), id="wrong-typ"),
        pytest.param(forge(claims(), kid="unknown"), id="unknown-kid"),
        pytest.param(forge(claims(), kid="../../etc/passwd"), id="injected-kid"),
        pytest.param(forge(claims(), secret="secret", kid=key_id("secret")), id="weak-secret"),
        pytest.param("not.a.token", id="garbage"),
        pytest.param("", id="empty"),
    ],
)
def test_verify_rejects_forged_or_incomplete(token: str) -> None:
    with pytest.raises(InvalidAccessToken):
        codec().verify(token)


def test_verify_rejects_tampered_payload() -> None:
    token = codec().issue(user_id="u", session_id="s", now=NOW).token
    header, _, signature = token.split(".")
    assert len(signature) > 10
    with pytest.raises(InvalidAccessToken):
        codec().verify(f"{header}.{_b64(claims(sub='admin'))}.{signature}")


def test_verify_accepts_previous_secret_during_rotation() -> None:
    old = codec(secret="old-secret-" + "y" * 30).issue(user_id="u", session_id="s", now=NOW)
    rotated = codec(previous_secrets=("old-secret-" + "y" * 30,))
    assert rotated.verify(old.token).user_id == "u"
    with pytest.raises(InvalidAccessToken):
        codec().verify(old.token)


def test_opaque_tokens_are_long_random_and_hashed() -> None:
    tokens = {new_opaque_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) >= 43 for t in tokens)  # 32 bytes, base64url
    token = tokens.pop()
    assert hash_opaque_token(token) != token
    assert len(hash_opaque_token(token)) == 64


def test_csrf_token_binds_session_and_key() -> None:
    assert csrf_token(SECRET, "a") == csrf_token(SECRET, "a")
    assert csrf_token(SECRET, "a") != csrf_token(SECRET, "b")
    assert csrf_token(SECRET, "a") != csrf_token("other-" + SECRET, "a")


def test_verify_again_after_expiry_is_rejected() -> None:
    # Now, not the module's NOW: the first verification checks exp against the real clock,
    # and a 60 s token issued at collection time may be past it on a busy machine.
    now = datetime.now(UTC)
    clock = [now.timestamp()]
    tokens = codec(ttl_seconds=60, epoch_clock=lambda: clock[0])
    token = tokens.issue(user_id="u", session_id="s", now=now).token
    assert tokens.verify(token).session_id == "s"
    clock[0] += 60 + LEEWAY_SECONDS - 1
    assert tokens.verify(token).user_id == "u"  # still within the leeway
    clock[0] += 2
    with pytest.raises(InvalidAccessToken):
        tokens.verify(token)
    with pytest.raises(InvalidAccessToken):
        tokens.verify(token)


def test_verified_tokens_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("auth.tokens.VERIFIED_CACHE_SIZE", 3)
    tokens = codec()
    issued = [tokens.issue(user_id=f"u{i}", session_id="s", now=NOW).token for i in range(5)]
    assert [tokens.verify(t).user_id for t in issued] == [f"u{i}" for i in range(5)]
    assert len(tokens._verified) == 3
    assert tokens.verify(issued[0]).user_id == "u0"  # forgotten, so checked in full again
