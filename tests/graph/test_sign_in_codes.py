"""Email sign-in codes over HTTP, through a real SMTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import MakeClient, mail_settings
from tests.factories import VIEWER_PROFILE, gql, mutate, signup, unique_email
from tests.mailbox import Mailbox, html_body, text_body
from tests.mfa import claims, code_at, controlled_clock, enroll, next_step, verify
from tests.passwordless import drop_password

REQUEST_CODE = """
mutation Request($email: String!) {
  requestSignInCode(email: $email) {
    __typename
    ... on SignInCodeSent { message expiresInSeconds }
    ... on ValidationError { field }
    ... on RateLimited { retryAfter }
    ... on Error { message }
  }
}
"""

SIGN_IN = """
mutation SignIn($email: String!, $code: String!) {
  signInWithCode(input: {email: $email, code: $code}) {
    __typename
    ... on AuthPayload { accessToken refreshToken user { id email emailVerified hasPassword } }
    ... on MfaRequired { mfaToken methods }
    ... on Error { message }
  }
}
"""

CODE_IN_BODY = re.compile(r"^\s*(\d{8})\s*$", re.M)


def _request(client: TestClient, email: str) -> dict[str, Any]:
    return mutate(client, REQUEST_CODE, {"email": email})


def _sign_in(client: TestClient, email: str, code: str) -> dict[str, Any]:
    return mutate(client, SIGN_IN, {"email": email, "code": code})


def _code(message: EmailMessage) -> str:
    match = CODE_IN_BODY.search(text_body(message))
    assert match, text_body(message)
    return match.group(1)


def _mailed_code(client: TestClient, mailbox: Mailbox, email: str, count: int = 1) -> str:
    assert _request(client, email)["__typename"] == "SignInCodeSent"
    return _code(mailbox.wait_for(email, count=count, subject="sign-in code")[count - 1])


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**8:08d}"


def test_sign_in_with_mailed_code_opens_aal1_session_and_verifies_email(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    created = signup(mail_client, email=email)
    code = _mailed_code(mail_client, mailbox, email)
    message = mailbox.to(email, subject="sign-in code")[0]
    link = f"https://app.example.com/sign-in-code?email={email.replace('@', '%40')}&code={code}"
    assert link in text_body(message)
    assert link.replace("&", "&amp;") in html_body(message)

    result = _sign_in(mail_client, email, code)
    assert result["__typename"] == "AuthPayload", result
    assert result["user"] == {
        "id": created["user"]["id"],
        "email": email,
        "emailVerified": True,
        "hasPassword": True,
    }
    token_claims = claims(result["accessToken"])
    assert (token_claims["aal"], token_claims["amr"]) == ("aal1", ["otp"])
    viewer = gql(mail_client, VIEWER_PROFILE, token=result["accessToken"])["data"]["viewer"]
    assert viewer["emailVerified"] is True


def test_request_sign_in_code_answers_alike_for_unknown_address(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    signup(mail_client, email=email)
    stranger = unique_email("nobody")
    unknown = _request(mail_client, stranger)
    known = _request(mail_client, email)
    assert unknown == known
    assert known["__typename"] == "SignInCodeSent"
    mailbox.wait_for(email, subject="sign-in code")
    # The known address's code has arrived; the unknown one's request came first.
    assert mailbox.to(stranger) == []
    assert _sign_in(mail_client, stranger, "12345678")["__typename"] == "InvalidCredentials"


def test_request_sign_in_code_refuses_malformed_address(mail_client: TestClient) -> None:
    refused = _request(mail_client, "not an address")
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "email")


def test_sign_in_code_works_once(mail_client: TestClient, mailbox: Mailbox) -> None:
    email = unique_email()
    signup(mail_client, email=email)
    code = _mailed_code(mail_client, mailbox, email)
    assert _sign_in(mail_client, email, code)["__typename"] == "AuthPayload"
    again = _sign_in(mail_client, email, code)
    assert again["__typename"] == "InvalidCredentials"


def test_sign_in_code_expires_after_ten_minutes(mail_client: TestClient, mailbox: Mailbox) -> None:
    clock = controlled_clock(mail_client)
    email = unique_email()
    signup(mail_client, email=email)
    code = _mailed_code(mail_client, mailbox, email)
    clock.now += timedelta(minutes=10, seconds=1)
    assert _sign_in(mail_client, email, code)["__typename"] == "InvalidCredentials"


def test_sign_in_code_dies_after_five_wrong_tries(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    signup(mail_client, email=email)
    code = _mailed_code(mail_client, mailbox, email)
    wrong = [_sign_in(mail_client, email, _wrong(code)) for _ in range(5)]
    assert {w["__typename"] for w in wrong} == {"InvalidCredentials"}
    # The right code after five wrong ones: the code is dead, and says so as any failure.
    assert _sign_in(mail_client, email, code) == wrong[0]


def test_sign_in_code_four_wrong_tries_leave_it_usable(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    signup(mail_client, email=email)
    code = _mailed_code(mail_client, mailbox, email)
    for _ in range(4):
        assert _sign_in(mail_client, email, _wrong(code))["__typename"] == "InvalidCredentials"
    assert _sign_in(mail_client, email, code[:4] + " " + code[4:])["__typename"] == "AuthPayload"


def test_newer_sign_in_code_replaces_older(mail_client: TestClient, mailbox: Mailbox) -> None:
    email = unique_email()
    signup(mail_client, email=email)
    first = _mailed_code(mail_client, mailbox, email)
    second = _mailed_code(mail_client, mailbox, email, count=2)
    if first != second:
        assert _sign_in(mail_client, email, first)["__typename"] == "InvalidCredentials"
    assert _sign_in(mail_client, email, second)["__typename"] == "AuthPayload"


def test_sign_in_code_with_mfa_answers_mfa_required(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    clock = controlled_clock(mail_client)
    email = unique_email()
    token = signup(mail_client, email=email)["accessToken"]
    user = enroll(mail_client, email, token, clock.now)
    code = _mailed_code(mail_client, mailbox, email, count=1)
    challenge = _sign_in(mail_client, email, code)
    assert challenge["__typename"] == "MfaRequired", challenge
    done = verify(mail_client, challenge["mfaToken"], code_at(user.secret, next_step(clock)))
    assert done["__typename"] == "AuthPayload"
    assert claims(done["accessToken"])["aal"] == "aal2"


def test_passwordless_account_signs_in_with_code(
    mail_client: TestClient, mailbox: Mailbox, database_url: str
) -> None:
    email = unique_email()
    signup(mail_client, email=email)
    drop_password(database_url, email)
    result = _sign_in(mail_client, email, _mailed_code(mail_client, mailbox, email))
    assert result["__typename"] == "AuthPayload"
    assert result["user"]["hasPassword"] is False


def test_request_sign_in_code_is_limited_per_address(
    make_client: MakeClient, mailbox: Mailbox
) -> None:
    client = make_client(**mail_settings(mailbox.port), email_rate_limit="2/hour")
    email = unique_email()
    signup(client, email=email)
    answers = [_request(client, email)["__typename"] for _ in range(3)]
    assert answers == ["SignInCodeSent", "SignInCodeSent", "RateLimited"]
    # Unknown addresses count alike: the limit tells nothing about accounts.
    stranger = unique_email("nobody")
    answers = [_request(client, stranger)["__typename"] for _ in range(3)]
    assert answers == ["SignInCodeSent", "SignInCodeSent", "RateLimited"]


def test_request_sign_in_code_is_limited_per_ip(make_client: MakeClient, mailbox: Mailbox) -> None:
    client = make_client(**mail_settings(mailbox.port), email_ip_rate_limit="3/hour")
    answers = [_request(client, unique_email())["__typename"] for _ in range(4)]
    assert answers == ["SignInCodeSent"] * 3 + ["RateLimited"]


def test_sign_in_with_code_is_limited_per_address(
    make_client: MakeClient, mailbox: Mailbox
) -> None:
    client = make_client(**mail_settings(mailbox.port), login_rate_limit="3/15minutes")
    email = unique_email()
    signup(client, email=email)
    code = _mailed_code(client, mailbox, email)
    answers = [_sign_in(client, email, _wrong(code))["__typename"] for _ in range(3)]
    assert answers == ["InvalidCredentials"] * 3
    assert _sign_in(client, email, code)["__typename"] == "RateLimited"


def test_sign_in_codes_disabled_answer_method_not_enabled(
    make_client: MakeClient, mailbox: Mailbox
) -> None:
    client = make_client(**mail_settings(mailbox.port), sign_in_codes_enabled=False)
    email = unique_email()
    signup(client, email=email)
    assert _request(client, email)["__typename"] == "MethodNotEnabled"
    assert _sign_in(client, email, "12345678")["__typename"] == "MethodNotEnabled"
