"""A fresh benchmark database: migrated, with accounts, live sessions and their access tokens."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from auth.passwords import PasswordHasher
from auth.tokens import hash_opaque_token, new_opaque_token
from auth.toolkit import AuthToolkit
from db.engine import create_db_engine, create_session_factory, normalize_database_url
from db.migrate import upgrade
from db.models import RefreshToken, Session, User, new_id
from db.signing_keys import SqlSigningKeyStore
from graph.settings import Settings

PASSWORD = "bench passphrase 7f3a"
BATCH = 2_000


@dataclass(frozen=True)
class Seeded:
    tokens_file: Path
    """Access tokens of live sessions, one per line (for ``viewer``)."""
    emails_file: Path
    """Emails of accounts whose password is :data:`PASSWORD` (for ``login``)."""
    refresh_tokens_file: Path
    """Unspent refresh tokens of live sessions, one per line (for ``refreshToken``)."""
    users: int
    hs256_tokens_file: Path
    """The same sessions' access tokens signed with ``JWT_SECRET`` (``JWT_ALGORITHM=HS256``)."""


def fresh_database(database_url: str) -> None:
    """Drop and recreate the database (PostgreSQL) or delete the file (SQLite), then migrate."""
    url = make_url(normalize_database_url(database_url))
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    else:
        name = url.database
        if not name or not name.replace("_", "").isalnum():
            raise ValueError(f"refusing to recreate database {name!r}")
        maintenance = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with maintenance.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        maintenance.dispose()
    upgrade(database_url)


def seed(settings: Settings, directory: Path, *, users: int, tokens: int) -> Seeded:
    """Insert ``users`` accounts, each with one live session; write ``tokens`` access tokens.

    The first ``tokens`` sessions also get a refresh token each, written to their own file.

    Every account shares one password hash at the configured cost (hashing 10,000 passwords
    would take most of an hour); verifying it costs exactly what a real login costs.
    """
    # The server verifies with the keys in the database: sign with its current key.
    key_engine = create_db_engine(settings.database.database_url)
    toolkit = AuthToolkit(
        settings.auth, key_store=SqlSigningKeyStore(create_session_factory(key_engine))
    )
    toolkit.keys.ensure_current(datetime.now(UTC))
    toolkit.keys.refresh()
    key_engine.dispose()
    hs256 = AuthToolkit(dataclasses.replace(settings.auth, jwt_algorithm="HS256"))
    issued_hs256: list[str] = []
    password_hash = PasswordHasher(settings.auth.bcrypt_rounds).hash(PASSWORD)
    now = datetime.now(UTC)
    expires = now + timedelta(days=30)
    emails: list[str] = []
    issued: list[str] = []
    refresh_tokens: list[str] = []
    engine = create_engine(normalize_database_url(settings.database.database_url))
    with engine.begin() as connection:
        for start in range(0, users, BATCH):
            user_rows = []
            session_rows = []
            refresh_rows = []
            for i in range(start, min(start + BATCH, users)):
                user_id, session_id, email = new_id(), new_id(), f"bench{i}@example.com"
                emails.append(email)
                user_rows.append(
                    {
                        "id": user_id,
                        "email": email,
                        "password_hash": password_hash,
                        "created_at": now,
                    }
                )
                session_rows.append(
                    {
                        "id": session_id,
                        "user_id": user_id,
                        "created_at": now,
                        "last_used_at": now,
                        # A password login (aal1): the session check needs its time.
                        "authenticated_at": now,
                        "expires_at": expires,
                        "user_agent": "bench",
                        "ip_address": "127.0.0.1",
                    }
                )
                if i < tokens:
                    token = toolkit.tokens.issue(user_id=user_id, session_id=session_id, now=now)
                    issued.append(token.token)
                    issued_hs256.append(
                        hs256.tokens.issue(user_id=user_id, session_id=session_id, now=now).token
                    )
                    refresh = new_opaque_token()
                    refresh_tokens.append(refresh)
                    refresh_rows.append(
                        {
                            "id": new_id(),
                            "session_id": session_id,
                            "token_hash": hash_opaque_token(refresh),
                            "created_at": now,
                            "expires_at": expires,
                        }
                    )
            connection.execute(insert(User), user_rows)
            connection.execute(insert(Session), session_rows)
            if refresh_rows:
                connection.execute(insert(RefreshToken), refresh_rows)
    engine.dispose()
    tokens_file = directory / "tokens.txt"
    tokens_file.write_text("\n".join(issued) + "\n")
    emails_file = directory / "emails.txt"
    emails_file.write_text("\n".join(emails[: max(tokens, 1)]) + "\n")
    refresh_tokens_file = directory / "refresh-tokens.txt"
    refresh_tokens_file.write_text("\n".join(refresh_tokens) + "\n")
    hs256_tokens_file = directory / "tokens-hs256.txt"
    hs256_tokens_file.write_text("\n".join(issued_hs256) + "\n")
    return Seeded(
        tokens_file=tokens_file,
        emails_file=emails_file,
        refresh_tokens_file=refresh_tokens_file,
        users=users,
        hs256_tokens_file=hs256_tokens_file,
    )
