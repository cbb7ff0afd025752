"""Passkeys over HTTP with a software authenticator, on SQLite and PostgreSQL.

The authenticator (tests/authenticator.py) signs with real P-256 keys, so every refusal
below is the server's verification at work: origin, RP ID, challenge, signature, counter,
user verification, ceremony state and ownership.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from webauthn.helpers import bytes_to_base64url

from auth.errors import ConfigurationError
from db.engine import normalize_database_url
from graph.settings import Settings
from tests.authenticator import SoftAuthenticator
from tests.conftest import MakeClient
from tests.factories import gql, mutate, signup, unique_email
from tests.graph.test_security_events import events, kinds
from tests.graph.test_settings import prod
from tests.graph.test_sign_in_codes import _mailed_code, _sign_in
from tests.mailbox import Mailbox
from tests.mfa import (
    LOGIN_MFA,
    REAUTHENTICATE,
    VERIFY_MFA,
    claims,
    controlled_clock,
    enroll,
)
from tests.passkeys import (
    PASSKEYS,
    REMOVE,
    RENAME,
    SIGN_IN_METHODS,
    finish_login,
    finish_registration,
    passkey_login,
    register,
    start_login,
    start_registration,
)
from tests.passwordless import drop_password

INVALID = {"__typename": "InvalidCredentials", "message": "The passkey could not be verified."}

STEP_UP = """
mutation Start {
  startPasskeyRegistration {
    __typename
    ... on ReauthenticationRequired { methods password passkey }
  }
}
"""


def _account(client: TestClient) -> tuple[str, str]:
    email = unique_email("pk")
    return email, signup(client, email=email)["accessToken"]


def _counter_regressions(database_url: str, passkey_id: str) -> int:
    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        count = connection.execute(
            text("SELECT counter_regressions FROM passkeys WHERE id = :id"), {"id": passkey_id}
        ).scalar_one()
    engine.dispose()
    return int(count)


def test_register_then_sign_in_without_email_opens_aal2_session(client: TestClient) -> None:
    email, token = _account(client)
    authenticator = SoftAuthenticator()
    passkey, _ = register(client, token, authenticator, name="  My   laptop ")
    assert passkey["name"] == "My laptop"
    assert passkey["lastUsedAt"] is None
    assert passkey["backedUp"] is False

    result = passkey_login(client, authenticator)
    assert result["__typename"] == "AuthPayload", result
    assert result["user"]["email"] == email
    token_claims = claims(result["accessToken"])
    assert (token_claims["aal"], token_claims["amr"]) == ("aal2", ["hwk", "user"])
    listed = gql(client, PASSKEYS, token=result["accessToken"])["data"]["viewer"]["passkeys"]
    assert [p["id"] for p in listed] == [passkey["id"]]
    assert listed[0]["lastUsedAt"] is not None


def test_sign_in_by_email_with_synced_passkey_says_swk(client: TestClient) -> None:
    email, token = _account(client)
    authenticator = SoftAuthenticator(backed_up=True)
    passkey, _ = register(client, token, authenticator)
    assert passkey["backedUp"] is True
    options = start_login(client, email)
    allowed = json.loads(options["publicKeyJson"])["allowCredentials"]
    assert [c["id"] for c in allowed] == [bytes_to_base64url(authenticator.credentials[0].id)]
    result = finish_login(
        client, options["ceremonyId"], authenticator.get(options["publicKeyJson"])
    )
    assert result["__typename"] == "AuthPayload"
    assert claims(result["accessToken"])["amr"] == ["swk", "user"]


def test_start_login_with_email_answers_same_shape_with_or_without_passkeys(
    client: TestClient,
) -> None:
    email, token = _account(client)
    register(client, token, SoftAuthenticator())
    without, _ = _account(client)
    shapes = []
    for address in (email, without, unique_email("nobody")):
        options = json.loads(start_login(client, address)["publicKeyJson"])
        shapes.append(
            (sorted(options), len(options["allowCredentials"]), options["userVerification"])
        )
    assert shapes[0] == shapes[1] == shapes[2]
    assert shapes[0][2] == "required"
    # The decoys of an address are stable: asking twice does not tell them from real ones.
    first = json.loads(start_login(client, without)["publicKeyJson"])["allowCredentials"]
    second = json.loads(start_login(client, without)["publicKeyJson"])["allowCredentials"]
    assert first == second


def test_replayed_assertion_is_refused(client: TestClient) -> None:
    _, token = _account(client)
    authenticator = SoftAuthenticator()
    register(client, token, authenticator)
    options = start_login(client)
    answer = authenticator.get(options["publicKeyJson"])
    assert finish_login(client, options["ceremonyId"], answer)["__typename"] == "AuthPayload"
    # The same ceremony again, then the same answer to a fresh ceremony (another challenge).
    assert finish_login(client, options["ceremonyId"], answer) == INVALID
    fresh = start_login(client)
    assert finish_login(client, fresh["ceremonyId"], answer) == INVALID


def test_assertion_from_wrong_origin_or_rp_id_is_refused(client: TestClient) -> None:
    _, token = _account(client)
    authenticator = SoftAuthenticator()
    register(client, token, authenticator)
    assert passkey_login(client, authenticator, origin="https://evil.example") == INVALID
    assert passkey_login(client, authenticator, rp_id="evil.example") == INVALID
    # The same key still works from the right page.
    assert passkey_login(client, authenticator)["__typename"] == "AuthPayload"


def test_registration_from_wrong_origin_or_rp_id_is_refused(client: TestClient) -> None:
    _, token = _account(client)
    authenticator = SoftAuthenticator()
    for answer in ({"origin": "https://evil.example"}, {"rp_id": "evil.example"}):
        options = start_registration(client, token)
        credential, _ = authenticator.create(options["publicKeyJson"], **answer)
        refused = finish_registration(client, token, options["ceremonyId"], credential)
        assert refused["__typename"] == "InvalidPasskeyResponse", refused
    assert gql(client, PASSKEYS, token=token)["data"]["viewer"]["passkeys"] == []


def test_expired_login_ceremony_is_refused(client: TestClient) -> None:
    clock = controlled_clock(client)
    _, token = _account(client)
    authenticator = SoftAuthenticator()
    register(client, token, authenticator)
    options = start_login(client)
    clock.now += timedelta(minutes=5, seconds=1)
    answer = authenticator.get(options["publicKeyJson"])
    assert finish_login(client, options["ceremonyId"], answer) == INVALID


def test_reused_or_expired_registration_ceremony_is_invalid_token(client: TestClient) -> None:
    clock = controlled_clock(client)
    _, token = _account(client)
    authenticator = SoftAuthenticator()
    options = start_registration(client, token)
    credential, _ = authenticator.create(options["publicKeyJson"])
    assert (
        finish_registration(client, token, options["ceremonyId"], credential)["__typename"]
        == "PasskeyAdded"
    )
    again = finish_registration(client, token, options["ceremonyId"], credential)
    assert again["__typename"] == "InvalidToken"
    late = start_registration(client, token)
    credential, _ = authenticator.create(late["publicKeyJson"])
    clock.now += timedelta(minutes=5, seconds=1)
    # Still within the step-up? No: five minutes passed; the mutation only needs a session.
    expired = finish_registration(client, token, late["ceremonyId"], credential)
    assert expired["__typename"] == "InvalidToken"


def test_counter_going_backwards_is_refused_and_recorded(
    client: TestClient, database_url: str
) -> None:
    _, token = _account(client)
    authenticator = SoftAuthenticator()
    passkey, _ = register(client, token, authenticator)
    assert passkey_login(client, authenticator)["__typename"] == "AuthPayload"  # counter 1
    assert passkey_login(client, authenticator)["__typename"] == "AuthPayload"  # counter 2
    assert passkey_login(client, authenticator, sign_count=1) == INVALID
    assert _counter_regressions(database_url, passkey["id"]) == 1
    # Nothing was revoked: the genuine authenticator, counting on, still signs in.
    assert passkey_login(client, authenticator)["__typename"] == "AuthPayload"


def test_authenticator_without_counter_signs_in_repeatedly(client: TestClient) -> None:
    _, token = _account(client)
    authenticator = SoftAuthenticator(counter_step=0)
    register(client, token, authenticator)
    for _ in range(2):
        assert passkey_login(client, authenticator)["__typename"] == "AuthPayload"


def test_another_users_credential_is_refused(client: TestClient) -> None:
    alice, alice_token = _account(client)
    _, bob_token = _account(client)
    alices, bobs = SoftAuthenticator(), SoftAuthenticator()
    register(client, alice_token, alices)
    register(client, bob_token, bobs)
    # A login bound to Alice's address, answered with Bob's passkey.
    options = start_login(client, alice)
    answer = bobs.get(options["publicKeyJson"])
    assert finish_login(client, options["ceremonyId"], answer) == INVALID
    # Alice's registration ceremony, finished with Bob's session.
    started = start_registration(client, alice_token)
    credential, _ = bobs.create(started["publicKeyJson"])
    stolen = finish_registration(client, bob_token, started["ceremonyId"], credential)
    assert stolen["__typename"] == "InvalidToken"


def test_unknown_credential_answers_like_a_wrong_one(client: TestClient) -> None:
    _, token = _account(client)
    registered = SoftAuthenticator()
    register(client, token, registered)
    stranger = SoftAuthenticator()
    stranger.create(start_registration(client, token)["publicKeyJson"])  # never finished
    assert passkey_login(client, stranger) == INVALID
    assert passkey_login(client, registered, origin="https://evil.example") == INVALID


def test_authenticator_without_user_verification_is_refused_for_first_factor(
    client: TestClient,
) -> None:
    _, token = _account(client)
    authenticator = SoftAuthenticator(user_verification=False)
    register(client, token, authenticator)  # presence is enough to register
    assert passkey_login(client, authenticator) == INVALID


def test_registration_excludes_existing_credentials_and_caps_them(
    make_client: MakeClient,
) -> None:
    client = make_client(max_passkeys_per_user=2)
    _, token = _account(client)
    authenticator = SoftAuthenticator()
    register(client, token, authenticator)
    options = json.loads(start_registration(client, token)["publicKeyJson"])
    held = bytes_to_base64url(authenticator.credentials[0].id)
    assert [c["id"] for c in options["excludeCredentials"]] == [held]
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    register(client, token, authenticator)
    capped = start_registration(client, token)
    assert capped["__typename"] == "TooManyPasskeys"
    assert capped["limit"] == 2


def test_registration_needs_recent_authentication(client: TestClient) -> None:
    clock = controlled_clock(client)
    _, token = _account(client)
    clock.now += timedelta(minutes=6)
    assert start_registration(client, token)["__typename"] == "ReauthenticationRequired"


def test_rename_passkey_and_refuse_others(client: TestClient) -> None:
    _, token = _account(client)
    _, other = _account(client)
    passkey, _ = register(client, token, SoftAuthenticator())
    renamed = mutate(client, RENAME, {"id": passkey["id"], "name": "Phone"}, token=token)
    assert renamed == {
        "__typename": "PasskeyRenamed",
        "passkey": {"id": passkey["id"], "name": "Phone"},
    }
    blank = mutate(client, RENAME, {"id": passkey["id"], "name": "  "}, token=token)
    assert (blank["__typename"], blank["field"]) == ("ValidationError", "name")
    theirs = mutate(client, RENAME, {"id": passkey["id"], "name": "Mine"}, token=other)
    assert theirs["__typename"] == "PasskeyNotFound"


def test_remove_passkey_stops_it_signing_in(client: TestClient) -> None:
    _, token = _account(client)
    _, other = _account(client)
    authenticator = SoftAuthenticator()
    passkey, _ = register(client, token, authenticator)
    theirs = mutate(client, REMOVE, {"id": passkey["id"]}, token=other)
    assert theirs["__typename"] == "PasskeyNotFound"
    removed = mutate(client, REMOVE, {"id": passkey["id"]}, token=token)
    assert removed == {"__typename": "PasskeyRemoved", "removedPasskeyId": passkey["id"]}
    assert passkey_login(client, authenticator) == INVALID


def test_adding_and_removing_a_passkey_joins_the_audit_trail(client: TestClient) -> None:
    _, token = _account(client)
    passkey, _ = register(client, token, SoftAuthenticator())
    mutate(client, REMOVE, {"id": passkey["id"]}, token=token)
    trail = kinds(client, token)
    assert trail[:2] == [("PASSKEY_REMOVED", None), ("PASSKEY_ADDED", None)]
    assert all(e["node"]["ipAddress"] for e in events(client, token)["edges"][:2])


def test_remove_last_way_in_answers_last_sign_in_method(
    make_client: MakeClient, database_url: str
) -> None:
    client = make_client(sign_in_codes_enabled=False)
    email, token = _account(client)
    authenticator = SoftAuthenticator()
    passkey, _ = register(client, token, authenticator)
    drop_password(database_url, email)
    refused = mutate(client, REMOVE, {"id": passkey["id"]}, token=token)
    assert refused["__typename"] == "LastSignInMethod"
    assert passkey_login(client, authenticator)["__typename"] == "AuthPayload"


def test_remove_passkey_of_passwordless_account_allowed_while_codes_are_on(
    client: TestClient, database_url: str
) -> None:
    email, token = _account(client)
    passkey, _ = register(client, token, SoftAuthenticator())
    drop_password(database_url, email)
    removed = mutate(client, REMOVE, {"id": passkey["id"]}, token=token)
    assert removed["__typename"] == "PasskeyRemoved"


def test_passkey_answers_mfa_required(client: TestClient) -> None:
    clock = controlled_clock(client)
    email, token = _account(client)
    enroll(client, email, token, clock.now)
    fresh = mutate(client, LOGIN_MFA, {"email": email, "password": "correct horse battery staple"})
    assert fresh["__typename"] == "MfaRequired"
    authenticator = SoftAuthenticator(user_verification=False)  # possession is enough here
    # Registration needs aal2 now: verify with TOTP first is what the SPA does; here the
    # enrolment session is aal2 already.
    register(client, token, authenticator)
    challenge = mutate(
        client, LOGIN_MFA, {"email": email, "password": "correct horse battery staple"}
    )
    assert "PASSKEY" in challenge["methods"]
    options = start_login(client, email)
    answer = authenticator.get(options["publicKeyJson"])
    done = mutate(
        client,
        VERIFY_MFA,
        {"token": challenge["mfaToken"], "method": "PASSKEY", "code": answer},
    )
    assert done["__typename"] == "AuthPayload", done
    token_claims = claims(done["accessToken"])
    assert (token_claims["aal"], token_claims["amr"]) == ("aal2", ["pwd", "hwk"])
    # The assertion was spent with its ceremony.
    again = mutate(client, LOGIN_MFA, {"email": email, "password": "correct horse battery staple"})
    replay = mutate(
        client, VERIFY_MFA, {"token": again["mfaToken"], "method": "PASSKEY", "code": answer}
    )
    assert replay["__typename"] == "InvalidMfaCode"


def test_passkey_of_another_user_does_not_answer_mfa(client: TestClient) -> None:
    clock = controlled_clock(client)
    email, token = _account(client)
    enroll(client, email, token, clock.now)
    register(client, token, SoftAuthenticator())
    other, other_token = _account(client)
    theirs = SoftAuthenticator()
    register(client, other_token, theirs)
    challenge = mutate(
        client, LOGIN_MFA, {"email": email, "password": "correct horse battery staple"}
    )
    for address in (email, other):
        options = start_login(client, address)
        answer = theirs.get(options["publicKeyJson"])
        refused = mutate(
            client,
            VERIFY_MFA,
            {"token": challenge["mfaToken"], "method": "PASSKEY", "code": answer},
        )
        assert refused["__typename"] == "InvalidMfaCode"


def test_passkeys_off_answer_method_not_enabled(make_client: MakeClient) -> None:
    client = make_client(webauthn_rp_id="", webauthn_origins=())
    _, token = _account(client)
    assert start_registration(client, token)["__typename"] == "MethodNotEnabled"
    started = mutate(client, "mutation { startPasskeyLogin { __typename } }")
    assert started["__typename"] == "MethodNotEnabled"
    methods = gql(client, SIGN_IN_METHODS)["data"]["signInMethods"]
    assert methods == {
        "password": True,
        "passkeys": False,
        "emailCodes": True,
        "mfa": ["TOTP", "RECOVERY_CODE"],
    }


def test_sign_in_methods_lists_passkeys_when_on(client: TestClient) -> None:
    methods = gql(client, SIGN_IN_METHODS)["data"]["signInMethods"]
    assert methods == {
        "password": True,
        "passkeys": True,
        "emailCodes": True,
        "mfa": ["TOTP", "RECOVERY_CODE", "PASSKEY"],
    }


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"WEBAUTHN_RP_ID": "example.com"}, "WEBAUTHN_ORIGINS"),
        ({"WEBAUTHN_ORIGINS": "https://app.example.com"}, "WEBAUTHN_RP_ID"),
    ],
)
def test_production_refuses_half_passkey_settings_naming_missing(
    env: dict[str, str], missing: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"^{missing} is not set"):
        Settings.from_env(prod(**env))


def test_production_passkeys_off_unless_configured() -> None:
    assert not Settings.from_env(prod()).auth.passkeys_enabled
    configured = Settings.from_env(
        prod(WEBAUTHN_RP_ID="example.com", WEBAUTHN_ORIGINS="https://app.example.com")
    )
    assert configured.auth.passkeys_enabled
    assert configured.auth.webauthn_origins == ("https://app.example.com",)


def test_reauthenticate_with_passkey_renews_step_up(client: TestClient) -> None:
    clock = controlled_clock(client)
    email, token = _account(client)
    enroll(client, email, token, clock.now)
    authenticator = SoftAuthenticator()
    register(client, token, authenticator)
    clock.now += timedelta(minutes=10)
    refused = start_registration(client, token)
    assert refused["__typename"] == "ReauthenticationRequired"
    options = start_login(client, email)
    answer = authenticator.get(options["publicKeyJson"])
    renewed = mutate(client, REAUTHENTICATE, {"method": "PASSKEY", "code": answer}, token=token)
    assert renewed["__typename"] == "Reauthenticated", renewed
    fresh = renewed["auth"]["accessToken"]
    assert start_registration(client, fresh)["__typename"] == "PasskeyOptions"


@pytest.mark.parametrize(
    "credential",
    [
        "not json",
        "[" * 5000,
        "[]",
        '{"id": 5}',
        '{"id": "AAAA", "response": "text"}',
        '{"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {"clientDataJSON": 1}}',
        '{"id": "\\u0000", "response": {"userHandle": ["x"]}}',
    ],
)
def test_malformed_credentials_are_refused_not_errors(client: TestClient, credential: str) -> None:
    _, token = _account(client)
    register(client, token, SoftAuthenticator())
    options = start_login(client)
    assert finish_login(client, options["ceremonyId"], credential) == INVALID
    started = start_registration(client, token)
    refused = finish_registration(client, token, started["ceremonyId"], credential)
    assert refused["__typename"] == "InvalidPasskeyResponse"


def test_passkey_name_with_control_characters_is_refused(client: TestClient) -> None:
    _, token = _account(client)
    refused = start_registration(client, token, "bad\x00name")
    assert refused["__typename"] == "ValidationError"


def _step_up(client: TestClient, token: str) -> dict[str, object]:
    """What startPasskeyRegistration's refusal says the account can reauthenticate with."""
    refused = mutate(client, STEP_UP, token=token)
    assert refused["__typename"] == "ReauthenticationRequired", refused
    return {k: refused[k] for k in ("methods", "password", "passkey")}


