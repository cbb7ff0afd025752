"""Helpers for accounts without a password, for the optional-password and passwordless tests."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from db.engine import normalize_database_url


def drop_password(database_url: str, email: str) -> None:
    """Make an existing account passwordless, as one created without a password would be.

    No mutation removes a password yet: accounts without one come from other sign-in
    methods, so the test sets the state directly in the database.
    """
    engine = create_engine(normalize_database_url(database_url))
    with engine.begin() as connection:
        changed = connection.execute(
            text("UPDATE users SET password_hash = NULL WHERE email = :e"), {"e": email}
        ).rowcount
    engine.dispose()
    assert changed == 1, email
