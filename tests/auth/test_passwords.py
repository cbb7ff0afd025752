from __future__ import annotations

import bcrypt
import pytest

from auth.errors import ValidationFailed
from auth.passwords import (
    MAX_LENGTH,
    PasswordHasher,
    check_password_policy,
    common_password_count,
)

EMAIL = "alice@example.com"


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(rounds=4)


def test_check_policy_accepts_lowercase_passphrase() -> None:
    check_password_policy("purple monkey dishwasher", email=EMAIL, field="password")


def test_check_policy_accepts_64_non_ascii_characters() -> None:
    check_password_policy("é" * 64, email=EMAIL, field="password")


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("short", "at least 8"),
        ("x" * (MAX_LENGTH + 1), "at most"),
        ("password1234", "too common"),
        ("PASSWORD1234", "too common"),
        (EMAIL, "email"),
        ("Alice@Example.com", "email"),
    ],
)
def test_check_policy_refuses_with_reason(password: str, fragment: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_password_policy(password, email=EMAIL, field="newPassword")
    assert caught.value.field == "newPassword"
    assert fragment in caught.value.public_message


def test_common_list_holds_at_least_ten_thousand() -> None:
    assert common_password_count() >= 10_000


def test_verify_distinguishes_passwords_past_72_bytes(hasher: PasswordHasher) -> None:
    stored = hasher.hash("a" * 72 + "X")
    assert hasher.verify("a" * 72 + "X", stored)[0] is True
    assert hasher.verify("a" * 72 + "Y", stored)[0] is False


def test_verify_handles_unicode_over_72_bytes(hasher: PasswordHasher) -> None:
    password = "é" * 100  # 200 bytes in UTF-8
    assert hasher.verify(password, hasher.hash(password))[0] is True


def test_verify_normalizes_unicode_forms(hasher: PasswordHasher) -> None:
    composed, decomposed = "caf\u00e9 au lait", "cafe\u0301 au lait"
    assert hasher.verify(decomposed, hasher.hash(composed))[0] is True


def test_verify_upgrades_hash_with_fewer_rounds() -> None:
    weak = PasswordHasher(rounds=4).hash("correct horse battery")
    ok, new_hash = PasswordHasher(rounds=5).verify("correct horse battery", weak)
    assert ok
    assert new_hash is not None
    assert "r=5$" in new_hash


def test_verify_accepts_and_upgrades_plain_bcrypt(hasher: PasswordHasher) -> None:
    legacy = bcrypt.hashpw(b"correct horse battery", bcrypt.gensalt(4)).decode()
    ok, new_hash = hasher.verify("correct horse battery", legacy)
    assert ok
    assert new_hash is not None
    assert new_hash.startswith("$bcrypt-sha256$")


def test_verify_rejects_corrupt_hash_without_raising(hasher: PasswordHasher) -> None:
    assert hasher.verify("whatever password", "not-a-hash") == (False, None)


def test_verify_rejects_overlong_password_quickly(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery")
    assert hasher.verify("a" * 10_000, stored) == (False, None)


def test_hash_uses_configured_rounds() -> None:
    assert (
        PasswordHasher(rounds=6)
        .hash("correct horse battery")
        .startswith("$bcrypt-sha256$v=2,t=2b,r=6$")
    )