def test_step_up_refusal_says_what_each_kind_of_account_can_give(
    client: TestClient, database_url: str
) -> None:
    clock = controlled_clock(client)
    _, plain_token = _account(client)
    _, keyed_token = _account(client)
    register(client, keyed_token, SoftAuthenticator())
    mfa, mfa_token = _account(client)
    mfa_token = enroll(client, mfa, mfa_token, clock.now).access_token
    mfa_keyed, mfa_keyed_token = _account(client)
    mfa_keyed_token = enroll(client, mfa_keyed, mfa_keyed_token, clock.now).access_token
    register(client, mfa_keyed_token, SoftAuthenticator())
    bare, bare_token = _account(client)
    bare_keyed, bare_keyed_token = _account(client)
    register(client, bare_keyed_token, SoftAuthenticator())
    for address in (bare, bare_keyed):
        drop_password(database_url, address)
    clock.now += timedelta(minutes=10)

    assert _step_up(client, plain_token) == {"methods": [], "password": True, "passkey": False}
    assert _step_up(client, keyed_token) == {"methods": [], "password": True, "passkey": True}
    assert _step_up(client, mfa_token) == {
        "methods": ["TOTP", "RECOVERY_CODE"],
        "password": False,
        "passkey": False,
    }
    assert _step_up(client, mfa_keyed_token) == {
        "methods": ["TOTP", "RECOVERY_CODE", "PASSKEY"],
        "password": False,
        "passkey": True,
    }
    assert _step_up(client, bare_keyed_token) == {
        "methods": [],
        "password": False,
        "passkey": True,
    }
    # Nothing reauthenticate takes: this account signs in again instead.
    assert _step_up(client, bare_token) == {"methods": [], "password": False, "passkey": False}


