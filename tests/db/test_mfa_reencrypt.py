"""``MfaService.reencrypt_secrets`` on both databases, racing another run in another session."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from auth.config import Secret
from auth.keys import Reencrypted
from auth.mfa import MfaService
from auth.ports import MfaRepository
from auth.settings import AuthSettings
from auth.toolkit import AuthToolkit
from auth.totp import SecretBox
from db.engine import create_db_engine, create_session_factory
from db.repositories import SqlUnitOfWork

NOW = datetime(2026, 1, 1, tzinfo=UTC)
OLD_KEY = "mfa-old-0123456789-abcdefghijklmnopqrstuvwxyz"
NEW_KEY = "mfa-new-0123456789-abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_db_engine(database_url)
    yield create_session_factory(engine)
    engine.dispose()


def _toolkit(key: str, *previous: str) -> AuthToolkit:
    return AuthToolkit(
        AuthSettings(
            jwt_secret=Secret("db-0123456789-abcdefghijklmnopqrstuvwxyz"),
            bcrypt_rounds=4,
            mfa_encryption_key=Secret(key),
            mfa_encryption_previous_keys=tuple(Secret(k) for k in previous),
        )
    )


def test_reencrypt_reads_a_row_again_after_losing_its_compare_and_set(
    sessions: sessionmaker[Session],
) -> None:
    old = _toolkit(OLD_KEY)
    setup = SqlUnitOfWork(sessions())
    for email in ("one@example.com", "two@example.com"):
        user = setup.users.add(email=email, password_hash="hash", now=NOW)
        sealed = old.secret_box.seal("JBSWY3DPEHPK3PXP", user_id=user.id)
        setup.repository(MfaRepository).add_factor(
            user_id=user.id, kind="totp", secret_sealed=sealed, now=NOW
        )
    setup.commit()
    setup.close()

    rotating = _toolkit(NEW_KEY, OLD_KEY)
    units = [SqlUnitOfWork(sessions()) for _ in range(3)]
    try:
        _race(rotating, *units)
    finally:
        for unit in units:
            unit.close()
        for toolkit in (old, rotating):
            toolkit.close()


def _race(
    rotating: AuthToolkit, first: SqlUnitOfWork, second: SqlUnitOfWork, check: SqlUnitOfWork
) -> None:
    mine = MfaService(rotating, first)
    other = MfaService(rotating, second)
    plain = mine.mfa.replace_secret
    theirs: list[Reencrypted] = []

    def racing(factor_id: str, *, old: str, new: str) -> bool:
        # The other run, in its own session, reseals every row before this run's first write.
        if not theirs:
            theirs.append(other.reencrypt_secrets())
        return plain(factor_id, old=old, new=new)

    mine.mfa.replace_secret = racing  # type: ignore[method-assign]
    done = mine.reencrypt_secrets()
    assert theirs == [Reencrypted(rewritten=2, current=0)]
    # Each compare-and-set lost; the row was read again (not from the session's stale copy),
    # found under the current key and left as the other run wrote it.
    assert done == Reencrypted(rewritten=0, current=2)
    box = SecretBox(NEW_KEY)
    for factor in check.repository(MfaRepository).all_factors():
        assert box.open(factor.secret_sealed, user_id=factor.user_id) == "JBSWY3DPEHPK3PXP"
