"""The key ring: ES256 signing, rotation rules, the cached set, and the HS256 upgrade window."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jose import jwt

from auth.errors import ConfigurationError, InvalidAccessToken
from auth.keys import (
    KeyEncryption,
    KeyRing,
    KeyRingConfig,
    KeyRuleError,
    MemorySigningKeyStore,
    legacy_key_id,
)
from auth.tokens import LEEWAY_SECONDS, AccessTokenCodec

SECRET = "legacy-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
KEK = "key-encryption-key-0123456789-abcdefghijklmnopqrstuvwxyz"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now_is_the_test_start() -> None:
    """NOW is when each test starts: python-jose checks `exp` against the real clock, so a
    NOW taken at import went stale in a long run (a 60-second token failed minutes later)."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


class Clock:
    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now

    @property
    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


class CountingStore(MemorySigningKeyStore):
    """Counts reads: the ring must not read per request."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def all(self) -> Any:
        self.reads += 1
        return super().all()


def ring(
    store: MemorySigningKeyStore | None = None,
    *,
    algorithm: str = "ES256",
    clock: Clock | None = None,
    kek: str = KEK,
    previous_keks: tuple[str, ...] = (),
    ttl: int = 900,
) -> KeyRing:
    config = KeyRingConfig(
        algorithm=algorithm,
        secret=SECRET,
        key_encryption_key=kek,
        previous_key_encryption_keys=previous_keks,
        ttl_seconds=ttl,
    )
    return KeyRing(config, store or MemorySigningKeyStore(), epoch_clock=clock or Clock())


def codec(keys: KeyRing, clock: Clock | None = None, ttl: int = 900) -> AccessTokenCodec:
    return AccessTokenCodec(
        keys,
        issuer="authgraph",
        audience="authgraph",
        ttl_seconds=ttl,
        epoch_clock=clock or Clock(),
    )


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _legacy_token(iat: datetime, ttl: int = 900) -> str:
    claims = {
        "sub": "u",
        "sid": "s",
        "jti": "j",
        "iss": "authgraph",
        "aud": "authgraph",
        "iat": int(iat.timestamp()),
        "exp": int((iat + timedelta(seconds=ttl)).timestamp()),
    }
    headers = {"kid": legacy_key_id(SECRET), "typ": "at+jwt"}
    return jwt.encode(claims, SECRET, algorithm="HS256", headers=headers)


def test_es256_token_names_its_kid_and_verifies() -> None:
    keys = ring()
    kid = keys.ensure_current(NOW)
    tokens = codec(keys)
    issued = tokens.issue(user_id="u", session_id="s", now=NOW, client_id="cli")
    header = jwt.get_unverified_header(issued.token)
    assert header == {"alg": "ES256", "kid": kid, "typ": "at+jwt"}
    claims = tokens.verify(issued.token)
    assert (claims.user_id, claims.session_id, claims.client_id) == ("u", "s", "cli")


def test_ensure_current_creates_one_key_only() -> None:
    store = MemorySigningKeyStore()
    assert ring(store).ensure_current(NOW) is not None
    assert ring(store).ensure_current(NOW) is None
    assert [k.state for k in store.all()] == ["current"]


def test_private_key_is_stored_encrypted() -> None:
    store = MemorySigningKeyStore()
    ring(store).ensure_current(NOW)
    record = store.all()[0]
    assert "PRIVATE KEY" not in record.private_key
    assert b"PRIVATE KEY" in KeyEncryption(KEK).decrypt(record.kid, record.private_key)
    with pytest.raises(ConfigurationError, match="KEY_ENCRYPTION_KEY"):
        KeyEncryption("another-" + KEK).decrypt(record.kid, record.private_key)
    with pytest.raises(ConfigurationError):
        KeyEncryption(KEK).decrypt("another-kid", record.private_key)


def test_wrong_key_encryption_key_refuses_to_sign_but_still_verifies() -> None:
    store = MemorySigningKeyStore()
    first = ring(store)
    first.ensure_current(NOW)
    token = codec(first).issue(user_id="u", session_id="s", now=NOW).token
    other = ring(store, kek="another-" + KEK)
    other.refresh()
    with pytest.raises(ConfigurationError, match="KEY_ENCRYPTION_KEY"):
        other.signer()
    # Verification needs only the public keys, which are stored in clear.
    assert ring(store, algorithm="HS256", kek="x" * 40).find(store.all()[0].kid) is not None
    assert codec(first).verify(token).user_id == "u"


NEW_KEK = "new-key-encryption-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def _two_keys_under_the_old_kek() -> MemorySigningKeyStore:
    store = MemorySigningKeyStore()
    old = ring(store)
    old.ensure_current(NOW)
    old.generate(NOW)
    return store


def test_previous_key_encryption_key_decrypts_and_encryption_uses_the_current() -> None:
    store = _two_keys_under_the_old_kek()
    rotating = ring(store, kek=NEW_KEK, previous_keks=("unrelated-" + KEK, KEK))
    rotating.refresh()
    token = codec(rotating).issue(user_id="u", session_id="s", now=NOW).token
    assert codec(rotating).verify(token).user_id == "u"
    standby = rotating.generate(NOW)
    [fresh] = [r for r in store.all() if r.kid == standby]
    assert KeyEncryption(NEW_KEK).is_current(standby, fresh.private_key)
    assert not KeyEncryption(KEK).is_current(standby, fresh.private_key)


def test_reencrypt_rewrites_the_rows_under_a_previous_key_once() -> None:
    store = _two_keys_under_the_old_kek()
    rotating = ring(store, kek=NEW_KEK, previous_keks=(KEK,))
    done = rotating.reencrypt()
    assert (done.rewritten, done.current) == (2, 0)
    again = rotating.reencrypt()
    assert (again.rewritten, again.current) == (0, 2)
    # Without the previous key, every private key opens and the ring signs.
    after = ring(store, kek=NEW_KEK)
    after.refresh()
    assert codec(after).issue(user_id="u", session_id="s", now=NOW).token
    for record in store.all():
        assert b"PRIVATE KEY" in KeyEncryption(NEW_KEK).decrypt(record.kid, record.private_key)


def test_reencrypt_under_a_wrong_previous_key_names_the_setting_and_rewrites_nothing() -> None:
    store = _two_keys_under_the_old_kek()
    # The first row opens under the previous key: a pass that rewrote as it went would have
    # changed it before it met the second, which opens under no configured key.
    second = store.keys[1]
    second.private_key = KeyEncryption("unrelated-" + KEK).encrypt(second.kid, b"pem")
    before = [r.private_key for r in store.all()]
    with pytest.raises(ConfigurationError, match="KEY_ENCRYPTION_PREVIOUS_KEYS"):
        ring(store, kek=NEW_KEK, previous_keks=(KEK,)).reencrypt()
    assert [r.private_key for r in store.all()] == before


class RacingStore(MemorySigningKeyStore):
    """Another process re-encrypts each row just before this one's compare-and-set."""

    def __init__(self, other: KeyEncryption) -> None:
        super().__init__()
        self.other = other
        self.theirs: dict[str, str] = {}

    def replace_private_key(self, kid: str, *, old: str, new: str) -> bool:
        if kid not in self.theirs:
            self.theirs[kid] = self.other.encrypt(kid, self.other.decrypt(kid, old))
            assert super().replace_private_key(kid, old=old, new=self.theirs[kid])
        return super().replace_private_key(kid, old=old, new=new)


