from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import GRAPHQL_PATHS, MakeClient
from tests.factories import (
    CHANGE_PASSWORD,
    DEFAULT_PASSWORD,
    LOGOUT,
    REVOKE,
    SESSIONS,
    error_codes,
    gql,
    login,
    refresh,
    signup,
    unique_email,
    viewer_id,
)

# Through the lean path and through Strawberry's full pipeline (tests/conftest.py).
pytestmark = pytest.mark.parametrize("graphql_path", GRAPHQL_PATHS)

NEW_PASSWORD = "a brand new passphrase"


def test_refresh_rotates_tokens(client: TestClient) -> None:
    first = signup(client)
    rotated = refresh(client, first["refreshToken"])
    assert rotated["__typename"] == "AuthPayload"
    assert rotated["refreshToken"] != first["refreshToken"]
    assert rotated["accessToken"] != first["accessToken"]
    assert viewer_id(client, rotated["accessToken"]) == first["user"]["id"]
    again = refresh(client, rotated["refreshToken"])
    assert again["__typename"] == "AuthPayload"


def test_refresh_with_unknown_or_missing_token_is_invalid(client: TestClient) -> None:
    signup(client)
    for token in ["not-a-real-token", "", None]:
        assert refresh(client, token)["__typename"] == "InvalidRefreshToken"


def test_refresh_with_access_token_is_invalid(client: TestClient) -> None:
    first = signup(client)
    assert refresh(client, first["accessToken"])["__typename"] == "InvalidRefreshToken"


def test_refresh_token_as_bearer_is_unauthenticated(client: TestClient) -> None:
    first = signup(client)
    body = gql(client, "{ viewer { id } }", token=first["refreshToken"])
    assert error_codes(body) == ["UNAUTHENTICATED"]


def test_refresh_reuse_after_grace_revokes_session(make_client: MakeClient) -> None:
    client = make_client(refresh_reuse_grace_seconds=1)
    first = signup(client)
    rotated = refresh(client, first["refreshToken"])
    time.sleep(1.2)
    reused = refresh(client, first["refreshToken"])
    assert reused["__typename"] == "InvalidRefreshToken"
    # The whole session is gone: every token descended from it stops working.
    assert refresh(client, rotated["refreshToken"])["__typename"] == "InvalidRefreshToken"
    assert error_codes(gql(client, SESSIONS, token=rotated["accessToken"])) == ["UNAUTHENTICATED"]
    assert error_codes(gql(client, SESSIONS, token=first["accessToken"])) == ["UNAUTHENTICATED"]


def test_refresh_reuse_within_grace_keeps_one_session(make_client: MakeClient) -> None:
    client = make_client(refresh_reuse_grace_seconds=30)
    first = signup(client)
    a = refresh(client, first["refreshToken"])
    b = refresh(client, first["refreshToken"])  # a retried request, inside the window
    assert a["__typename"] == b["__typename"] == "AuthPayload"
    sessions = gql(client, SESSIONS, token=b["accessToken"])["data"]["viewer"]["sessions"]
    assert len(sessions) == 1
    assert refresh(client, a["refreshToken"])["__typename"] == "AuthPayload"
    assert refresh(client, b["refreshToken"])["__typename"] == "AuthPayload"


def test_refresh_concurrently_all_succeed(client: TestClient) -> None:
    first = signup(client)
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(3)

    def attempt() -> None:
        barrier.wait()
        results.append(refresh(client, first["refreshToken"]))

    threads = [threading.Thread(target=attempt) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r["__typename"] for r in results] == ["AuthPayload"] * 3
    token = results[-1]["accessToken"]
    assert len(gql(client, SESSIONS, token=token)["data"]["viewer"]["sessions"]) == 1


def test_logout_current_ends_only_this_session(client: TestClient) -> None:
    email = unique_email()
    one = signup(client, email=email)
    two = login(client, email)
    body = gql(client, LOGOUT, {"scope": "CURRENT"}, token=one["accessToken"])
    assert body["data"]["logout"] == {"__typename": "LogoutPayload", "revokedSessions": 1}
    assert error_codes(gql(client, SESSIONS, token=one["accessToken"])) == ["UNAUTHENTICATED"]
    assert refresh(client, one["refreshToken"])["__typename"] == "InvalidRefreshToken"
    assert viewer_id(client, two["accessToken"]) == one["user"]["id"]


def test_logout_others_keeps_this_session(client: TestClient) -> None:
    email = unique_email()
    one = signup(client, email=email)
    two = login(client, email)
    three = login(client, email)
    body = gql(client, LOGOUT, {"scope": "OTHERS"}, token=one["accessToken"])
    assert body["data"]["logout"]["revokedSessions"] == 2
    assert viewer_id(client, one["accessToken"]) == one["user"]["id"]
    for other in (two, three):
        assert error_codes(gql(client, SESSIONS, token=other["accessToken"])) == ["UNAUTHENTICATED"]
        assert refresh(client, other["refreshToken"])["__typename"] == "InvalidRefreshToken"


def test_logout_all_ends_every_session(client: TestClient) -> None:
    email = unique_email()
    one = signup(client, email=email)
    two = login(client, email)
    body = gql(client, LOGOUT, {"scope": "ALL"}, token=two["accessToken"])
    assert body["data"]["logout"]["revokedSessions"] == 2
    for each in (one, two):
        assert error_codes(gql(client, SESSIONS, token=each["accessToken"])) == ["UNAUTHENTICATED"]


