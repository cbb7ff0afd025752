"""db.features: feature repositories found by their port, feature tables found by Alembic."""

from __future__ import annotations

from typing import Protocol

import pytest
from sqlalchemy.orm import Session as OrmSession

import db.models
from auth.ports import MfaRepository
from db.engine import create_db_engine, create_session_factory
from db.features import implementation, implements, metadata
from db.mfa import SqlMfaRepository
from db.repositories import SqlUnitOfWork


class _UnimplementedPort(Protocol):
    def nothing(self) -> None: ...


def test_metadata_includes_tables_declared_outside_models() -> None:
    names = set(metadata().tables)
    assert {"users", "sessions", "mfa_factors", "recovery_codes", "mfa_challenges"} <= names
    # The MFA tables live with their repository in db/mfa.py, not in db/models.py.
    assert not hasattr(db.models, "MfaFactor")


def test_implementation_of_unknown_port_names_it() -> None:
    with pytest.raises(LookupError, match="_UnimplementedPort"):
        implementation(_UnimplementedPort)


def test_implements_twice_refuses_second_class() -> None:
    class Other:
        def __init__(self, db: OrmSession) -> None: ...

    with pytest.raises(RuntimeError, match="MfaRepository is implemented twice"):
        implements(MfaRepository)(Other)
    assert implementation(MfaRepository) is SqlMfaRepository


def test_repository_is_one_instance_per_unit_of_work(database_url: str) -> None:
    engine = create_db_engine(database_url)
    session = create_session_factory(engine)()
    try:
        uow = SqlUnitOfWork(session)
        first = uow.repository(MfaRepository)
        assert isinstance(first, SqlMfaRepository)
        assert uow.repository(MfaRepository) is first
        assert first.db is session
        assert first.factors("no-such-user") == []  # and it works in the transaction
        assert SqlUnitOfWork(session).repository(MfaRepository) is not first
    finally:
        session.close()
        engine.dispose()