def test_reencrypt_keeps_a_row_another_process_rewrote_meanwhile() -> None:
    store = RacingStore(KeyEncryption(NEW_KEK, (KEK,)))
    ring(store).ensure_current(NOW)
    done = ring(store, kek=NEW_KEK, previous_keks=(KEK,)).reencrypt()
    # The compare-and-set lost to the other writer; the row was read again and found current.
    assert (done.rewritten, done.current) == (0, 1)
    [record] = store.all()
    assert record.private_key == store.theirs[record.kid]  # not overwritten by this run


def test_hs256_signed_with_the_public_key_is_rejected() -> None:
    keys = ring()
    kid = keys.ensure_current(NOW)
    assert kid is not None
    public = json.dumps(json.loads(keys.store.all()[0].public_jwk))
    good = jwt.decode(
        codec(keys).issue(user_id="u", session_id="s", now=NOW).token,
        keys.find(kid).key,  # type: ignore[union-attr]
        algorithms=["ES256"],
        audience="authgraph",
    )
    forged = jwt.encode(good, public, algorithm="HS256", headers={"kid": kid, "typ": "at+jwt"})
    with pytest.raises(InvalidAccessToken):
        codec(keys).verify(forged)
    none = f"{_b64({'alg': 'none', 'kid': kid, 'typ': 'at+jwt'})}.{_b64(good)}."
    with pytest.raises(InvalidAccessToken):
        codec(keys).verify(none)


def test_rotation_keeps_old_tokens_until_they_expire() -> None:
    clock = Clock()
    keys = ring(clock=clock, ttl=60)
    tokens = codec(keys, clock, ttl=60)
    old_kid = keys.ensure_current(clock.utc)
    old = tokens.issue(user_id="u", session_id="s", now=clock.utc).token
    new_kid = keys.generate(clock.utc)
    keys.refresh()
    assert [k["kid"] for k in keys.key_set.jwks(clock.now)["keys"]] == [old_kid, new_kid]
    keys.activate(new_kid, clock.utc)
    keys.refresh()
    new = tokens.issue(user_id="u", session_id="s", now=clock.utc).token
    assert jwt.get_unverified_header(new)["kid"] == new_kid
    assert tokens.verify(old).user_id == "u"
    assert {r.kid: r.state for r in keys.store.all()} == {old_kid: "retired", new_kid: "current"}
    # The retired key leaves the JWKS by itself once every token it signed has expired.
    clock.now += 60 + LEEWAY_SECONDS + 1
    assert [k["kid"] for k in keys.key_set.jwks(clock.now)["keys"]] == [new_kid]
    with pytest.raises(InvalidAccessToken):
        tokens.verify(old)


