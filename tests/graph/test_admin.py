"""Administration through HTTP, on SQLite and PostgreSQL: who may, and what each action does.

Administrators are made as an operator makes the first one (tests/admin.py: the use case of
``authgraph users grant-admin``) and sign in with TOTP (aal2), as ``ADMIN_REQUIRE_MFA`` asks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from db.engine import normalize_database_url
from tests.admin import (
    DELETE,
    DISABLE,
    ENABLE,
    REVOKE_SESSIONS,
    SET_ROLES,
    USER,
    USERS,
    Account,
    account,
    act,
    admin_user_id,
    admin_with_mfa,
    grant_admin,
    users,
)
from tests.conftest import MakeClient
from tests.factories import (
    DEFAULT_PASSWORD,
    REQUEST_PASSWORD_RESET,
    RESET_PASSWORD,
    VIEWER,
    Clock,
    error_codes,
    gql,
    login,
    mutate,
    refresh,
    signup,
    unique_email,
)
from tests.mailbox import Mailbox, token_from
from tests.mfa import (
    REAUTHENTICATE,
    Enrolled,
    code_at,
    controlled_clock,
    enroll,
    login_mfa,
    next_step,
    verify,
)

STEP_UP_AGE = timedelta(seconds=301)
ADMIN_QUERY = "{ admin { users(first: 1) { edges { node { id } } } } }"


@pytest.fixture
def clock(client: TestClient) -> Clock:
    return controlled_clock(client)


@pytest.fixture
def admin(client: TestClient, clock: Clock) -> Enrolled:
    return admin_with_mfa(client, clock)


def _viewer_state(client: TestClient, token: str) -> tuple[object, list[str]]:
    body = gql(client, VIEWER, token=token)
    return body["data"]["viewer"], error_codes(body)


def _outbox_count(database_url: str, recipient: str) -> int:
    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        count = connection.execute(
            text("SELECT COUNT(*) FROM outbox WHERE recipient = :r"), {"r": recipient}
        ).scalar_one()
    engine.dispose()
    return int(count)


# -- who may ---------------------------------------------------------------------------------


def test_admin_query_without_token_is_unauthenticated(client: TestClient) -> None:
    body = gql(client, ADMIN_QUERY)
    assert body["data"] == {"admin": None}
    assert error_codes(body) == ["UNAUTHENTICATED"]


def test_admin_fields_for_a_user_are_forbidden_and_change_nothing(
    client: TestClient, admin: Enrolled
) -> None:
    user = account(client)
    target = account(client, "target")
    body = gql(client, ADMIN_QUERY, token=user.access_token)
    assert body["data"] == {"admin": None}
    assert error_codes(body) == ["FORBIDDEN"]
    # No hint: the same bare message for the query and every mutation, an unknown id alike.
    assert body["errors"][0]["message"] == "Forbidden."
    cases: list[tuple[str, dict[str, Any]]] = [
        (DISABLE, {"id": target.id, "reason": "spam"}),
        (DISABLE, {"id": "no-such-user", "reason": "spam"}),
        (DELETE, {"id": target.id}),
        (SET_ROLES, {"id": user.id, "roles": ["ADMIN"]}),
    ]
    for document, variables in cases:
        refused = gql(client, document, variables, token=user.access_token)
        assert refused["data"] is None
        assert error_codes(refused) == ["FORBIDDEN"]
        assert refused["errors"][0]["message"] == "Forbidden."
    # Nothing ran: the target still signs in, the user is still no admin.
    assert login(client, target.email)["__typename"] == "AuthPayload"
    assert error_codes(gql(client, ADMIN_QUERY, token=user.access_token)) == ["FORBIDDEN"]


def test_admin_without_mfa_is_forbidden_and_told_why(client: TestClient) -> None:
    user = account(client, "admin")
    grant_admin(client, user.id)
    body = gql(client, ADMIN_QUERY, token=user.access_token)
    assert body["data"] == {"admin": None}
    assert error_codes(body) == ["FORBIDDEN"]
    assert "second factor" in body["errors"][0]["message"]


def test_admin_without_mfa_is_allowed_when_admin_require_mfa_is_off(
    make_client: MakeClient,
) -> None:
    client = make_client(admin_require_mfa=False)
    user = account(client, "admin")
    grant_admin(client, user.id)
    connection = users(client, user.access_token, first=5)
    assert [e["node"]["id"] for e in connection["edges"]] == [user.id]
    assert connection["edges"][0]["node"]["roles"] == ["ADMIN"]


def test_admin_with_mfa_reads_users(client: TestClient, admin: Enrolled) -> None:
    target = account(client, "target")
    login(client, target.email)
    found = gql(client, USER, {"id": target.id}, token=admin.access_token)
    assert not found.get("errors"), found
    user = found["data"]["admin"]["user"]
    assert user["email"] == target.email
    assert user["roles"] == []
    assert user["mfaEnabled"] is False
    assert user["disabledAt"] is None
    assert len(user["sessions"]) == 2  # signup's and login's
    assert not any(s["current"] for s in user["sessions"])
    assert user["lastSignInAt"] is not None
    missing = gql(client, USER, {"id": "no-such-user"}, token=admin.access_token)
    assert missing["data"] == {"admin": {"user": None}}
    assert not missing.get("errors")
    me = gql(client, USER, {"id": admin_user_id(client, admin)}, token=admin.access_token)
    seen = me["data"]["admin"]["user"]
    assert seen["roles"] == ["ADMIN"]
    assert seen["mfaEnabled"] is True
    assert [s["aal"] for s in seen["sessions"] if s["current"]] == [2]


def test_removing_the_role_ends_admin_access(
    client: TestClient, clock: Clock, admin: Enrolled
) -> None:
    other = admin_with_mfa(client, clock)
    other_id = admin_user_id(client, other)
    done = act(client, SET_ROLES, admin.access_token, id=other_id, roles=[])
    assert done["__typename"] == "AdminUserPayload"
    assert done["user"]["roles"] == []
    assert error_codes(gql(client, ADMIN_QUERY, token=other.access_token)) == ["FORBIDDEN"]


# -- disable and enable ----------------------------------------------------------------------


def test_disable_ends_every_live_session_at_once(client: TestClient, admin: Enrolled) -> None:
    target = account(client, "target")
    second = login(client, target.email)
    assert _viewer_state(client, target.access_token)[0] is not None
    done = act(client, DISABLE, admin.access_token, id=target.id, reason="  chargeback  fraud ")
    assert done["__typename"] == "AdminUserPayload"
    assert done["user"]["disabledAt"] is not None
    assert done["user"]["disabledReason"] == "chargeback fraud"
    assert done["user"]["sessions"] == []
    # Both sessions' next requests are refused, and their refresh tokens say why.
    for token in (target.access_token, second["accessToken"]):
        assert _viewer_state(client, token) == (None, ["UNAUTHENTICATED"])
    assert refresh(client, target.refresh_token)["__typename"] == "AccountDisabled"
    assert refresh(client, second["refreshToken"])["__typename"] == "AccountDisabled"
    # A made-up refresh token is as invalid as ever.
    assert refresh(client, "not-a-token")["__typename"] == "InvalidRefreshToken"


def test_disable_needs_a_reason(client: TestClient, admin: Enrolled) -> None:
    target = account(client, "target")
    refused = act(client, DISABLE, admin.access_token, id=target.id, reason="   ")
    assert refused == {**refused, "__typename": "ValidationError", "field": "reason"}
    assert login(client, target.email)["__typename"] == "AuthPayload"


def test_sign_in_on_a_disabled_account_says_so_only_with_the_right_password(
    client: TestClient, admin: Enrolled
) -> None:
    target = account(client, "target")
    act(client, DISABLE, admin.access_token, id=target.id, reason="abuse")
    wrong = login(client, target.email, "not the password at all")
    unknown = login(client, unique_email("nobody"), "not the password at all")
    assert wrong["__typename"] == unknown["__typename"] == "InvalidCredentials"
    assert wrong["message"] == unknown["message"]
    right = login(client, target.email)
    assert right["__typename"] == "AccountDisabled"
    assert "disabled" in right["message"]
    # The OAuth2 password grant alike: 401 for a wrong password, invalid_grant for the right one.
    form = {"username": target.email, "password": "not the password at all"}
    assert client.post("/token", data=form).status_code == 401
    granted = client.post("/token", data={**form, "password": DEFAULT_PASSWORD})
    assert granted.status_code == 400, granted.text
    assert granted.json()["error"] == "invalid_grant"
    assert "access_token" not in granted.json()


def test_second_factor_of_a_disabled_account(
    client: TestClient, clock: Clock, admin: Enrolled
) -> None:
    email = unique_email("mfa")
    user = enroll(client, email, signup(client, email=email)["accessToken"], clock.now)
    user_id = gql(client, "{ viewer { id } }", token=user.access_token)["data"]["viewer"]["id"]
    # A password step taken before the disable: its code step says why, once the code is right.
    pending = login_mfa(client, email)
    assert pending["__typename"] == "MfaRequired"
    act(client, DISABLE, admin.access_token, id=user_id, reason="abuse")
    wrong = verify(client, pending["mfaToken"], "000000")
    assert wrong["__typename"] == "InvalidMfaCode"
    right = verify(client, pending["mfaToken"], code_at(user.secret, next_step(clock)))
    assert right["__typename"] == "AccountDisabled"
    # After the disable, the right password answers at once: no second step is offered.
    assert login_mfa(client, email)["__typename"] == "AccountDisabled"
    assert login_mfa(client, email, "not the password at all")["__typename"] == (
        "InvalidCredentials"
    )


def test_disabled_account_gets_no_reset_mail(
    client: TestClient, admin: Enrolled, database_url: str
) -> None:
    target = account(client, "target")
    enabled = account(client, "enabled")
    act(client, DISABLE, admin.access_token, id=target.id, reason="abuse")
    before = _outbox_count(database_url, target.email)
    for user in (target, enabled):
        answer = mutate(client, REQUEST_PASSWORD_RESET, {"email": user.email})
        assert answer["__typename"] == "PasswordResetRequested"
    # The same answer; only the enabled account's reset was queued (the task runs before
    # the test client returns).
    assert _outbox_count(database_url, target.email) == before
    assert _outbox_count(database_url, enabled.email) == 2  # verification, reset


def test_a_reset_link_sent_before_the_disable_stops_working(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    admin = admin_with_mfa(mail_client, controlled_clock(mail_client))
    target = account(mail_client, "target")
    mutate(mail_client, REQUEST_PASSWORD_RESET, {"email": target.email})
    token = token_from(mailbox.wait_for(target.email, subject="reset")[0])
    act(mail_client, DISABLE, admin.access_token, id=target.id, reason="takeover")
    reset = {"token": token, "password": "a brand new passphrase"}
    assert mutate(mail_client, RESET_PASSWORD, reset)["__typename"] == "InvalidToken"
    # Enabling again does not revive it: the disable voided it.
    act(mail_client, ENABLE, admin.access_token, id=target.id)
    assert mutate(mail_client, RESET_PASSWORD, reset)["__typename"] == "InvalidToken"
    assert login(mail_client, target.email)["__typename"] == "AuthPayload"


def test_enable_lets_the_user_sign_in_again(client: TestClient, admin: Enrolled) -> None:
    target = account(client, "target")
    act(client, DISABLE, admin.access_token, id=target.id, reason="mistake")
    done = act(client, ENABLE, admin.access_token, id=target.id)
    assert done["__typename"] == "AdminUserPayload"
    assert done["user"]["disabledAt"] is None
    assert done["user"]["disabledReason"] is None
    # Sessions the disable ended stay ended; a new sign-in works.
    assert _viewer_state(client, target.access_token) == (None, ["UNAUTHENTICATED"])
    assert refresh(client, target.refresh_token)["__typename"] == "InvalidRefreshToken"
    again = login(client, target.email)
    assert again["__typename"] == "AuthPayload"
    assert _viewer_state(client, again["accessToken"]) == (
        {"id": target.id, "email": target.email},
        [],
    )


def test_revoke_sessions_signs_the_user_out_everywhere(client: TestClient, admin: Enrolled) -> None:
    target = account(client, "target")
    second = login(client, target.email)
    done = act(client, REVOKE_SESSIONS, admin.access_token, id=target.id)
    assert done["__typename"] == "AdminUserPayload"
    assert done["user"]["sessions"] == []
    for token in (target.access_token, second["accessToken"]):
        assert _viewer_state(client, token) == (None, ["UNAUTHENTICATED"])
    assert refresh(client, second["refreshToken"])["__typename"] == "InvalidRefreshToken"
    # Not disabled: signing in again works.
    assert login(client, target.email)["__typename"] == "AuthPayload"


def test_unknown_user_is_user_not_found(client: TestClient, admin: Enrolled) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        (DISABLE, {"id": "no-such-user", "reason": "x"}),
        (ENABLE, {"id": "nul\x00id"}),
        (REVOKE_SESSIONS, {"id": "no-such-user"}),
        (SET_ROLES, {"id": "no-such-user", "roles": []}),
        (DELETE, {"id": "no-such-user"}),
    ]
    for document, variables in cases:
        assert act(client, document, admin.access_token, **variables)["__typename"] == (
            "UserNotFound"
        )


# -- delete ----------------------------------------------------------------------------------


def test_delete_removes_the_account_and_its_sessions(client: TestClient, admin: Enrolled) -> None:
    target = account(client, "target")
    done = act(client, DELETE, admin.access_token, id=target.id)
    assert done == {"__typename": "AccountDeleted", "deletedUserId": target.id}
    assert _viewer_state(client, target.access_token) == (None, ["UNAUTHENTICATED"])
    assert refresh(client, target.refresh_token)["__typename"] == "InvalidRefreshToken"
    assert login(client, target.email)["__typename"] == "InvalidCredentials"
    gone = gql(client, USER, {"id": target.id}, token=admin.access_token)
    assert gone["data"] == {"admin": {"user": None}}
    # The address is free again.
    assert signup(client, email=target.email)["user"]["id"] != target.id


# -- step-up ---------------------------------------------------------------------------------


def test_admin_actions_need_a_recent_authentication(
    client: TestClient, clock: Clock, admin: Enrolled
) -> None:
    target = account(client, "target")
    clock.now += STEP_UP_AGE
    refused = act(client, DISABLE, admin.access_token, id=target.id, reason="abuse")
    assert refused["__typename"] == "ReauthenticationRequired"
    assert refused["methods"] == ["TOTP", "RECOVERY_CODE"]
    assert act(client, DELETE, admin.access_token, id=target.id)["__typename"] == (
        "ReauthenticationRequired"
    )
    # Nothing changed; reads need no step-up.
    assert login(client, target.email)["__typename"] == "AuthPayload"
    assert users(client, admin.access_token, query=target.email)["edges"]
    renewed = mutate(
        client,
        REAUTHENTICATE,
        {"method": "TOTP", "code": code_at(admin.secret, next_step(clock))},
        token=admin.access_token,
    )
    assert renewed["__typename"] == "Reauthenticated"
    token = renewed["auth"]["accessToken"]
    done = act(client, DISABLE, token, id=target.id, reason="abuse")
    assert done["__typename"] == "AdminUserPayload"


# -- last-admin protection -------------------------------------------------------------------


def test_the_last_active_admin_cannot_be_removed(
    client: TestClient, clock: Clock, admin: Enrolled
) -> None:
    me = admin_user_id(client, admin)
    cases: list[tuple[str, dict[str, Any]]] = [
        (SET_ROLES, {"id": me, "roles": []}),
        (DISABLE, {"id": me, "reason": "leaving"}),
        (DELETE, {"id": me}),
    ]
    for document, variables in cases:
        refused = act(client, document, admin.access_token, **variables)
        assert refused["__typename"] == "LastAdmin", refused
    assert users(client, admin.access_token, query=me)["edges"][0]["node"]["roles"] == ["ADMIN"]
    # With a second active admin, the first may step down.
    other = admin_with_mfa(client, clock)
    other_id = admin_user_id(client, other)
    done = act(client, SET_ROLES, admin.access_token, id=me, roles=[])
    assert done["__typename"] == "AdminUserPayload"
    # A disabled admin does not count: the other is now the last active one.
    grant_admin(client, me)
    act(client, DISABLE, other.access_token, id=me, reason="on leave")
    refused = act(client, SET_ROLES, other.access_token, id=other_id, roles=[])
    assert refused["__typename"] == "LastAdmin"


# -- listing and search ----------------------------------------------------------------------


def _ids(connection: dict[str, Any]) -> list[str]:
    return [e["node"]["id"] for e in connection["edges"]]


def test_pages_follow_each_other_newest_first(
    client: TestClient, clock: Clock, admin: Enrolled
) -> None:
    made: list[Account] = []
    for _ in range(6):
        clock.now += timedelta(seconds=1)
        made.append(account(client, "page"))
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        connection = users(client, admin.access_token, first=4, after=after)
        pages += 1
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += _ids(connection)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
        assert after == connection["edges"][-1]["cursor"]
    # Six users and the admin, each once, the newest first.
    assert pages == 2
    assert seen[:6] == [u.id for u in reversed(made)]
    assert len(seen) == len(set(seen)) == 7


def test_page_size_is_capped_at_200(client: TestClient, admin: Enrolled) -> None:
    assert users(client, admin.access_token, first=200)["edges"]
    for first in (201, 0, -1):
        body = gql(client, USERS, {"first": first}, token=admin.access_token)
        # users is non-null: its error nulls `admin`.
        assert body["data"] == {"admin": None}
        assert error_codes(body) == ["BAD_USER_INPUT"]
    bad = gql(client, USERS, {"after": "not-a-cursor"}, token=admin.access_token)
    assert error_codes(bad) == ["BAD_USER_INPUT"]


def test_search_matches_an_email_prefix_or_an_id(client: TestClient, admin: Enrolled) -> None:
    zed = [account(client, "zed") for _ in range(2)]
    other = account(client, "other")
    found = users(client, admin.access_token, query="ZED")
    assert sorted(_ids(found)) == sorted(u.id for u in zed)
    assert _ids(users(client, admin.access_token, query=other.id)) == [other.id]
    # LIKE's wildcards are taken literally; part of an id matches nothing.
    assert _ids(users(client, admin.access_token, query="%")) == []
    assert _ids(users(client, admin.access_token, query="_ed")) == []
    assert _ids(users(client, admin.access_token, query=other.id[:8])) == []


def test_listing_filters_on_disabled(client: TestClient, admin: Enrolled) -> None:
    on, off = account(client, "on"), account(client, "off")
    act(client, DISABLE, admin.access_token, id=off.id, reason="spam")
    assert _ids(users(client, admin.access_token, disabled=True)) == [off.id]
    enabled = _ids(users(client, admin.access_token, disabled=False))
    assert on.id in enabled
    assert off.id not in enabled
