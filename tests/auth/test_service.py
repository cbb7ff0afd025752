"""The use cases against a real database, with a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from auth.errors import InvalidRefreshToken
from auth.ports import ClientInfo
from auth.service import AuthService
from auth.toolkit import AuthToolkit
from db.engine import create_db_engine, create_session_factory
from db.models import EmailToken, OutboxMessage, Session
from db.repositories import SqlUnitOfWork
from graph.settings import Settings
from tests.factories import Clock

PASSWORD = "correct horse battery staple"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(settings: Settings, clock: Clock) -> Iterator[AuthService]:
    engine = create_db_engine(settings.database.database_url)
    database = create_session_factory(engine)()
    yield AuthService(AuthToolkit(settings.auth, clock), SqlUnitOfWork(database))
    database.close()
    engine.dispose()


def _count_sessions(service: AuthService) -> int:
    uow = service.uow
    assert isinstance(uow, SqlUnitOfWork)
    return uow.db.scalar(select(func.count()).select_from(Session)) or 0


def test_prune_deletes_expired_and_long_revoked(service: AuthService, clock: Clock) -> None:
    client = ClientInfo()
    first = service.signup("prune@example.com", PASSWORD, client)
    service.login("prune@example.com", PASSWORD, client)
    service.logout_by_refresh_token(
        first.refresh_token, csrf=service.toolkit.csrf_token(first.session.id)
    )
    assert service.prune().sessions == 0  # revoked rows linger a day to recognise token reuse
    clock.now += timedelta(days=2)
    assert service.prune().sessions == 1
    assert _count_sessions(service) == 1
    clock.now += timedelta(days=31)
    assert service.prune().sessions == 1
    assert _count_sessions(service) == 0


def test_refresh_after_expiry_is_invalid(service: AuthService, clock: Clock) -> None:
    result = service.signup("expiry@example.com", PASSWORD, ClientInfo())
    clock.now += timedelta(seconds=service.settings.refresh_token_ttl_seconds + 1)
    with pytest.raises(InvalidRefreshToken):
        service.refresh(result.refresh_token, ClientInfo())


def test_refresh_never_passes_session_max_age(service: AuthService, clock: Clock) -> None:
    result = service.signup("maxage@example.com", PASSWORD, ClientInfo())
    token = result.refresh_token
    limit = result.session.created_at + timedelta(seconds=service.settings.session_max_age_seconds)
    for _ in range(4):
        clock.now += timedelta(days=25)
        if clock.now >= limit:
            with pytest.raises(InvalidRefreshToken):
                service.refresh(token, ClientInfo())
            return
        rotated = service.refresh(token, ClientInfo())
        assert rotated.refresh_expires_at <= limit
        token = rotated.refresh_token
    raise AssertionError("the absolute session lifetime was never reached")


def _count(service: AuthService, model: type[EmailToken] | type[OutboxMessage]) -> int:
    uow = service.uow
    assert isinstance(uow, SqlUnitOfWork)
    return uow.db.scalar(select(func.count()).select_from(model)) or 0


def test_prune_deletes_spent_tokens_and_old_delivered_mail(
    service: AuthService, clock: Clock
) -> None:
    service.signup("mail@example.com", PASSWORD, ClientInfo())  # queues a verification mail
    uow = service.uow
    assert isinstance(uow, SqlUnitOfWork)
    uow.db.execute(update(OutboxMessage).values(sent_at=clock.now))
    uow.db.commit()
    assert (_count(service, EmailToken), _count(service, OutboxMessage)) == (1, 1)
    counts = service.prune()
    assert (counts.email_tokens, counts.mail) == (0, 0)  # the link in the mail still works
    clock.now += timedelta(days=1, seconds=1)
    counts = service.prune()
    assert (counts.email_tokens, counts.mail) == (1, 1)
    assert (_count(service, EmailToken), _count(service, OutboxMessage)) == (0, 0)
