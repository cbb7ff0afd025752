from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from jose import jwt
from sqlalchemy import create_engine, text

from auth.tokens import key_id
from db.engine import normalize_database_url
from tests.conftest import GRAPHQL_PATHS, TEST_SECRET, MakeClient
from tests.factories import VIEWER, error_codes, gql, signup

# Through the lean path and through Strawberry's full pipeline (tests/conftest.py).
pytestmark = pytest.mark.parametrize("graphql_path", GRAPHQL_PATHS)


def test_viewer_without_header_is_null_without_error(client: TestClient) -> None:
    body = gql(client, VIEWER)
    assert body == {"data": {"viewer": None}}


def _token(**overrides: object) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": "00000000-0000-4000-8000-000000000000",
        "sid": "00000000-0000-4000-8000-000000000001",
        "jti": "x",
        "iss": "authgraph",
        "aud": "authgraph",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        **overrides,
    }
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None},
        TEST_SECRET,
        algorithm="HS256",
        headers={"kid": key_id(TEST_SECRET), "typ": "at+jwt"},
    )


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer", id="empty-bearer"),
        pytest.param("Basic dXNlcjpwYXNz", id="other-scheme"),
        pytest.param("Bearer not-a-jwt", id="malformed"),
        pytest.param("Bearer " + _token(exp=1_000_000), id="expired"),
        pytest.param("Bearer " + _token(exp=None), id="no-exp"),
        pytest.param("Bearer " + _token(), id="unknown-user"),
    ],
)
def test_viewer_with_bad_token_is_null_and_unauthenticated(
    client: TestClient, authorization: str
) -> None:
    body = gql(client, VIEWER, headers={"Authorization": authorization})
    assert body["data"] == {"viewer": None}
    assert error_codes(body) == ["UNAUTHENTICATED"]


def test_viewer_of_deleted_user_is_unauthenticated(client: TestClient, database_url: str) -> None:
    result = signup(client)
    engine = create_engine(normalize_database_url(database_url))
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM users WHERE id = :id"), {"id": result["user"]["id"]})
    engine.dispose()
    body = gql(client, VIEWER, token=result["accessToken"])
    assert body["data"] == {"viewer": None}
    assert error_codes(body) == ["UNAUTHENTICATED"]


def test_viewer_scheme_is_case_insensitive(client: TestClient) -> None:
    result = signup(client)
    body = gql(client, VIEWER, headers={"Authorization": f"bearer {result['accessToken']}"})
    assert body["data"]["viewer"]["id"] == result["user"]["id"]


def test_viewer_token_from_other_issuer_is_rejected(make_client: MakeClient) -> None:
    issuer_a = make_client(jwt_issuer="a")
    token = signup(issuer_a)["accessToken"]
    issuer_b = make_client(jwt_issuer="b")
    assert error_codes(gql(issuer_b, VIEWER, token=token)) == ["UNAUTHENTICATED"]


def test_viewer_sessions_lists_only_own(client: TestClient) -> None:
    mine = signup(client)
    signup(client)  # someone else
    body = gql(
        client,
        "{ viewer { sessions { id current userAgent ipAddress } } }",
        token=mine["accessToken"],
    )
    sessions = body["data"]["viewer"]["sessions"]
    assert len(sessions) == 1
    assert sessions[0]["current"] is True
    assert sessions[0]["userAgent"] == "testclient"


# Every field of User that reads the database, twice over, beside an admin field whose
# access rule reads it too: graphql-core resolves them all at once.
CONCURRENT_FIELDS = """{
  admin { users(first: 1) { edges { cursor } } }
  viewer {
    a: sessions { id } b: passkeys { id } c: identities { id } d: mfaFactors { id }
    e: securityEvents(first: 5) { edges { node { kind } } } f: mfaEnabled
    g: sessions { id } h: passkeys { id } i: identities { id } j: recoveryCodesLeft
  }
}"""


def test_viewer_fields_resolved_together_all_answer(client: TestClient) -> None:
    # Sibling fields share the request's database session; before they took turns on it,
    # the session refused all but one of them ("Unexpected error.").
    token = signup(client)["accessToken"]
    for _ in range(20):
        body = gql(client, CONCURRENT_FIELDS, token=token)
        assert error_codes(body) == ["FORBIDDEN"], body
        viewer = body["data"]["viewer"]
        assert len(viewer["a"]) == len(viewer["g"]) == 1
        assert viewer["b"] == viewer["c"] == viewer["d"] == viewer["h"] == viewer["i"] == []
        assert [edge["node"]["kind"] for edge in viewer["e"]["edges"]] == ["SIGNED_IN"]
        assert viewer["f"] is False
        assert viewer["j"] == 0