def test_account_without_password_steps_up_with_passkey_and_adds_another(
    client: TestClient, database_url: str
) -> None:
    clock = controlled_clock(client)
    email, token = _account(client)
    authenticator = SoftAuthenticator()
    register(client, token, authenticator)
    drop_password(database_url, email)
    clock.now += timedelta(minutes=10)
    assert start_registration(client, token)["__typename"] == "ReauthenticationRequired"

    options = start_login(client, email)
    answer = authenticator.get(options["publicKeyJson"])
    renewed = mutate(client, REAUTHENTICATE, {"method": "PASSKEY", "code": answer}, token=token)
    assert renewed["__typename"] == "Reauthenticated", renewed
    fresh = renewed["auth"]["accessToken"]
    token_claims = claims(fresh)
    assert (token_claims["aal"], token_claims["amr"]) == ("aal2", ["hwk", "user"])
    register(client, fresh, SoftAuthenticator())
    listed = gql(client, PASSKEYS, token=fresh)["data"]["viewer"]["passkeys"]
    assert len(listed) == 2
    # The assertion was spent with its ceremony.
    replay = mutate(client, REAUTHENTICATE, {"method": "PASSKEY", "code": answer}, token=fresh)
    assert replay == INVALID


def test_passkey_step_up_without_mfa_needs_user_verification(client: TestClient) -> None:
    clock = controlled_clock(client)
    email, token = _account(client)
    authenticator = SoftAuthenticator(user_verification=False)
    register(client, token, authenticator)  # presence is enough to register
    clock.now += timedelta(minutes=10)
    options = start_login(client, email)
    answer = authenticator.get(options["publicKeyJson"])
    refused = mutate(client, REAUTHENTICATE, {"method": "PASSKEY", "code": answer}, token=token)
    assert refused == INVALID
    assert start_registration(client, token)["__typename"] == "ReauthenticationRequired"