def test_logout_defaults_to_current(client: TestClient) -> None:
    email = unique_email()
    one = signup(client, email=email)
    two = login(client, email)
    body = gql(client, "mutation { logout { __typename } }", token=one["accessToken"])
    assert body["data"]["logout"]["__typename"] == "LogoutPayload"
    assert viewer_id(client, two["accessToken"]) is not None


def test_mutations_need_a_live_session(client: TestClient) -> None:
    session = signup(client)
    gql(client, LOGOUT, {"scope": "CURRENT"}, token=session["accessToken"])
    operations = [
        (LOGOUT, {"scope": "ALL"}),
        (REVOKE, {"id": "00000000-0000-4000-8000-000000000000"}),
        (CHANGE_PASSWORD, {"current": DEFAULT_PASSWORD, "new": NEW_PASSWORD}),
    ]
    for query, variables in operations:
        anonymous = gql(client, query, variables)
        revoked = gql(client, query, variables, token=session["accessToken"])
        assert error_codes(anonymous) == ["UNAUTHENTICATED"]
        assert error_codes(revoked) == ["UNAUTHENTICATED"]


def test_sessions_list_marks_current(client: TestClient) -> None:
    email = unique_email()
    one = signup(client, email=email)
    login(client, email, headers={"User-Agent": "second-device"})
    sessions = gql(
        client, "{ viewer { sessions { current userAgent } } }", token=one["accessToken"]
    )
    listed = sessions["data"]["viewer"]["sessions"]
    assert sorted((s["current"], s["userAgent"]) for s in listed) == [
        (False, "second-device"),
        (True, "testclient"),
    ]


def test_revoke_session_ends_own_session(client: TestClient) -> None:
    email = unique_email()
    one = signup(client, email=email)
    two = login(client, email)
    listed = gql(client, SESSIONS, token=one["accessToken"])["data"]["viewer"]["sessions"]
    other_id = next(s["id"] for s in listed if not s["current"])
    body = gql(client, REVOKE, {"id": other_id}, token=one["accessToken"])
    assert body["data"]["revokeSession"] == {
        "__typename": "RevokeSessionPayload",
        "revokedSessionId": other_id,
    }
    assert error_codes(gql(client, SESSIONS, token=two["accessToken"])) == ["UNAUTHENTICATED"]


def test_revoke_session_of_other_user_changes_nothing(client: TestClient) -> None:
    mine = signup(client)
    theirs = signup(client)
    their_id = gql(client, SESSIONS, token=theirs["accessToken"])["data"]["viewer"]["sessions"][0][
        "id"
    ]
    body = gql(client, REVOKE, {"id": their_id}, token=mine["accessToken"])
    unknown = gql(
        client, REVOKE, {"id": "00000000-0000-4000-8000-000000000000"}, token=mine["accessToken"]
    )
    assert body["data"]["revokeSession"] == unknown["data"]["revokeSession"]
    assert body["data"]["revokeSession"]["__typename"] == "SessionNotFound"
    assert viewer_id(client, theirs["accessToken"]) == theirs["user"]["id"]


def test_change_password_with_wrong_current_is_invalid(client: TestClient) -> None:
    session = signup(client)
    body = gql(
        client,
        CHANGE_PASSWORD,
        {"current": "not my password", "new": NEW_PASSWORD},
        token=session["accessToken"],
    )
    assert body["data"]["changePassword"]["__typename"] == "InvalidCredentials"


def test_change_password_applies_policy(client: TestClient) -> None:
    session = signup(client)
    body = gql(
        client,
        CHANGE_PASSWORD,
        {"current": DEFAULT_PASSWORD, "new": "password1234"},
        token=session["accessToken"],
    )
    result = body["data"]["changePassword"]
    assert (result["__typename"], result["field"]) == ("ValidationError", "newPassword")


def test_change_password_ends_other_sessions_and_rotates(client: TestClient) -> None:
    email = unique_email()
    mine = signup(client, email=email)
    other = login(client, email)
    body = gql(
        client,
        CHANGE_PASSWORD,
        {"current": DEFAULT_PASSWORD, "new": NEW_PASSWORD},
        token=mine["accessToken"],
    )
    fresh = body["data"]["changePassword"]
    assert fresh["__typename"] == "AuthPayload"
    assert viewer_id(client, fresh["accessToken"]) == mine["user"]["id"]
    assert error_codes(gql(client, SESSIONS, token=other["accessToken"])) == ["UNAUTHENTICATED"]
    assert refresh(client, other["refreshToken"])["__typename"] == "InvalidRefreshToken"
    assert refresh(client, mine["refreshToken"])["__typename"] == "InvalidRefreshToken"
    assert refresh(client, fresh["refreshToken"])["__typename"] == "AuthPayload"
    assert login(client, email)["__typename"] == "InvalidCredentials"
    assert login(client, email, NEW_PASSWORD)["__typename"] == "AuthPayload"


def test_serving_prunes_expired_sessions_on_schedule(
    make_client: MakeClient, database_url: str
) -> None:
    from sqlalchemy import create_engine, text

    from db.engine import normalize_database_url

    client = make_client(session_prune_interval_seconds=1)
    email = unique_email()
    signup(client, email=email)
    login(client, email)
    engine = create_engine(normalize_database_url(database_url))
    with engine.begin() as connection:
        connection.execute(text("UPDATE sessions SET expires_at = '2000-01-01 00:00:00'"))
    deadline = time.monotonic() + 10
    remaining = 2
    while remaining and time.monotonic() < deadline:
        time.sleep(0.2)
        with engine.connect() as connection:
            remaining = connection.execute(text("SELECT count(*) FROM sessions")).scalar_one()
    engine.dispose()
    assert remaining == 0
