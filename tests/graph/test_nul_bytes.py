"""A NUL byte in any string argument is a normal answer on every database, never a crash.

PostgreSQL refuses text holding NUL (SQLite stores it), so each input is tried on both.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from graph.errors import UNEXPECTED_MESSAGE
from tests.factories import signup

NUL = "a\x00b"
OPERATIONS = {
    "signup email": (
        "mutation($s: String!) { signup(input: {email: $s, password: "
        '"a long passphrase"}) { __typename } }'
    ),
    "signup password": (
        'mutation($s: String!) { signup(input: {email: "nul@example.com", password: $s}) '
        "{ __typename } }"
    ),
    "login email": (
        'mutation($s: String!) { login(input: {email: $s, password: "x"}) { __typename } }'
    ),
    "login password": (
        'mutation($s: String!) { login(input: {email: "nul@example.com", password: $s}) '
        "{ __typename } }"
    ),
    "refresh token": "mutation($s: String) { refreshToken(refreshToken: $s) { __typename } }",
    "revoke session": "mutation($s: ID!) { revokeSession(id: $s) { __typename } }",
    "change password": (
        "mutation($s: String!) { changePassword(input: {currentPassword: $s, "
        "newPassword: $s}) { __typename } }"
    ),
}


@pytest.mark.parametrize("query", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_nul_byte_in_string_argument_gets_a_normal_answer(client: TestClient, query: str) -> None:
    token = signup(client)["accessToken"]
    response = client.post(
        "/graphql",
        json={"query": query, "variables": {"s": NUL + "-padding-to-pass-length-checks"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    assert UNEXPECTED_MESSAGE not in response.text
    assert response.json()["data"]
