"""A disabled account through the passwordless sign-in methods: a passkey, an emailed code.

As for a password (tests/graph/test_admin.py), the method's credential is checked first: a
wrong one answers as it always does, and only a proven one learns the account is disabled.
The provider sign-in's case is in tests/graph/test_oauth.py.
"""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from auth.admin import AdminService
from tests.admin import CLI_ACTOR, account
from tests.authenticator import SoftAuthenticator
from tests.factories import mutate
from tests.mailbox import Mailbox, text_body
from tests.passkeys import passkey_login, register

REQUEST_CODE = """mutation($email: String!) { requestSignInCode(email: $email) { __typename } }"""
SIGN_IN = """mutation($email: String!, $code: String!) {
  signInWithCode(input: {email: $email, code: $code}) {
    __typename ... on AuthPayload { accessToken } ... on Error { message }
  }
}"""


def _disable(client: TestClient, user_id: str) -> None:
    """What ``authgraph users disable`` does, on the app's own database."""
    state = client.app.state.authgraph  # type: ignore[attr-defined]
    with state.database() as database:
        state.service(AdminService, database).disable(CLI_ACTOR, user_id, "tests")


def test_passkey_of_a_disabled_account_answers_account_disabled(client: TestClient) -> None:
    user = account(client, "pk")
    authenticator = SoftAuthenticator()
    register(client, user.access_token, authenticator)
    _disable(client, user.id)
    # An assertion that fails its checks (another origin) answers as it always does.
    forged = passkey_login(client, authenticator, origin="https://evil.example")
    assert forged["__typename"] == "InvalidCredentials"
    assert passkey_login(client, authenticator)["__typename"] == "AccountDisabled"


def test_disabled_account_is_sent_no_sign_in_code(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    user = account(mail_client, "code")
    enabled = account(mail_client, "other")
    _disable(mail_client, user.id)
    for address in (user.email, enabled.email):
        assert mutate(mail_client, REQUEST_CODE, {"email": address}) == {
            "__typename": "SignInCodeSent"
        }
    # The enabled account's code arrives; the disabled one's was never queued.
    mailbox.wait_for(enabled.email, subject="sign-in code")
    assert mailbox.to(user.email, subject="sign-in code") == []
    answer = mutate(mail_client, SIGN_IN, {"email": user.email, "code": "12345678"})
    assert answer["__typename"] == "InvalidCredentials", answer


def test_code_mailed_before_the_disable_is_useless_after_it(
    mail_client: TestClient, mailbox: Mailbox
) -> None:
    user = account(mail_client, "before")
    assert mutate(mail_client, REQUEST_CODE, {"email": user.email}) == {
        "__typename": "SignInCodeSent"
    }
    code = _mailed_code(mailbox, user.email)
    _disable(mail_client, user.id)
    # A wrong code says nothing of the disable; the mailed one, proven right, does.
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    answer = mutate(mail_client, SIGN_IN, {"email": user.email, "code": wrong})
    assert answer["__typename"] == "InvalidCredentials", answer
    answer = mutate(mail_client, SIGN_IN, {"email": user.email, "code": code})
    assert answer["__typename"] == "AccountDisabled", answer
    # Enabled again, the account is not opened by the code mailed before the disable.
    state = mail_client.app.state.authgraph  # type: ignore[attr-defined]
    with state.database() as database:
        state.service(AdminService, database).enable(CLI_ACTOR, user.id)
    answer = mutate(mail_client, SIGN_IN, {"email": user.email, "code": code})
    assert answer["__typename"] == "InvalidCredentials", answer
    # A code asked for after the enable works.
    assert mutate(mail_client, REQUEST_CODE, {"email": user.email}) == {
        "__typename": "SignInCodeSent"
    }
    fresh = _mailed_code(mailbox, user.email, count=2)
    answer = mutate(mail_client, SIGN_IN, {"email": user.email, "code": fresh})
    assert answer["__typename"] == "AuthPayload", answer


def _mailed_code(mailbox: Mailbox, email: str, count: int = 1) -> str:
    message = mailbox.wait_for(email, count=count, subject="sign-in code")[count - 1]
    match = re.search(r"^\s*(\d{8})\s*$", text_body(message), re.M)
    assert match, text_body(message)
    return match.group(1)
