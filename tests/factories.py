"""Small helpers that build accounts and send GraphQL over HTTP, for any test to combine."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi.testclient import TestClient

_counter = itertools.count(1)
DEFAULT_PASSWORD = "correct horse battery staple"


class Clock:
    """A clock the test moves: ``clock.now += timedelta(...)``."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


SIGNUP = """
mutation Signup($email: String!, $password: String!) {
  signup(input: {email: $email, password: $password}) {
    __typename
    ... on AuthPayload {
      accessToken tokenType expiresAt refreshToken refreshTokenExpiresAt csrfToken
      user { id email createdAt }
    }
    ... on Error { message }
    ... on ValidationError { field }
    ... on RateLimited { retryAfter }
  }
}
"""

LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    __typename
    ... on AuthPayload {
      accessToken expiresAt refreshToken refreshTokenExpiresAt csrfToken user { id email }
    }
    ... on Error { message }
    ... on RateLimited { retryAfter }
  }
}
"""

REFRESH = """
mutation Refresh($token: String) {
  refreshToken(refreshToken: $token) {
    __typename
    ... on AuthPayload { accessToken refreshToken csrfToken user { id } }
    ... on Error { message }
    ... on RateLimited { retryAfter }
  }
}
"""

VIEWER = "{ viewer { id email } }"


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}{next(_counter)}@example.com"


def gql(
    client: TestClient | httpx.Client,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    expect_status: int | None = 200,
) -> dict[str, Any]:
    """POST a GraphQL operation and return the decoded body."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    response = client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers
    )
    if expect_status is not None:
        assert response.status_code == expect_status, response.text
    body: dict[str, Any] = response.json()
    return body


def signup(
    client: TestClient | httpx.Client,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    **kwargs: Any,
) -> dict[str, Any]:
    """Sign up and return the ``signup`` result (asserting it is an AuthPayload)."""
    body = gql(client, SIGNUP, {"email": email or unique_email(), "password": password}, **kwargs)
    result: dict[str, Any] = body["data"]["signup"]
    assert result["__typename"] == "AuthPayload", result
    return result


def login(
    client: TestClient | httpx.Client, email: str, password: str = DEFAULT_PASSWORD, **kwargs: Any
) -> dict[str, Any]:
    body = gql(client, LOGIN, {"email": email, "password": password}, **kwargs)
    result: dict[str, Any] = body["data"]["login"]
    return result


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


SESSIONS = "{ viewer { sessions { id current } } }"

LOGOUT = """
mutation Logout($scope: LogoutScope!) {
  logout(scope: $scope) { __typename ... on LogoutPayload { revokedSessions } }
}
"""

REVOKE = """
mutation Revoke($id: ID!) {
  revokeSession(id: $id) {
    __typename
    ... on RevokeSessionPayload { revokedSessionId }
    ... on Error { message }
  }
}
"""

CHANGE_PASSWORD = """
mutation Change($current: String!, $new: String!) {
  changePassword(input: {currentPassword: $current, newPassword: $new}) {
    __typename
    ... on AuthPayload { accessToken refreshToken }
    ... on Error { message }
    ... on ValidationError { field }
  }
}
"""


def refresh(client: TestClient | httpx.Client, token: str | None, **kwargs: Any) -> dict[str, Any]:
    body = gql(client, REFRESH, {"token": token}, **kwargs)
    result: dict[str, Any] = body["data"]["refreshToken"]
    return result


def viewer_id(client: TestClient | httpx.Client, token: str) -> str | None:
    body = gql(client, VIEWER, token=token)
    viewer = body["data"]["viewer"]
    return None if viewer is None else str(viewer["id"])


VIEWER_PROFILE = "{ viewer { id email emailVerified displayName } }"

VERIFY_EMAIL = """
mutation Verify($token: String!) {
  verifyEmail(token: $token) {
    __typename ... on EmailVerified { email } ... on Error { message }
  }
}
"""

RESEND_VERIFICATION = """
mutation { resendVerificationEmail {
  __typename ... on VerificationEmailSent { email } ... on Error { message }
} }
"""

REQUEST_PASSWORD_RESET = """
mutation Request($email: String!) {
  requestPasswordReset(email: $email) {
    __typename
    ... on PasswordResetRequested { message }
    ... on Error { message }
    ... on ValidationError { field }
  }
}
"""

RESET_PASSWORD = """
mutation Reset($token: String!, $password: String!) {
  resetPassword(input: {token: $token, newPassword: $password}) {
    __typename
    ... on PasswordResetDone { message }
    ... on Error { message }
    ... on ValidationError { field }
  }
}
"""

REQUEST_EMAIL_CHANGE = """
mutation Change($email: String!, $password: String!) {
  requestEmailChange(input: {newEmail: $email, password: $password}) {
    __typename
    ... on EmailChangeRequested { newEmail }
    ... on Error { message }
    ... on ValidationError { field }
  }
}
"""

CONFIRM_EMAIL_CHANGE = """
mutation Confirm($token: String!) {
  confirmEmailChange(token: $token) {
    __typename ... on EmailChanged { email } ... on Error { message }
  }
}
"""

DELETE_ACCOUNT = """
mutation Delete($password: String!) {
  deleteAccount(password: $password) {
    __typename ... on AccountDeleted { deletedUserId } ... on Error { message }
  }
}
"""

UPDATE_PROFILE = """
mutation Profile($name: String) {
  updateProfile(input: {displayName: $name}) {
    __typename
    ... on ProfileUpdated { user { id displayName } }
    ... on Error { message }
    ... on ValidationError { field }
  }
}
"""


def mutate(
    client: TestClient | httpx.Client,
    query: str,
    variables: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run a single-field mutation and return that field's result."""
    body = gql(client, query, variables, **kwargs)
    assert not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    (result,) = data.values()
    assert isinstance(result, dict)
    return result
