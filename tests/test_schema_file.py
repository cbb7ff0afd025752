"""schema.graphql is the committed contract: it must match what the code builds."""

from __future__ import annotations

import difflib
from pathlib import Path

from graph.schema import build_schema

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schema.graphql"


def test_schema_file_matches_code() -> None:
    built = build_schema().as_str().strip() + "\n"
    committed = SCHEMA_FILE.read_text()
    if built != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                built.splitlines(keepends=True),
                "schema.graphql (committed)",
                "schema (from code)",
            )
        )
        raise AssertionError(
            "schema.graphql is out of date. Refresh it with\n"
            "    .venv/bin/authgraph export-schema > schema.graphql   (or: make schema)\n"
            "and check the change is not breaking for clients.\n\n" + diff
        )


def test_schema_file_keeps_the_contract() -> None:
    sdl = SCHEMA_FILE.read_text()
    for line in [
        "viewer: User",
        "signup(input: SignupInput!): SignupResult!",
        "login(input: LoginInput!): LoginResult!",
        "refreshToken(refreshToken: String = null): RefreshTokenResult!",
        "logout(scope: LogoutScope! = CURRENT): LogoutResult!",
        "revokeSession(id: ID!): RevokeSessionResult!",
        "changePassword(input: ChangePasswordInput!): ChangePasswordResult!",
        "interface Error",
    ]:
        assert line in sdl, line
