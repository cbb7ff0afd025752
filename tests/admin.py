"""Administration helpers for tests: the admin operations' documents and an administrator.

An administrator is made the way an operator makes the first one (``authgraph users
grant-admin``: the same use case, run on the app's database), then signs in with TOTP so
that their session is aal2, as ``ADMIN_REQUIRE_MFA`` asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from auth.admin import ADMIN, Actor, AdminService
from auth.ports import ClientInfo
from tests.factories import Clock, gql, mutate, signup, unique_email
from tests.mfa import Enrolled, enroll

ADMIN_USER_FIELDS = """
id email emailVerified createdAt disabledAt disabledReason roles mfaEnabled lastSignInAt
sessions { id current ipAddress aal }
"""

USERS = f"""
query Users($first: Int, $after: String, $query: String, $disabled: Boolean) {{
  admin {{ users(first: $first, after: $after, query: $query, disabled: $disabled) {{
    edges {{ cursor node {{ {ADMIN_USER_FIELDS} }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }} }}
}}
"""

USER = f"""
query User($id: ID!) {{ admin {{ user(id: $id) {{ {ADMIN_USER_FIELDS} }} }} }}
"""

_RESULT = f"""
    __typename
    ... on AdminUserPayload {{ user {{ {ADMIN_USER_FIELDS} }} }}
    ... on ReauthenticationRequired {{ message maxAgeSeconds methods }}
    ... on ValidationError {{ field }}
    ... on Error {{ message }}
"""

DISABLE = f"""
mutation Disable($id: ID!, $reason: String!) {{
  adminDisableUser(input: {{id: $id, reason: $reason}}) {{ {_RESULT} }}
}}
"""
ENABLE = f"mutation Enable($id: ID!) {{ adminEnableUser(id: $id) {{ {_RESULT} }} }}"
REVOKE_SESSIONS = f"mutation SignOut($id: ID!) {{ adminRevokeSessions(id: $id) {{ {_RESULT} }} }}"
SET_ROLES = f"""
mutation Roles($id: ID!, $roles: [Role!]!) {{
  adminSetRoles(input: {{id: $id, roles: $roles}}) {{ {_RESULT} }}
}}
"""
DELETE = """
mutation Delete($id: ID!) { adminDeleteUser(id: $id) {
  __typename
  ... on AccountDeleted { deletedUserId }
  ... on ReauthenticationRequired { maxAgeSeconds methods }
  ... on Error { message }
} }
"""

CLI_ACTOR = Actor(user_id=None, client=ClientInfo(), label="cli:tests")


@dataclass
class Account:
    """A signed-up user: its id, address and the session signup opened."""

    id: str
    email: str
    access_token: str
    refresh_token: str


def account(client: TestClient, prefix: str = "user") -> Account:
    result = signup(client, email=unique_email(prefix))
    return Account(
        id=result["user"]["id"],
        email=result["user"]["email"],
        access_token=result["accessToken"],
        refresh_token=result["refreshToken"],
    )


def grant_admin(client: TestClient, user_id: str) -> None:
    """What ``authgraph users grant-admin`` does, on the app's own database."""
    state = client.app.state.authgraph  # type: ignore[attr-defined]
    with state.database() as database:
        state.service(AdminService, database).grant_role(CLI_ACTOR, user_id, ADMIN)


def admin_with_mfa(client: TestClient, clock: Clock) -> Enrolled:
    """A new administrator with TOTP on, holding a fresh aal2 session."""
    user = account(client, "admin")
    grant_admin(client, user.id)
    return enroll(client, user.email, user.access_token, clock.now)


def admin_user_id(client: TestClient, admin: Enrolled) -> str:
    body = gql(client, "{ viewer { id } }", token=admin.access_token)
    return str(body["data"]["viewer"]["id"])


def act(client: TestClient, document: str, token: str, **variables: Any) -> dict[str, Any]:
    """Run one admin mutation and return its result (asserting no GraphQL error)."""
    return mutate(client, document, variables, token=token)


def users(client: TestClient, token: str, **variables: Any) -> dict[str, Any]:
    """``admin.users`` with these arguments (asserting no error)."""
    body = gql(client, USERS, variables, token=token)
    assert not body.get("errors"), body
    connection: dict[str, Any] = body["data"]["admin"]["users"]
    return connection
