"""MFA helpers for tests: enrol a TOTP factor, log in through the second step, compute codes.

Codes are computed with pyotp from the secret the enrollment answered, at a time the test
chooses: each accepted code claims its 30-second step, so a test that uses two codes moves
its clock (``tests.factories.Clock``) by a step in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pyotp
from fastapi.testclient import TestClient
from jose import jwt

from tests.factories import DEFAULT_PASSWORD, Clock, gql, mutate

START_ENROLLMENT = """
mutation { startTotpEnrollment {
  __typename
  ... on TotpEnrollment { factorId secret otpauthUri qrCodeSvg }
  ... on ReauthenticationRequired { message maxAgeSeconds methods }
  ... on Error { message }
} }
"""

CONFIRM_ENROLLMENT = """
mutation Confirm($factorId: ID!, $code: String!) {
  confirmTotpEnrollment(input: {factorId: $factorId, code: $code}) {
    __typename
    ... on MfaEnabled { recoveryCodes auth { accessToken refreshToken user { id } } }
    ... on Error { message }
  }
}
"""

LOGIN_MFA = """
mutation Login($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    __typename
    ... on AuthPayload { accessToken refreshToken }
    ... on MfaRequired { mfaToken expiresAt methods }
    ... on Error { message }
  }
}
"""

VERIFY_MFA = """
mutation Verify($token: String!, $method: MfaMethod!, $code: String!) {
  verifyMfa(input: {mfaToken: $token, method: $method, code: $code}) {
    __typename
    ... on AuthPayload { accessToken refreshToken user { id } }
    ... on Error { message }
    ... on RateLimited { retryAfter }
  }
}
"""

REGENERATE = """
mutation { regenerateRecoveryCodes {
  __typename
  ... on RecoveryCodes { codes }
  ... on ReauthenticationRequired { message maxAgeSeconds methods }
} }
"""

REMOVE_FACTOR = """
mutation Remove($id: ID!) { removeMfaFactor(id: $id) {
  __typename
  ... on MfaFactorRemoved { removedFactorId mfaEnabled }
  ... on ReauthenticationRequired { maxAgeSeconds methods }
  ... on Error { message }
} }
"""

REAUTHENTICATE = """
mutation Reauth($password: String, $method: MfaMethod, $code: String) {
  reauthenticate(input: {password: $password, method: $method, code: $code}) {
    __typename
    ... on Reauthenticated { until auth { accessToken refreshToken } }
    ... on Error { message }
  }
}
"""

MFA_VIEWER = """
{ viewer { mfaEnabled recoveryCodesLeft mfaFactors { id kind createdAt lastUsedAt }
  sessions { id current aal authenticatedAt } } }
"""

Client = TestClient | httpx.Client


@dataclass
class Enrolled:
    """A user with TOTP on: its secret, factor, recovery codes and an aal2 session."""

    email: str
    secret: str
    factor_id: str
    recovery_codes: list[str]
    access_token: str
    refresh_token: str


def code_at(secret: str, when: datetime) -> str:
    return pyotp.TOTP(secret).at(when)


def controlled_clock(client: TestClient) -> Clock:
    """Give the app a clock the test moves (``clock.now += ...``) and return it."""
    clock = Clock()
    client.app.state.authgraph.toolkit.clock = clock  # type: ignore[attr-defined]
    return clock


def enroll(client: Client, email: str, token: str, when: datetime) -> Enrolled:
    """Enrol TOTP for the signed-in user, confirming with the code of ``when``."""
    started = mutate(client, START_ENROLLMENT, token=token)
    assert started["__typename"] == "TotpEnrollment", started
    confirmed = mutate(
        client,
        CONFIRM_ENROLLMENT,
        {"factorId": started["factorId"], "code": code_at(started["secret"], when)},
        token=token,
    )
    assert confirmed["__typename"] == "MfaEnabled", confirmed
    return Enrolled(
        email=email,
        secret=started["secret"],
        factor_id=started["factorId"],
        recovery_codes=confirmed["recoveryCodes"],
        access_token=confirmed["auth"]["accessToken"],
        refresh_token=confirmed["auth"]["refreshToken"],
    )


def login_mfa(client: Client, email: str, password: str = DEFAULT_PASSWORD) -> dict[str, Any]:
    return mutate(client, LOGIN_MFA, {"email": email, "password": password})


def verify(client: Client, mfa_token: str, code: str, method: str = "TOTP") -> dict[str, Any]:
    return mutate(client, VERIFY_MFA, {"token": mfa_token, "method": method, "code": code})


def claims(access_token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.get_unverified_claims(access_token)
    return decoded


def next_step(clock: Clock) -> datetime:
    """Move ``clock`` to the next TOTP step and return the new time."""
    clock.now += timedelta(seconds=30)
    return clock.now


def viewer_mfa(client: Client, token: str) -> dict[str, Any]:
    body = gql(client, MFA_VIEWER, token=token)
    assert not body.get("errors"), body
    viewer: dict[str, Any] = body["data"]["viewer"]
    return viewer
