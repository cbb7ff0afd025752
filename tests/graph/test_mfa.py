"""Multi-factor authentication over HTTP, on SQLite and PostgreSQL, with a clock the test moves.

Codes are computed with pyotp from the secret the enrollment answered (tests/mfa.py).
"""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from db.engine import normalize_database_url
from tests.conftest import GRAPHQL_PATHS, MakeClient
from tests.factories import (
    CHANGE_PASSWORD,
    DEFAULT_PASSWORD,
    DELETE_ACCOUNT,
    REQUEST_EMAIL_CHANGE,
    Clock,
    error_codes,
    gql,
    login,
    mutate,
    refresh,
    signup,
    unique_email,
)
from tests.mfa import (
    REAUTHENTICATE,
    REGENERATE,
    REMOVE_FACTOR,
    START_ENROLLMENT,
    Enrolled,
    claims,
    code_at,
    controlled_clock,
    enroll,
    login_mfa,
    next_step,
    verify,
    viewer_mfa,
)

# Through the lean path and through Strawberry's full pipeline (tests/conftest.py).
pytestmark = pytest.mark.parametrize("graphql_path", GRAPHQL_PATHS)

STEP_UP_AGE = timedelta(seconds=301)


def _enrolled(client: TestClient, clock: Clock) -> Enrolled:
    email = unique_email("mfa")
    token = signup(client, email=email)["accessToken"]
    return enroll(client, email, token, clock.now)


# -- enrollment --------------------------------------------------------------------------


def test_enrollment_confirmed_by_a_code_turns_mfa_on(client: TestClient) -> None:
    clock = controlled_clock(client)
    email = unique_email("enrol")
    token = signup(client, email=email)["accessToken"]
    started = mutate(client, START_ENROLLMENT, token=token)
    assert started["__typename"] == "TotpEnrollment"
    assert started["otpauthUri"].startswith("otpauth://totp/authgraph:")
    assert f"secret={started['secret']}" in started["otpauthUri"]
    assert "issuer=authgraph" in started["otpauthUri"]
    assert started["qrCodeSvg"].startswith("<svg")
    # Pending: not a factor yet, and logins are unchanged.
    assert viewer_mfa(client, token)["mfaEnabled"] is False
    assert login(client, email)["__typename"] == "AuthPayload"

    user = enroll(client, email, token, next_step(clock))
    assert len(user.recovery_codes) == 10 == len(set(user.recovery_codes))
    seen = viewer_mfa(client, user.access_token)
    assert seen["mfaEnabled"] is True
    assert seen["recoveryCodesLeft"] == 10
    assert [f["kind"] for f in seen["mfaFactors"]] == ["TOTP"]
    assert seen["mfaFactors"][0]["id"] == user.factor_id
    current = next(s for s in seen["sessions"] if s["current"])
    assert current["aal"] == 2
    assert claims(user.access_token)["aal"] == "aal2"


def test_enrollment_refuses_a_wrong_code(client: TestClient) -> None:
    clock = controlled_clock(client)
    token = signup(client)["accessToken"]
    started = mutate(client, START_ENROLLMENT, token=token)
    wrong = code_at(started["secret"], clock.now + timedelta(minutes=5))
    confirmed = mutate(
        client,
        "mutation($f: ID!, $c: String!) { confirmTotpEnrollment(input: {factorId: $f, code: $c})"
        " { __typename ... on Error { message } } }",
        {"f": started["factorId"], "c": wrong},
        token=token,
    )
    assert confirmed["__typename"] == "InvalidMfaCode"
    assert viewer_mfa(client, token)["mfaEnabled"] is False


def test_enabling_mfa_ends_other_sessions_below_aal2(client: TestClient) -> None:
    clock = controlled_clock(client)
    email = unique_email("others")
    first = signup(client, email=email)["accessToken"]
    other = login(client, email)
    user = enroll(client, email, first, clock.now)
    body = gql(client, "{ viewer { id } }", token=other["accessToken"])
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert refresh(client, other["refreshToken"])["__typename"] == "InvalidRefreshToken"
    # The enrolling session lives on, with fresh aal2 tokens; its aal1 tokens are spent.
    assert viewer_mfa(client, user.access_token)["mfaEnabled"] is True
    assert refresh(client, user.refresh_token)["__typename"] == "AuthPayload"


# -- login -------------------------------------------------------------------------------


def test_login_without_mfa_is_unchanged_and_aal1(client: TestClient) -> None:
    email = unique_email("plain")
    signup(client, email=email)
    result = login(client, email)
    assert result["__typename"] == "AuthPayload"
    token_claims = claims(result["accessToken"])
    assert token_claims["aal"] == "aal1"
    assert token_claims["amr"] == ["pwd"]
    assert isinstance(token_claims["auth_time"], int)


