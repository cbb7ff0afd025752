"""Every admin read and action is in the audit trail (who, what, whom, reason, when, IP), and
no API removes it: through HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from graphql import build_schema as parse_sdl
from sqlalchemy import create_engine, text

from db.engine import normalize_database_url
from graph.schema import build_schema
from tests.admin import (
    ADMIN_USER_FIELDS,
    DELETE,
    DISABLE,
    ENABLE,
    REVOKE_SESSIONS,
    SET_ROLES,
    account,
    act,
    admin_user_id,
    admin_with_mfa,
    users,
)
from tests.factories import DELETE_ACCOUNT, Clock, gql, login, mutate
from tests.mfa import Enrolled, controlled_clock

ACTIONS = f"""
query Actions($id: ID!) {{ admin {{ user(id: $id) {{
  {ADMIN_USER_FIELDS}
  adminActions {{ id action occurredAt actorId operator ipAddress reason }}
}} }} }}
"""
OWN_TRAIL = """
{ viewer { securityEvents(first: 50) { edges { node { kind detail ipAddress device } } } } }
"""


@pytest.fixture
def clock(client: TestClient) -> Clock:
    return controlled_clock(client)


@pytest.fixture
def admin(client: TestClient, clock: Clock) -> Enrolled:
    return admin_with_mfa(client, clock)


def _actions(client: TestClient, token: str, user_id: str) -> list[dict[str, Any]]:
    body = gql(client, ACTIONS, {"id": user_id}, token=token)
    assert not body.get("errors"), body
    found: list[dict[str, Any]] = body["data"]["admin"]["user"]["adminActions"]
    return found


def _stored(database_url: str, user_id: str) -> list[tuple[str, str | None, str | None]]:
    """The trail's ADMIN_ACTION rows about ``user_id`` as stored: detail, actor, reason."""
    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT e.detail, e.actor_id, a.reason FROM security_events e "
                "LEFT JOIN admin_audit a ON a.event_id = e.id "
                "WHERE e.user_id = :u AND e.kind = 'admin_action' ORDER BY e.occurred_at, e.id"
            ),
            {"u": user_id},
        ).all()
    engine.dispose()
    return [(r[0], r[1], r[2]) for r in rows]


def test_each_read_and_action_is_recorded_with_who_what_reason_when_and_ip(
    client: TestClient, clock: Clock, admin: Enrolled
) -> None:
    admin_id = admin_user_id(client, admin)
    target = account(client, "audited")
    steps: list[tuple[str, Callable[[], object]]] = [
        ("list_users", lambda: users(client, admin.access_token, query=target.email)),
        (
            "disable_user",
            lambda: act(client, DISABLE, admin.access_token, id=target.id, reason="chargeback"),
        ),
        ("enable_user", lambda: act(client, ENABLE, admin.access_token, id=target.id)),
        ("revoke_sessions", lambda: act(client, REVOKE_SESSIONS, admin.access_token, id=target.id)),
        (
            "set_roles:admin",
            lambda: act(client, SET_ROLES, admin.access_token, id=target.id, roles=["ADMIN"]),
        ),
        (
            "set_roles:none",
            lambda: act(client, SET_ROLES, admin.access_token, id=target.id, roles=[]),
        ),
    ]
    for _, step in steps:
        step()
        clock.now += timedelta(seconds=1)  # distinct, ordered times
    found = _actions(client, admin.access_token, target.id)
    # Newest first: this very read, then each step in reverse.
    assert [a["action"] for a in found] == ["read_user", *[name for name, _ in reversed(steps)]]
    for recorded in found:
        assert recorded["actorId"] == admin_id
        assert recorded["operator"] is None
        assert recorded["ipAddress"] == "testclient"  # the admin's client address
        assert recorded["occurredAt"]
    reasons = {a["action"]: a["reason"] for a in found}
    assert reasons["disable_user"] == "chargeback"
    assert reasons["enable_user"] is None
    # In the user's own trail: what and when, not the admin's IP, device or id.
    again = login(client, target.email)
    own = gql(client, OWN_TRAIL, token=again["accessToken"])["data"]["viewer"]["securityEvents"]
    admin_events = [e["node"] for e in own["edges"] if e["node"]["kind"] == "ADMIN_ACTION"]
    assert [e["detail"] for e in admin_events][:2] == ["read_user", "set_roles:none"]
    assert all(e["ipAddress"] is None and e["device"] is None for e in admin_events)


def test_a_listing_is_recorded_for_each_user_it_shows(
    client: TestClient, admin: Enrolled, database_url: str
) -> None:
    shown = [account(client, "shown") for _ in range(2)]
    hidden = account(client, "hidden")
    listed = users(client, admin.access_token, query="shown")
    assert len(listed["edges"]) == 2
    for user in shown:
        assert [d for d, _, _ in _stored(database_url, user.id)] == ["list_users"]
    assert _stored(database_url, hidden.id) == []


def test_a_refused_attempt_records_nothing(
    client: TestClient, admin: Enrolled, database_url: str
) -> None:
    intruder = account(client, "intruder")
    target = account(client, "target")
    refused = gql(client, DISABLE, {"id": target.id, "reason": "x"}, token=intruder.access_token)
    assert refused["data"] is None
    assert _stored(database_url, target.id) == []


def test_records_outlive_the_account_and_no_api_removes_them(
    client: TestClient, clock: Clock, admin: Enrolled, database_url: str
) -> None:
    admin_id = admin_user_id(client, admin)
    target = account(client, "deleted")
    act(client, DISABLE, admin.access_token, id=target.id, reason="fraud ring")
    clock.now += timedelta(seconds=1)  # the test's clock stands still: order the two records
    assert act(client, DELETE, admin.access_token, id=target.id)["__typename"] == "AccountDeleted"
    assert _stored(database_url, target.id) == [
        ("disable_user", admin_id, "fraud ring"),
        ("delete_user", admin_id, None),
    ]
    # A user who deletes their own account does not take the admins' records with it.
    self_deleting = account(client, "self-deleting")
    users(client, admin.access_token, query=self_deleting.email)
    gone = mutate(
        client,
        DELETE_ACCOUNT,
        {"password": "correct horse battery staple"},
        token=self_deleting.access_token,
    )
    assert gone["__typename"] == "AccountDeleted"
    assert [d for d, _, _ in _stored(database_url, self_deleting.id)] == ["list_users"]
    # No mutation of the API deletes or edits the trail.
    schema = parse_sdl(build_schema().as_str())
    assert schema.mutation_type is not None
    names = {n.lower() for n in schema.mutation_type.fields}
    assert not [n for n in names if "event" in n or "audit" in n or "action" in n]