def test_another_users_passkey_does_not_step_up(client: TestClient) -> None:
    clock = controlled_clock(client)
    email, token = _account(client)
    register(client, token, SoftAuthenticator())
    _, other_token = _account(client)
    theirs = SoftAuthenticator()
    register(client, other_token, theirs)
    clock.now += timedelta(minutes=10)
    options = start_login(client, email)
    answer = theirs.get(options["publicKeyJson"])
    refused = mutate(client, REAUTHENTICATE, {"method": "PASSKEY", "code": answer}, token=token)
    assert refused == INVALID


def test_account_without_password_or_passkey_steps_up_by_signing_in_with_a_code(
    mail_client: TestClient, mailbox: Mailbox, database_url: str
) -> None:
    clock = controlled_clock(mail_client)
    email, token = _account(mail_client)
    drop_password(database_url, email)
    clock.now += timedelta(minutes=10)
    assert _step_up(mail_client, token) == {"methods": [], "password": False, "passkey": False}
    no_password = mutate(mail_client, REAUTHENTICATE, {"password": "anything at all"}, token=token)
    assert no_password["__typename"] == "InvalidCredentials"
    assert "no password" in no_password["message"]

    clock.now -= timedelta(minutes=10)  # back to the outbox's time, so the code is mailed
    signed_in = _sign_in(mail_client, email, _mailed_code(mail_client, mailbox, email))
    assert signed_in["__typename"] == "AuthPayload", signed_in
    fresh = signed_in["accessToken"]
    register(mail_client, fresh, SoftAuthenticator())
    listed = gql(mail_client, PASSKEYS, token=fresh)["data"]["viewer"]["passkeys"]
    assert len(listed) == 1