def test_login_with_mfa_answers_mfa_required_then_verify_gives_aal2(client: TestClient) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    challenge = login_mfa(client, user.email)
    assert challenge["__typename"] == "MfaRequired"
    assert challenge["methods"] == ["TOTP", "RECOVERY_CODE"]
    assert len(challenge["mfaToken"]) >= 40
    when = next_step(clock)
    result = verify(client, challenge["mfaToken"], code_at(user.secret, when))
    assert result["__typename"] == "AuthPayload"
    token_claims = claims(result["accessToken"])
    assert token_claims["aal"] == "aal2"
    assert token_claims["amr"] == ["pwd", "otp"]
    assert token_claims["auth_time"] == int(when.timestamp())
    # refreshToken keeps the session's level.
    refreshed = refresh(client, result["refreshToken"])
    assert claims(refreshed["accessToken"])["aal"] == "aal2"
    assert claims(refreshed["accessToken"])["amr"] == ["pwd", "otp"]


def test_login_with_mfa_and_a_wrong_password_is_invalid_credentials(client: TestClient) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    assert login_mfa(client, user.email, "not the password")["__typename"] == "InvalidCredentials"


def test_mfa_token_works_once(client: TestClient) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    challenge = login_mfa(client, user.email)
    first = verify(client, challenge["mfaToken"], code_at(user.secret, next_step(clock)))
    assert first["__typename"] == "AuthPayload"
    again = verify(client, challenge["mfaToken"], code_at(user.secret, next_step(clock)))
    assert again["__typename"] == "InvalidToken"


def test_used_code_and_older_code_are_refused(client: TestClient) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    when = next_step(clock)
    challenge = login_mfa(client, user.email)
    assert verify(client, challenge["mfaToken"], code_at(user.secret, when))["__typename"] == (
        "AuthPayload"
    )
    # The same code again, within its step: refused.
    replay = login_mfa(client, user.email)
    assert verify(client, replay["mfaToken"], code_at(user.secret, when))["__typename"] == (
        "InvalidMfaCode"
    )
    # A step later, the previous step's code is still inside the drift window, but older
    # than the last accepted one: refused too. The current one works.
    clock.now += timedelta(seconds=30)
    older = code_at(user.secret, clock.now - timedelta(seconds=60))
    assert verify(client, replay["mfaToken"], older)["__typename"] == "InvalidMfaCode"
    current = code_at(user.secret, clock.now)
    assert verify(client, replay["mfaToken"], current)["__typename"] == "AuthPayload"


def test_five_wrong_codes_kill_the_mfa_token(client: TestClient) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    challenge = login_mfa(client, user.email)
    for wrong in ("000000", "111111", "222222", "333333", "444444"):
        if wrong == code_at(user.secret, clock.now):
            wrong = "555555"
        assert verify(client, challenge["mfaToken"], wrong)["__typename"] == "InvalidMfaCode"
    good = code_at(user.secret, next_step(clock))
    assert verify(client, challenge["mfaToken"], good)["__typename"] == "InvalidToken"
    # A new login gets a new token, and the good code (unused) still works there.
    fresh = login_mfa(client, user.email)
    assert verify(client, fresh["mfaToken"], good)["__typename"] == "AuthPayload"


def test_mfa_rate_limit_counts_wrong_codes_per_user(make_client: MakeClient) -> None:
    client = make_client(mfa_rate_limit="3/15minutes")
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    for _ in range(3):
        challenge = login_mfa(client, user.email)
        assert verify(client, challenge["mfaToken"], "000000")["__typename"] in (
            "InvalidMfaCode",
            "AuthPayload",  # one chance in a million that 000000 is the code
        )
    challenge = login_mfa(client, user.email)
    limited = verify(client, challenge["mfaToken"], code_at(user.secret, next_step(clock)))
    assert limited["__typename"] == "RateLimited"
    assert limited["retryAfter"] > 0


def test_expired_mfa_token_is_refused(client: TestClient) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    challenge = login_mfa(client, user.email)
    clock.now += timedelta(minutes=5, seconds=1)
    result = verify(client, challenge["mfaToken"], code_at(user.secret, clock.now))
    assert result["__typename"] == "InvalidToken"


def test_unknown_mfa_token_is_invalid_token(client: TestClient) -> None:
    assert verify(client, "not-a-token", "123456")["__typename"] == "InvalidToken"


def test_password_change_after_login_kills_the_mfa_token(client: TestClient) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    challenge = login_mfa(client, user.email)
    changed = mutate(
        client,
        CHANGE_PASSWORD,
        {"current": DEFAULT_PASSWORD, "new": "a brand new pass phrase"},
        token=user.access_token,
    )
    assert changed["__typename"] == "AuthPayload"
    result = verify(client, challenge["mfaToken"], code_at(user.secret, next_step(clock)))
    assert result["__typename"] == "InvalidToken"


