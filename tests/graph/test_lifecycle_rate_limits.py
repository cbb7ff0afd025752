"""Rate limits on the mutations that send mail or redeem emailed tokens."""

from __future__ import annotations

import pytest

from tests.conftest import GRAPHQL_PATHS, MakeClient
from tests.factories import (
    DEFAULT_PASSWORD,
    DELETE_ACCOUNT,
    REQUEST_EMAIL_CHANGE,
    REQUEST_PASSWORD_RESET,
    RESEND_VERIFICATION,
    RESET_PASSWORD,
    mutate,
    signup,
    unique_email,
)

# Through the lean path and through Strawberry's full pipeline (tests/conftest.py).
pytestmark = pytest.mark.parametrize("graphql_path", GRAPHQL_PATHS)

RATE_LIMITED = """
... on RateLimited { retryAfter }
"""


def _with_retry(query: str) -> str:
    return query.replace("__typename", "__typename " + RATE_LIMITED, 1)


def test_password_reset_requests_are_limited_per_address_alike_for_unknown_ones(
    make_client: MakeClient,
) -> None:
    client = make_client(email_rate_limit="2/hour")
    known = unique_email()
    signup(client, email=known)
    for address in (known, unique_email("nobody")):
        answers = [
            mutate(client, _with_retry(REQUEST_PASSWORD_RESET), {"email": address})
            for _ in range(3)
        ]
        assert [a["__typename"] for a in answers] == [
            "PasswordResetRequested",
            "PasswordResetRequested",
            "RateLimited",
        ]
        assert answers[2]["retryAfter"] > 0
    # Case does not make a new address.
    upper = mutate(client, REQUEST_PASSWORD_RESET, {"email": known.upper()})
    assert upper["__typename"] == "RateLimited"


def test_password_reset_requests_are_limited_per_ip(make_client: MakeClient) -> None:
    client = make_client(email_ip_rate_limit="3/hour")
    kinds = [
        mutate(client, REQUEST_PASSWORD_RESET, {"email": unique_email()})["__typename"]
        for _ in range(4)
    ]
    assert kinds == ["PasswordResetRequested"] * 3 + ["RateLimited"]


def test_resend_verification_is_limited_per_address(make_client: MakeClient) -> None:
    client = make_client(email_rate_limit="1/hour")
    session = signup(client)
    first = mutate(client, RESEND_VERIFICATION, token=session["accessToken"])
    second = mutate(client, RESEND_VERIFICATION, token=session["accessToken"])
    assert (first["__typename"], second["__typename"]) == ("VerificationEmailSent", "RateLimited")


def test_reset_password_attempts_are_limited_per_ip(make_client: MakeClient) -> None:
    client = make_client(email_ip_rate_limit="2/hour")
    variables = {"token": "x" * 43, "password": "a long new passphrase"}
    kinds = [mutate(client, RESET_PASSWORD, variables)["__typename"] for _ in range(3)]
    assert kinds == ["InvalidToken", "InvalidToken", "RateLimited"]


def test_password_checks_share_the_login_limit(make_client: MakeClient) -> None:
    client = make_client(login_rate_limit="2/hour")
    session = signup(client)
    token = session["accessToken"]
    wrong = {"email": unique_email(), "password": "not the password"}
    assert mutate(client, REQUEST_EMAIL_CHANGE, wrong, token=token)["__typename"] == (
        "InvalidCredentials"
    )
    bad = {"password": "still not the password"}
    assert mutate(client, DELETE_ACCOUNT, bad, token=token)["__typename"] == "InvalidCredentials"
    locked = mutate(client, DELETE_ACCOUNT, {"password": DEFAULT_PASSWORD}, token=token)
    assert locked["__typename"] == "RateLimited"
