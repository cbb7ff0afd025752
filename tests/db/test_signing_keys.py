"""The signing-key store on both databases: one current key, whatever the callers do."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from auth.keys import KeyEncryption, KeyRing, KeyRingConfig, Reencrypted, generate_key
from auth.ports import NewKey
from db.engine import create_db_engine, create_session_factory
from db.signing_keys import SqlSigningKeyStore
from tests.conftest import TEST_KEK

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def store(database_url: str) -> Iterator[SqlSigningKeyStore]:
    engine = create_db_engine(database_url)
    yield SqlSigningKeyStore(create_session_factory(engine))
    engine.dispose()


def test_store_allows_one_current_key(store: SqlSigningKeyStore) -> None:
    first = generate_key("ES256", KeyEncryption(TEST_KEK))
    assert store.add(first, state="current", now=NOW)
    second = generate_key("ES256", KeyEncryption(TEST_KEK))
    assert not store.add(second, state="current", now=NOW)
    assert [k.kid for k in store.all()] == [first.kid]


def test_concurrent_first_keys_make_one_current(store: SqlSigningKeyStore) -> None:
    keys = [generate_key("ES256", KeyEncryption(TEST_KEK)) for _ in range(4)]
    results: list[bool] = []
    barrier = threading.Barrier(len(keys))

    def add(key: NewKey) -> None:
        barrier.wait()
        results.append(store.add(key, state="current", now=NOW))

    threads = [threading.Thread(target=add, args=(k,)) for k in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [False, False, False, True]
    assert [k.state for k in store.all()] == ["current"]


def test_activate_and_retire_follow_the_states(store: SqlSigningKeyStore) -> None:
    old = generate_key("ES256", KeyEncryption(TEST_KEK))
    new = generate_key("ES256", KeyEncryption(TEST_KEK))
    assert store.add(old, state="current", now=NOW)
    assert store.add(new, state="standby", now=NOW + timedelta(seconds=1))
    assert not store.activate(old.kid, now=NOW, retired_until=NOW)  # not standby
    assert not store.retire(old.kid, now=NOW)  # current
    until = NOW + timedelta(minutes=15)
    assert store.activate(new.kid, now=NOW, retired_until=until)
    states = {k.kid: (k.state, k.published_until) for k in store.all()}
    assert states == {old.kid: ("retired", until), new.kid: ("current", None)}
    assert store.retire(old.kid, now=NOW)
    assert {k.kid: (k.state, k.published_until) for k in store.all()}[old.kid] == (
        "retired",
        None,
    )
    assert not store.activate("no-such-kid", now=NOW, retired_until=until)
    # A refused activation changed nothing.
    assert [k.state for k in store.all() if k.kid == new.kid] == ["current"]


def test_private_key_is_replaced_only_over_the_ciphertext_read(store: SqlSigningKeyStore) -> None:
    key = generate_key("ES256", KeyEncryption(TEST_KEK))
    assert store.add(key, state="current", now=NOW)
    assert store.replace_private_key(key.kid, old=key.private_key, new="v1.first")
    assert not store.replace_private_key(key.kid, old=key.private_key, new="v1.stale")
    assert not store.replace_private_key("no-such-kid", old="v1.first", new="v1.x")
    assert [k.private_key for k in store.all()] == ["v1.first"]


def test_concurrent_reencrypts_rewrite_each_key_once(store: SqlSigningKeyStore) -> None:
    new_kek = "new-" + TEST_KEK
    for state in ("current", "standby", "standby"):
        assert store.add(generate_key("ES256", KeyEncryption(TEST_KEK)), state=state, now=NOW)
    config = KeyRingConfig(
        algorithm="ES256",
        secret=TEST_KEK,
        key_encryption_key=new_kek,
        previous_key_encryption_keys=(TEST_KEK,),
    )
    results: list[Reencrypted] = []
    barrier = threading.Barrier(3)

    def reencrypt() -> None:
        ring = KeyRing(config, store)
        barrier.wait()
        results.append(ring.reencrypt())

    threads = [threading.Thread(target=reencrypt) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 3
    # Every row was rewritten by exactly one run; the others found it current.
    assert sum(r.rewritten for r in results) == 3
    assert all(r.rewritten + r.current == 3 for r in results)
    for record in store.all():
        assert b"PRIVATE KEY" in KeyEncryption(new_kek).decrypt(record.kid, record.private_key)