def test_token_endpoint_refuses_a_user_with_mfa(client: TestClient) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    response = client.post("/token", data={"username": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_grant"
    assert "second factor" in body["error_description"]
    assert "access_token" not in body
    wrong = client.post("/token", data={"username": user.email, "password": "wrong password"})
    assert wrong.status_code == 401


# -- recovery codes ----------------------------------------------------------------------


def test_recovery_code_logs_in_once(client: TestClient) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    code = user.recovery_codes[0]
    challenge = login_mfa(client, user.email)
    result = verify(client, challenge["mfaToken"], code.upper(), method="RECOVERY_CODE")
    assert result["__typename"] == "AuthPayload"
    assert claims(result["accessToken"])["aal"] == "aal2"
    assert viewer_mfa(client, result["accessToken"])["recoveryCodesLeft"] == 9
    again = login_mfa(client, user.email)
    reused = verify(client, again["mfaToken"], code, method="RECOVERY_CODE")
    assert reused["__typename"] == "InvalidMfaCode"
    # A TOTP code is no recovery code, and the other way round.
    totp = code_at(user.secret, next_step(clock))
    assert verify(client, again["mfaToken"], totp, method="RECOVERY_CODE")["__typename"] == (
        "InvalidMfaCode"
    )


def test_regenerating_recovery_codes_replaces_them_all(client: TestClient) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    regenerated = mutate(client, REGENERATE, token=user.access_token)
    assert regenerated["__typename"] == "RecoveryCodes"
    assert len(regenerated["codes"]) == 10
    assert not set(regenerated["codes"]) & set(user.recovery_codes)
    challenge = login_mfa(client, user.email)
    old = verify(client, challenge["mfaToken"], user.recovery_codes[1], method="RECOVERY_CODE")
    assert old["__typename"] == "InvalidMfaCode"
    new = verify(client, challenge["mfaToken"], regenerated["codes"][0], method="RECOVERY_CODE")
    assert new["__typename"] == "AuthPayload"


def test_mfa_required_offers_no_recovery_code_when_none_is_left(client: TestClient) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    for code in user.recovery_codes:
        challenge = login_mfa(client, user.email)
        assert verify(client, challenge["mfaToken"], code, method="RECOVERY_CODE")[
            "__typename"
        ] == ("AuthPayload")
    assert login_mfa(client, user.email)["methods"] == ["TOTP"]


# -- encryption at rest ------------------------------------------------------------------


def test_totp_secret_is_encrypted_at_rest(client: TestClient, database_url: str) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT secret_sealed FROM mfa_factors WHERE id = :id"), {"id": user.factor_id}
        ).scalar_one()
        hashes = connection.execute(text("SELECT code_hash FROM recovery_codes")).scalars().all()
    engine.dispose()
    assert user.secret not in stored
    assert pyotp.TOTP(user.secret).now() not in stored
    assert stored.startswith("v1:")
    # Recovery codes are kept only as hashes.
    assert not any(
        code in h or code.replace("-", "") in h for code in user.recovery_codes for h in hashes
    )


def test_secret_sealed_under_another_key_matches_no_code(
    make_client: MakeClient, client: TestClient
) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    from auth.config import Secret

    other = make_client(mfa_encryption_key=Secret("another-key-" + "x1y2z3" * 8))
    controlled_clock(other).now = clock.now
    challenge = login_mfa(other, user.email)
    result = verify(
        other, challenge["mfaToken"], code_at(user.secret, clock.now + timedelta(seconds=30))
    )
    assert result["__typename"] == "InvalidMfaCode"


# -- step-up -----------------------------------------------------------------------------


def test_factor_changes_need_a_recent_authentication(client: TestClient) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    clock.now += STEP_UP_AGE
    refused = mutate(client, REGENERATE, token=user.access_token)
    assert refused["__typename"] == "ReauthenticationRequired"
    assert refused["maxAgeSeconds"] == 300
    assert refused["methods"] == ["TOTP", "RECOVERY_CODE"]
    removed = mutate(client, REMOVE_FACTOR, {"id": user.factor_id}, token=user.access_token)
    assert removed["__typename"] == "ReauthenticationRequired"
    started = mutate(client, START_ENROLLMENT, token=user.access_token)
    assert started["__typename"] == "ReauthenticationRequired"

    # The password alone is not enough for a user with MFA.
    no_code = mutate(
        client, REAUTHENTICATE, {"password": DEFAULT_PASSWORD}, token=user.access_token
    )
    assert no_code["__typename"] == "InvalidMfaCode"
    wrong = mutate(
        client, REAUTHENTICATE, {"method": "TOTP", "code": "000000"}, token=user.access_token
    )
    assert wrong["__typename"] == "InvalidMfaCode"
    renewed = mutate(
        client,
        REAUTHENTICATE,
        {"method": "TOTP", "code": code_at(user.secret, clock.now)},
        token=user.access_token,
    )
    assert renewed["__typename"] == "Reauthenticated"
    renewed_claims = claims(renewed["auth"]["accessToken"])
    assert renewed_claims["auth_time"] == int(clock.now.timestamp())
    assert (renewed_claims["aal"], renewed_claims["amr"]) == ("aal2", ["pwd", "otp"])
    # A new authentication spends the session's older refresh tokens.
    assert refresh(client, user.refresh_token)["__typename"] == "InvalidRefreshToken"
    assert refresh(client, renewed["auth"]["refreshToken"])["__typename"] == "AuthPayload"
    assert mutate(client, REGENERATE, token=user.access_token)["__typename"] == "RecoveryCodes"
    seen = viewer_mfa(client, user.access_token)
    current = next(s for s in seen["sessions"] if s["current"])
    assert current["aal"] == 2


def test_step_up_for_a_user_without_mfa_takes_the_password(client: TestClient) -> None:
    clock = controlled_clock(client)
    token = signup(client)["accessToken"]
    clock.now += STEP_UP_AGE
    refused = mutate(client, START_ENROLLMENT, token=token)
    assert refused["__typename"] == "ReauthenticationRequired"
    assert refused["methods"] == []
    wrong = mutate(client, REAUTHENTICATE, {"password": "not my password"}, token=token)
    assert wrong["__typename"] == "InvalidCredentials"
    missing = mutate(client, REAUTHENTICATE, {}, token=token)
    assert missing["__typename"] == "InvalidCredentials"
    renewed = mutate(client, REAUTHENTICATE, {"password": DEFAULT_PASSWORD}, token=token)
    assert renewed["__typename"] == "Reauthenticated"
    assert claims(renewed["auth"]["accessToken"])["aal"] == "aal1"
    assert claims(renewed["auth"]["accessToken"])["auth_time"] == int(clock.now.timestamp())
    assert mutate(client, START_ENROLLMENT, token=token)["__typename"] == "TotpEnrollment"


def test_password_mutations_need_recent_aal2_only_with_mfa(client: TestClient) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    plain = signup(client)["accessToken"]
    clock.now += STEP_UP_AGE
    # Without MFA: no change, however old the login.
    changed = mutate(
        client,
        CHANGE_PASSWORD,
        {"current": DEFAULT_PASSWORD, "new": "another long pass phrase"},
        token=plain,
    )
    assert changed["__typename"] == "AuthPayload"
    # With MFA: a recent aal2 authentication as well as the password.
    for query, variables in (
        (CHANGE_PASSWORD, {"current": DEFAULT_PASSWORD, "new": "another long pass phrase"}),
        (REQUEST_EMAIL_CHANGE, {"email": unique_email("new"), "password": DEFAULT_PASSWORD}),
        (DELETE_ACCOUNT, {"password": DEFAULT_PASSWORD}),
    ):
        refused = mutate(client, query, variables, token=user.access_token)
        assert refused["__typename"] == "ReauthenticationRequired", query
    renewed = mutate(
        client,
        REAUTHENTICATE,
        {"method": "RECOVERY_CODE", "code": user.recovery_codes[0]},
        token=user.access_token,
    )
    assert renewed["__typename"] == "Reauthenticated"
    deleted = mutate(
        client, DELETE_ACCOUNT, {"password": DEFAULT_PASSWORD}, token=user.access_token
    )
    assert deleted["__typename"] == "AccountDeleted"


def test_removing_the_last_factor_turns_mfa_off(client: TestClient) -> None:
    clock = controlled_clock(client)
    user = _enrolled(client, clock)
    removed = mutate(client, REMOVE_FACTOR, {"id": user.factor_id}, token=user.access_token)
    assert removed == {
        "__typename": "MfaFactorRemoved",
        "removedFactorId": user.factor_id,
        "mfaEnabled": False,
    }
    seen = viewer_mfa(client, user.access_token)
    assert (seen["mfaEnabled"], seen["mfaFactors"], seen["recoveryCodesLeft"]) == (False, [], 0)
    assert login(client, user.email)["__typename"] == "AuthPayload"


def test_another_users_factor_is_not_found(client: TestClient) -> None:
    clock = controlled_clock(client)
    owner = _enrolled(client, clock)
    other = signup(client)["accessToken"]
    removed = mutate(client, REMOVE_FACTOR, {"id": owner.factor_id}, token=other)
    assert removed["__typename"] == "MfaFactorNotFound"
    assert viewer_mfa(client, owner.access_token)["mfaEnabled"] is True


def test_step_up_mutations_need_a_token(client: TestClient) -> None:
    body = gql(client, REGENERATE)
    assert error_codes(body) == ["UNAUTHENTICATED"]
