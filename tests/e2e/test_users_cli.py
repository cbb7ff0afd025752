"""``authgraph users`` as an operator runs it: real processes against the test database (SQLite
and PostgreSQL), with the app (in process, same database) signing users in and out."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from db.engine import normalize_database_url
from tests.conftest import TEST_KEK, TEST_SECRET
from tests.factories import VIEWER, error_codes, gql, login, signup, unique_email
from tests.servers import authgraph_env, run_cli

pytestmark = pytest.mark.timeout(240)


class Cli:
    """``authgraph users ...`` against one database."""

    def __init__(self, database_url: str, cwd: Path) -> None:
        self.cwd = cwd
        self.env = authgraph_env(
            DATABASE_URL=database_url,
            JWT_SECRET=TEST_SECRET,
            KEY_ENCRYPTION_KEY=TEST_KEK,
            MAIL_DIR=str(cwd / "mail"),
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("users", *args, env=self.env, cwd=self.cwd)

    def json(self, *args: str) -> Any:
        done = self.run(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    return Cli(database_url, tmp_path)


def test_grant_admin_makes_the_first_admin(client: TestClient, cli: Cli) -> None:
    email = unique_email("first-admin")
    user_id = signup(client, email=email)["user"]["id"]
    granted = cli.json("grant-admin", email.upper())
    assert granted["id"] == user_id
    assert granted["roles"] == ["ADMIN"]
    assert granted["mfaEnabled"] is False
    assert len(granted["sessions"]) == 1
    shown = cli.run("show", user_id)
    assert shown.returncode == 0, shown.stderr
    assert email in shown.stdout
    assert "ADMIN" in shown.stdout


def test_list_in_a_table_and_as_json(client: TestClient, cli: Cli) -> None:
    emails = [unique_email("listed") for _ in range(3)]
    ids = [signup(client, email=e)["user"]["id"] for e in emails]
    listed = cli.json("list", "--query", "listed")
    assert {u["id"] for u in listed["users"]} == set(ids)
    assert listed["hasNextPage"] is False
    first = cli.json("list", "--query", "listed", "--limit", "2")
    assert len(first["users"]) == 2
    assert first["hasNextPage"] is True
    rest = cli.json("list", "--query", "listed", "--after", first["endCursor"])
    assert {u["id"] for u in first["users"] + rest["users"]} == set(ids)
    table = cli.run("list", "--query", "listed")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "id",
        "email",
        "roles",
        "mfa",
        "state",
        "sessions",
        "last",
        "sign-in",
    ]
    assert sorted(line.split()[1] for line in lines[1:]) == sorted(emails)
    assert cli.run("list", "--limit", "201").returncode == 1


def test_disable_enable_and_sign_out(client: TestClient, cli: Cli, database_url: str) -> None:
    email = unique_email("cli-target")
    token = signup(client, email=email)["accessToken"]
    disabled = cli.json("disable", email, "--reason", "chargeback fraud")
    assert disabled["disabledAt"] is not None
    assert disabled["disabledReason"] == "chargeback fraud"
    assert disabled["sessions"] == []
    # The live session ended at once; the right password now says why.
    assert error_codes(gql(client, VIEWER, token=token)) == ["UNAUTHENTICATED"]
    assert login(client, email)["__typename"] == "AccountDisabled"
    assert login(client, email, "a wrong password here")["__typename"] == "InvalidCredentials"
    assert [u["email"] for u in cli.json("list", "--disabled")["users"]] == [email]
    enabled = cli.json("enable", disabled["id"])
    assert enabled["disabledAt"] is None
    again = login(client, email)
    assert again["__typename"] == "AuthPayload"
    signed_out = cli.json("sign-out", email)
    assert signed_out["sessions"] == []
    assert error_codes(gql(client, VIEWER, token=again["accessToken"])) == ["UNAUTHENTICATED"]
    # Each command is in the audit trail: no admin id, the operator, the reason.
    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        recorded = connection.execute(
            text(
                "SELECT e.detail, e.actor_id, a.operator, a.reason FROM security_events e "
                "JOIN admin_audit a ON a.event_id = e.id WHERE e.user_id = :u "
                "AND e.kind = 'admin_action' ORDER BY e.occurred_at"
            ),
            {"u": disabled["id"]},
        ).all()
    engine.dispose()
    assert [r[0] for r in recorded] == [
        "disable_user",
        "list_users",
        "enable_user",
        "revoke_sessions",
    ]
    assert {r[1] for r in recorded} == {None}
    assert all(str(r[2]).startswith("cli:") for r in recorded)
    assert recorded[0][3] == "chargeback fraud"


def test_refusals_exit_1_with_a_message(client: TestClient, cli: Cli) -> None:
    email = unique_email("only-admin")
    signup(client, email=email)
    cli.json("grant-admin", email)
    last = cli.run("revoke-admin", email)
    assert last.returncode == 1
    assert "last active administrator" in last.stderr
    unknown = cli.run("show", "nobody@example.com")
    assert unknown.returncode == 1
    assert "No such user." in unknown.stderr
    blank = cli.run("disable", email, "--reason", "  ")
    assert blank.returncode == 1
    # With a second admin, the first may go.
    other = unique_email("second-admin")
    signup(client, email=other)
    cli.json("grant-admin", other)
    assert cli.json("revoke-admin", email)["roles"] == []