def test_emergency_retire_rejects_even_tokens_verified_before() -> None:
    keys = ring()
    tokens = codec(keys)
    old_kid = keys.ensure_current(NOW)
    assert old_kid is not None
    old = tokens.issue(user_id="u", session_id="s", now=NOW).token
    assert tokens.verify(old).user_id == "u"
    new_kid = keys.generate(NOW)
    keys.activate(new_kid, NOW)
    keys.retire(old_kid, NOW)
    keys.refresh()
    with pytest.raises(InvalidAccessToken):
        tokens.verify(old)
    assert [k["kid"] for k in keys.key_set.jwks(NOW.timestamp())["keys"]] == [new_kid]


def test_rules_refuse_retiring_current_and_activating_non_standby() -> None:
    keys = ring()
    kid = keys.ensure_current(NOW)
    assert kid is not None
    with pytest.raises(KeyRuleError, match="current"):
        keys.retire(kid, NOW)
    with pytest.raises(KeyRuleError, match="standby"):
        keys.activate(kid, NOW)
    with pytest.raises(KeyRuleError, match="no signing key"):
        keys.activate("nope", NOW)
    standby = keys.generate(NOW)
    keys.retire(standby, NOW)
    with pytest.raises(KeyRuleError):
        keys.activate(standby, NOW)
    assert [r.state for r in keys.store.all()] == ["current", "retired"]


def test_unknown_kid_refetches_at_most_once_a_second() -> None:
    clock = Clock()
    store = CountingStore()
    writer = ring(store, clock=clock)
    writer.ensure_current(clock.utc)
    reader = ring(store, clock=clock)
    reader.refresh()
    tokens = codec(reader, clock)
    base = store.reads
    for i in range(50):
        forged = jwt.encode({"sub": str(i)}, "k" * 40, headers={"kid": f"f{i}", "typ": "at+jwt"})
        with pytest.raises(InvalidAccessToken):
            tokens.verify(forged)
    assert store.reads - base == 1
    # A key made elsewhere is found at once (after the bound), with no scheduled refresh.
    clock.now += 1.5
    other = ring(store, clock=clock)
    new_kid = other.generate(clock.utc)
    other.activate(new_kid, clock.utc)
    other.refresh()
    token = codec(other, clock).issue(user_id="u", session_id="s", now=clock.utc).token
    assert tokens.verify(token).user_id == "u"


def test_verifying_known_tokens_reads_no_keys() -> None:
    store = CountingStore()
    keys = ring(store)
    keys.ensure_current(NOW)
    tokens = codec(keys)
    token = tokens.issue(user_id="u", session_id="s", now=NOW).token
    base = store.reads
    for _ in range(20):
        assert codec(keys).verify(token).user_id == "u"
    assert store.reads == base


def test_legacy_hs256_tokens_stay_valid_until_expiry_after_the_switch() -> None:
    clock = Clock()
    before_switch = _legacy_token(clock.utc - timedelta(seconds=10))
    keys = ring(clock=clock)
    tokens = codec(keys, clock)
    # Before any ES256 key exists (an installation being upgraded), HS256 still verifies.
    assert tokens.verify(before_switch).user_id == "u"
    keys.ensure_current(clock.utc)
    fresh = codec(keys, clock)
    assert fresh.verify(before_switch).user_id == "u"
    # Minted with the old secret after the switch: refused.
    clock.now += 5
    with pytest.raises(InvalidAccessToken):
        fresh.verify(_legacy_token(clock.utc))
    # Longer-lived than any token ever was: refused.
    with pytest.raises(InvalidAccessToken):
        codec(keys, clock).verify(_legacy_token(clock.utc - timedelta(seconds=60), ttl=10**6))
    # And the secret verifies nothing once every pre-switch token has expired.
    clock.now += 900 + LEEWAY_SECONDS
    with pytest.raises(InvalidAccessToken):
        codec(keys, clock).verify(before_switch)


def test_hs256_mode_signs_with_the_secret_and_publishes_nothing() -> None:
    keys = ring(algorithm="HS256")
    assert keys.ensure_current(NOW) is None
    token = codec(keys).issue(user_id="u", session_id="s", now=NOW).token
    assert jwt.get_unverified_header(token)["kid"] == legacy_key_id(SECRET)
    assert keys.key_set.jwks(NOW.timestamp()) == {"keys": []}
