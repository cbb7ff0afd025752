"""The SQL repositories on their own, on SQLite and PostgreSQL: what auth/ports.py promises."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from auth.errors import EmailTaken
from auth.ports import ClientInfo, MfaRepository, OutgoingMail
from db.engine import create_db_engine, create_session_factory
from db.repositories import SqlUnitOfWork

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(days=1)


@pytest.fixture
def uow(database_url: str) -> Iterator[SqlUnitOfWork]:
    engine = create_db_engine(database_url)
    unit = SqlUnitOfWork(create_session_factory(engine)())
    yield unit
    unit.close()
    engine.dispose()


def _user(uow: SqlUnitOfWork, email: str = "repo@example.com") -> str:
    user = uow.users.add(email=email, password_hash="hash", now=NOW)
    uow.commit()
    return user.id


def test_add_user_with_taken_email_raises_email_taken(uow: SqlUnitOfWork) -> None:
    _user(uow)
    with pytest.raises(EmailTaken):
        uow.users.add(email="repo@example.com", password_hash="other", now=NOW)


def test_mark_email_verified_only_for_current_address(uow: SqlUnitOfWork) -> None:
    user_id = _user(uow)
    assert not uow.users.mark_email_verified(user_id, email="old@example.com")
    assert uow.users.mark_email_verified(user_id, email="repo@example.com")
    uow.commit()
    user = uow.users.get(user_id)
    assert user is not None
    assert user.email_verified


def test_find_active_after_revoke_returns_none(uow: SqlUnitOfWork) -> None:
    user_id = _user(uow)
    session = uow.sessions.open(
        user_id=user_id, now=NOW, expires_at=LATER, client=ClientInfo("ua", "192.0.2.1")
    )
    uow.commit()
    found = uow.sessions.find_active(session_id=session.id, user_id=user_id, now=NOW)
    assert found is not None
    assert (found[0].email, found[1].ip_address) == ("repo@example.com", "192.0.2.1")
    assert uow.sessions.find_active(session_id=session.id, user_id=user_id, now=LATER) is None
    assert uow.sessions.revoke(user_id=user_id, now=NOW, reason="test", only=session.id) == 1
    uow.commit()
    assert uow.sessions.find_active(session_id=session.id, user_id=user_id, now=NOW) is None


def test_claim_refresh_token_succeeds_once(uow: SqlUnitOfWork) -> None:
    user_id = _user(uow)
    session = uow.sessions.open(user_id=user_id, now=NOW, expires_at=LATER, client=ClientInfo())
    token = uow.sessions.add_refresh_token(
        session_id=session.id, token_hash="h" * 64, now=NOW, expires_at=LATER
    )
    uow.commit()
    found = uow.sessions.find_refresh_token("h" * 64)
    assert found is not None
    assert found[1].id == session.id
    assert uow.sessions.claim_refresh_token(token, now=NOW)
    assert not uow.sessions.claim_refresh_token(token, now=NOW)


def test_email_token_claim_once_then_prune(uow: SqlUnitOfWork) -> None:
    user_id = _user(uow)
    uow.email_tokens.add(
        user_id=user_id,
        purpose="verify_email",
        token_hash="e" * 64,
        email="repo@example.com",
        now=NOW,
        expires_at=LATER,
    )
    uow.commit()
    token = uow.email_tokens.find("e" * 64)
    assert token is not None
    assert uow.email_tokens.claim(token, now=NOW)
    assert not uow.email_tokens.claim(token, now=NOW)
    assert uow.email_tokens.prune(now=NOW) == 1
    assert uow.email_tokens.find("e" * 64) is None


def test_delete_user_cascades_to_sessions(uow: SqlUnitOfWork) -> None:
    user_id = _user(uow)
    session = uow.sessions.open(user_id=user_id, now=NOW, expires_at=LATER, client=ClientInfo())
    uow.commit()
    assert uow.users.delete(user_id)
    uow.commit()
    assert uow.sessions.list_active(user_id=user_id, now=NOW) == []
    assert uow.sessions.find_active(session_id=session.id, user_id=user_id, now=NOW) is None
    assert not uow.users.delete(user_id)


def test_outbox_prune_keeps_undelivered_mail(uow: SqlUnitOfWork) -> None:
    uow.outbox.enqueue(OutgoingMail("a@example.com", "s", "t", "<p>h</p>"), now=NOW)
    uow.commit()
    assert uow.outbox.prune(sent_before=LATER, failed_before=LATER) == 0
    assert uow.ping()


def test_mfa_secret_is_replaced_only_over_the_sealed_value_read(uow: SqlUnitOfWork) -> None:
    mfa = uow.repository(MfaRepository)
    first = mfa.add_factor(user_id=_user(uow), kind="totp", secret_sealed="v1:a", now=NOW)
    pending = mfa.add_factor(
        user_id=_user(uow, "other@example.com"), kind="totp", secret_sealed="v1:b", now=LATER
    )
    uow.commit()
    # Every factor of every user, pending ones too, oldest first.
    assert [f.id for f in mfa.all_factors()] == [first.id, pending.id]
    assert mfa.replace_secret(first.id, old="v1:a", new="v1:c")
    assert not mfa.replace_secret(first.id, old="v1:a", new="v1:stale")
    assert not mfa.replace_secret(pending.id, old="v1:a", new="v1:d")
    uow.commit()
    uow.db.expire_all()  # the values below come from the database, not the session
    assert {f.id: f.secret_sealed for f in mfa.all_factors()} == {
        first.id: "v1:c",
        pending.id: "v1:b",
    }
