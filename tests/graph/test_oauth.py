"""Social sign-in over HTTP against a real OpenID provider, on SQLite and PostgreSQL.

The provider is oidc-provider (tests/oidc_provider), reached through a pass-through proxy
that a test may switch a fault on in (tests/oidc.py); the user's part at the provider (its
login and consent pages) is played by tests.oidc.sign_in_at_provider.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

import auth.oauth_client
from auth.admin import AdminService
from auth.oauth_client import ProviderClient, new_pkce_verifier
from tests.admin import CLI_ACTOR
from tests.conftest import MakeClient, mail_settings, skip_or_fail
from tests.factories import (
    DEFAULT_PASSWORD,
    VERIFY_EMAIL,
    gql,
    login,
    mutate,
    signup,
)
from tests.graph.test_security_events import kinds
from tests.graph.test_security_notices import queued_subjects
from tests.mailbox import Mailbox, text_body, token_from
from tests.mfa import claims, code_at, controlled_clock, enroll, next_step, verify
from tests.oauth import (
    IDENTITIES,
    LINK,
    PROVIDERS,
    UNLINK,
    at_provider,
    complete,
    sign_in,
    start,
)
from tests.oidc import (
    CLIENT_ID,
    OTHER_REDIRECT_URI,
    REDIRECT_URI,
    Fault,
    OidcProvider,
    node_available,
    sign_in_at_provider,
    start_provider,
)


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    if not node_available():
        skip_or_fail("node or tests/oidc_provider/node_modules is missing (make install)")
    with start_provider((REDIRECT_URI, OTHER_REDIRECT_URI)) as provider:
        yield provider


@pytest.fixture
def provider(oidc_provider: OidcProvider) -> Iterator[OidcProvider]:
    oidc_provider.proxy.fault = Fault()
    yield oidc_provider
    oidc_provider.proxy.fault = Fault()


def _oauth_settings(provider: OidcProvider, **more: Any) -> dict[str, Any]:
    return {
        "oauth_providers": (provider.settings(),),
        "oauth_redirect_uris": (REDIRECT_URI, OTHER_REDIRECT_URI),
        **more,
    }


@pytest.fixture
def client(make_client: MakeClient, mailbox: Mailbox, provider: OidcProvider) -> TestClient:
    """The API with the provider configured (as acme) and mail delivered to ``mailbox``."""
    return make_client(**mail_settings(mailbox.port), **_oauth_settings(provider))


def _verified_signup(client: TestClient, mailbox: Mailbox, email: str) -> dict[str, Any]:
    session = signup(client, email=email)
    token = token_from(mailbox.wait_for(email)[0])
    assert mutate(client, VERIFY_EMAIL, {"token": token})["__typename"] == "EmailVerified"
    return session


def _viewer(client: TestClient, token: str) -> dict[str, Any]:
    viewer: dict[str, Any] = gql(client, IDENTITIES, token=token)["data"]["viewer"]
    return viewer


# -- providers and the redirect -------------------------------------------------------------


def test_oauth_providers_lists_the_configured_providers(client: TestClient) -> None:
    body = gql(client, PROVIDERS)
    assert body["data"]["oauthProviders"] == [{"id": "acme", "name": "Acme ID"}]


def test_start_answers_an_authorization_url_with_pkce_s256_nonce_and_a_cookie(
    client: TestClient, provider: OidcProvider
) -> None:
    started = start(client)
    assert started["__typename"] == "OAuthRedirect"
    url = urlsplit(started["authorizationUrl"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{provider.issuer}/auth"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43
    assert len(query["nonce"]) >= 43
    assert query["scope"] == "openid email profile"
    response = client.post(
        "/graphql",
        json={
            "query": 'mutation { startOAuthSignIn(input: {provider: "acme", redirectUri: '
            f'"{REDIRECT_URI}"}}) {{ __typename }} }}'
        },
    )
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("authgraph_oauth=")
    lowered = cookie.lower()
    for attribute in ("httponly", "samesite=lax", "path=/graphql", "max-age=600"):
        assert attribute in lowered


def test_start_refuses_a_redirect_uri_not_exactly_listed(client: TestClient) -> None:
    for uri in (
        "https://evil.example/callback",
        REDIRECT_URI + "/../evil",
        REDIRECT_URI + "x",
        REDIRECT_URI + "?next=https://evil.example",
        "http://localhost:5173/",
    ):
        refused = start(client, redirect_uri=uri)
        assert refused["__typename"] == "ValidationError", uri
        assert refused["field"] == "redirectUri"


def test_start_refuses_an_unknown_provider(client: TestClient) -> None:
    refused = start(client, provider="nope")
    assert refused["__typename"] == "ValidationError"
    assert refused["field"] == "provider"


# -- accounts -------------------------------------------------------------------------------


def test_sign_up_by_provider_creates_a_verified_account_without_password(
    client: TestClient,
) -> None:
    signed_in = sign_in(client, "alice")
    assert signed_in["__typename"] == "AuthPayload", signed_in
    assert signed_in["user"]["email"] == "alice@example.com"
    assert signed_in["user"]["emailVerified"] is True
    token = signed_in["accessToken"]
    assert claims(token)["amr"] == ["fed"]
    viewer = _viewer(client, token)
    (identity,) = viewer["identities"]
    assert identity["provider"] == "acme"
    assert identity["email"] == "alice@example.com"
    # No password was set: none logs in.
    assert login(client, "alice@example.com", DEFAULT_PASSWORD)["__typename"] == (
        "InvalidCredentials"
    )


def test_sign_in_again_finds_the_account_by_subject(client: TestClient) -> None:
    first = sign_in(client, "bob")
    again = sign_in(client, "bob")
    assert again["__typename"] == "AuthPayload"
    assert again["user"]["id"] == first["user"]["id"]
    (identity,) = _viewer(client, again["accessToken"])["identities"]
    assert identity["lastUsedAt"] is not None


def test_sign_in_links_by_email_only_when_both_sides_verified_it(
    client: TestClient, mailbox: Mailbox
) -> None:
    session = _verified_signup(client, mailbox, "dave@example.com")
    signed_in = sign_in(client, "dave")
    assert signed_in["__typename"] == "AuthPayload"
    assert signed_in["user"]["id"] == session["user"]["id"]
    assert [i["provider"] for i in _viewer(client, signed_in["accessToken"])["identities"]] == [
        "acme"
    ]


def test_sign_in_to_an_account_whose_email_authgraph_has_not_verified_needs_linking(
    client: TestClient,
) -> None:
    # Whoever signed up here with erin's address never proved it: no takeover by the provider.
    session = signup(client, email="erin@example.com")
    answer = sign_in(client, "erin")
    assert answer["__typename"] == "AccountLinkRequired"
    assert answer["email"] == "erin@example.com"
    assert _viewer(client, session["accessToken"])["identities"] == []


def test_sign_in_with_an_email_the_provider_has_not_verified_needs_linking(
    client: TestClient, mailbox: Mailbox
) -> None:
    # carol's provider account claims carol@ without having proved it: the account-injection case.
    session = _verified_signup(client, mailbox, "carol@example.com")
    answer = sign_in(client, "carol")
    assert answer["__typename"] == "AccountLinkRequired"
    assert answer["email"] == "carol@example.com"
    assert _viewer(client, session["accessToken"])["identities"] == []


def test_sign_in_with_an_unverified_email_and_no_account_creates_nothing(
    client: TestClient,
) -> None:
    answer = sign_in(client, "frank")
    assert answer["__typename"] == "OAuthEmailNotVerified"
    assert signup(client, email="frank@example.com")["__typename"] == "AuthPayload"


def test_explicit_link_then_sign_in_and_unlink(client: TestClient, mailbox: Mailbox) -> None:
    # carol's provider email is unverified: linking from inside the account is the way.
    session = _verified_signup(client, mailbox, "carol@example.com")
    token = session["accessToken"]
    returned = at_provider(client, "carol", intent="LINK", token=token)
    linked = complete(client, returned, query=LINK, token=token)
    assert linked["__typename"] == "IdentityLinked", linked
    identity = linked["identity"]
    assert identity["provider"] == "acme"
    signed_in = sign_in(client, "carol")
    assert signed_in["__typename"] == "AuthPayload"
    assert signed_in["user"]["id"] == session["user"]["id"]
    # It has a password too: unlinking leaves a way in.
    unlinked = mutate(client, UNLINK, {"id": identity["id"]}, token=token)
    assert unlinked == {"__typename": "IdentityUnlinked", "unlinkedIdentityId": identity["id"]}
    assert _viewer(client, token)["identities"] == []
    assert sign_in(client, "carol")["__typename"] == "AccountLinkRequired"
    trail = kinds(client, token)
    assert ("IDENTITY_LINKED", "acme") in trail
    assert ("IDENTITY_UNLINKED", "acme") in trail
    assert ("SIGNED_IN", "identity") in trail


def test_linking_an_identity_is_mailed_unless_switched_off(
    make_client: MakeClient, mailbox: Mailbox, provider: OidcProvider, database_url: str
) -> None:
    client = make_client(**mail_settings(mailbox.port), **_oauth_settings(provider))
    token = _verified_signup(client, mailbox, "carol@example.com")["accessToken"]
    returned = at_provider(client, "carol", intent="LINK", token=token)
    assert complete(client, returned, query=LINK, token=token)["__typename"] == "IdentityLinked"
    (notice,) = mailbox.wait_for("carol@example.com", subject="a sign-in method was linked")
    assert "another sign-in method was linked to your account" in text_body(notice)
    assert queued_subjects(database_url, "carol@example.com").count(notice["Subject"]) == 1

    quiet = make_client(
        notify_identity_linked=False, **mail_settings(mailbox.port), **_oauth_settings(provider)
    )
    token = _verified_signup(quiet, mailbox, "frank@example.com")["accessToken"]
    returned = at_provider(quiet, "frank", intent="LINK", token=token)
    assert complete(quiet, returned, query=LINK, token=token)["__typename"] == "IdentityLinked"
    # Recorded all the same; only the mail is off.
    assert ("IDENTITY_LINKED", "acme") in kinds(quiet, token)
    assert not any(
        "linked" in s.lower() for s in queued_subjects(database_url, "frank@example.com")
    )


def test_link_of_an_identity_linked_elsewhere_answers_identity_taken(client: TestClient) -> None:
    sign_in(client, "grace")  # grace's provider account now has its own authgraph account
    token = signup(client, email="someone-else@example.com")["accessToken"]
    returned = at_provider(client, "grace", intent="LINK", token=token)
    assert complete(client, returned, query=LINK, token=token)["__typename"] == "IdentityTaken"


def test_link_needs_a_recent_authentication(client: TestClient) -> None:
    clock = controlled_clock(client)
    token = signup(client, email="late-linker@example.com")["accessToken"]
    returned = at_provider(client, "heidi", intent="LINK", token=token)
    clock.now += timedelta(seconds=301)
    answer = complete(client, returned, query=LINK, token=token)
    assert answer["__typename"] == "ReauthenticationRequired"


def test_link_attempt_cannot_complete_a_sign_in_nor_another_users_link(client: TestClient) -> None:
    token = signup(client, email="linker@example.com")["accessToken"]
    returned = at_provider(client, "ivan", intent="LINK", token=token)
    assert complete(client, returned)["__typename"] == "InvalidOAuthState"
    other = signup(client, email="other-linker@example.com")["accessToken"]
    returned = at_provider(client, "ivan", intent="LINK", token=token)
    assert complete(client, returned, query=LINK, token=other)["__typename"] == "InvalidOAuthState"


def test_start_link_without_a_login_is_unauthenticated(client: TestClient) -> None:
    body = gql(
        client,
        'mutation { startOAuthSignIn(input: {provider: "acme", redirectUri: '
        f'"{REDIRECT_URI}", intent: LINK}}) {{ __typename }} }}',
    )
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_unlink_of_the_last_sign_in_method_is_refused(
    make_client: MakeClient, mailbox: Mailbox, provider: OidcProvider
) -> None:
    # Without emailed sign-in codes the identity is this passwordless account's only way in.
    client = make_client(
        **mail_settings(mailbox.port), **_oauth_settings(provider), sign_in_codes_enabled=False
    )
    token = sign_in(client, "judy")["accessToken"]
    (identity,) = _viewer(client, token)["identities"]
    refused = mutate(client, UNLINK, {"id": identity["id"]}, token=token)
    assert refused["__typename"] == "LastSignInMethod"
    assert len(_viewer(client, token)["identities"]) == 1


def test_unlink_with_sign_in_codes_on_keeps_the_mailbox_as_a_way_in(client: TestClient) -> None:
    token = sign_in(client, "judy")["accessToken"]
    (identity,) = _viewer(client, token)["identities"]
    unlinked = mutate(client, UNLINK, {"id": identity["id"]}, token=token)
    assert unlinked["__typename"] == "IdentityUnlinked", unlinked
    assert _viewer(client, token)["identities"] == []


def test_provider_sign_in_of_a_disabled_account_answers_account_disabled(
    client: TestClient,
) -> None:
    user_id = sign_in(client, "alice")["user"]["id"]
    state = client.app.state.authgraph  # type: ignore[attr-defined]
    with state.database() as database:
        state.service(AdminService, database).disable(CLI_ACTOR, user_id, "tests")
    refused = sign_in(client, "alice")
    assert refused["__typename"] == "AccountDisabled", refused


def test_unlink_of_another_users_identity_is_not_found(client: TestClient) -> None:
    owner = sign_in(client, "alice")
    (identity,) = _viewer(client, owner["accessToken"])["identities"]
    token = signup(client, email="stranger@example.com")["accessToken"]
    answer = mutate(client, UNLINK, {"id": identity["id"]}, token=token)
    assert answer["__typename"] == "IdentityNotFound"


def test_mfa_still_applies_after_a_provider_sign_in(client: TestClient, mailbox: Mailbox) -> None:
    clock = controlled_clock(client)
    session = _verified_signup(client, mailbox, "bob@example.com")
    enrolled = enroll(client, "bob@example.com", session["accessToken"], clock.now)
    answer = sign_in(client, "bob")
    assert answer["__typename"] == "MfaRequired", answer
    # The next step's code: the enrollment spent this one.
    verified = verify(client, answer["mfaToken"], code_at(enrolled.secret, next_step(clock)))
    assert verified["__typename"] == "AuthPayload"
    assert claims(verified["accessToken"])["amr"] == ["fed", "otp"]
    assert claims(verified["accessToken"])["aal"] == "aal2"


# -- the attempt: state, browser, redirect URI, PKCE ----------------------------------------


def test_replayed_state_is_refused(client: TestClient) -> None:
    returned = at_provider(client, "alice")
    assert complete(client, returned)["__typename"] == "AuthPayload"
    assert complete(client, returned)["__typename"] == "InvalidOAuthState"


def test_state_from_another_browser_is_refused(client: TestClient) -> None:
    returned = at_provider(client, "alice")
    cookies = dict(client.cookies)
    client.cookies.clear()
    assert complete(client, returned)["__typename"] == "InvalidOAuthState"
    client.cookies.set("authgraph_oauth", "x" * 43, path="/graphql")
    assert complete(client, returned)["__typename"] == "InvalidOAuthState"
    # The browser that started it still can: a foreign attempt does not spend it.
    client.cookies.clear()
    client.cookies.update(cookies)
    assert complete(client, returned)["__typename"] == "AuthPayload"


def test_unknown_and_expired_state_is_refused(client: TestClient) -> None:
    clock = controlled_clock(client)
    returned = at_provider(client, "alice")
    assert complete(client, {**returned, "state": "forged"})["__typename"] == "InvalidOAuthState"
    clock.now += timedelta(seconds=601)
    assert complete(client, returned)["__typename"] == "InvalidOAuthState"


def test_state_bound_to_its_redirect_uri_and_provider(client: TestClient) -> None:
    returned = at_provider(client, "alice")
    answer = complete(client, returned, redirect_uri=OTHER_REDIRECT_URI)
    assert answer["__typename"] == "InvalidOAuthState"
    assert complete(client, returned, provider="other")["__typename"] == "InvalidOAuthState"
    assert complete(client, returned)["__typename"] == "AuthPayload"


def test_code_without_its_pkce_verifier_is_useless(
    client: TestClient, provider: OidcProvider
) -> None:
    # A code stolen on its way back is worthless without the verifier, which never leaves
    # the server: the provider refuses it without one, and with another attempt's.
    returned = at_provider(client, "alice")
    stolen = httpx.post(
        f"{provider.issuer}/token",
        data={"grant_type": "authorization_code", "code": returned["code"]}
        | {"redirect_uri": REDIRECT_URI},
        auth=(CLIENT_ID, provider.settings().client_secret.reveal()),
        trust_env=False,
    )
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    # Injected into another attempt of the victim's (another verifier): refused too.
    victims = at_provider(client, "bob")
    attackers = at_provider(client, "alice")
    injected = complete(client, {"code": attackers["code"], "state": victims["state"]})
    assert injected["__typename"] == "InvalidOAuthState"


# -- the provider failing -------------------------------------------------------------------


def test_tampered_id_token_is_refused(client: TestClient, provider: OidcProvider) -> None:
    returned = at_provider(client, "alice")
    provider.proxy.fault = Fault("tamper", "/token")
    answer = complete(client, returned)
    assert answer["__typename"] == "OAuthProviderError"
    provider.proxy.fault = Fault()
    assert signup(client, email="victim@example.com")["__typename"] == "AuthPayload"


@pytest.mark.parametrize("kind", ["down", "garbage", "slow"])
def test_provider_failing_at_the_token_endpoint_answers_provider_error(
    make_client: MakeClient, mailbox: Mailbox, provider: OidcProvider, kind: str
) -> None:
    client = make_client(
        **mail_settings(mailbox.port), **_oauth_settings(provider, oauth_timeout_seconds=0.5)
    )
    returned = at_provider(client, "alice")
    provider.proxy.fault = Fault(kind, "/token", delay=1.5)
    answer = complete(client, returned)
    assert answer["__typename"] == "OAuthProviderError"
    # Nothing of the provider's answer reaches the client.
    assert answer["message"] == (
        "The sign-in provider could not be reached or answered unexpectedly. Try again."
    )


def test_discovery_failing_at_start_up_is_not_fatal_and_retried(
    make_client: MakeClient,
    mailbox: Mailbox,
    provider: OidcProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(auth.oauth_client, "DISCOVERY_RETRY_SECONDS", 0.0)
    provider.proxy.fault = Fault("down", "/.well-known")
    client = make_client(**mail_settings(mailbox.port), **_oauth_settings(provider))
    assert gql(client, PROVIDERS)["data"]["oauthProviders"] == [{"id": "acme", "name": "Acme ID"}]
    assert start(client)["__typename"] == "OAuthProviderError"
    provider.proxy.fault = Fault()
    assert start(client)["__typename"] == "OAuthRedirect"


def test_sign_in_at_provider_helper_stops_at_the_redirect(provider: OidcProvider) -> None:
    # The user agent the tests rely on really is sent back to the redirect URI with a code.
    client = ProviderClient(provider.settings(), timeout_seconds=5)
    url = client.authorization_url(
        redirect_uri=REDIRECT_URI, state="s", nonce="n", code_verifier=new_pkce_verifier()
    )
    returned = sign_in_at_provider(url, "alice")
    assert returned["state"] == "s"
    assert returned["code"]


def test_one_state_completed_twice_at_once_signs_in_exactly_once(client: TestClient) -> None:
    returned = at_provider(client, "alice")
    barrier = threading.Barrier(3)
    answers: list[str] = []

    def racer() -> None:
        barrier.wait()
        answers.append(complete(client, returned)["__typename"])

    racers = [threading.Thread(target=racer) for _ in range(3)]
    for thread in racers:
        thread.start()
    for thread in racers:
        thread.join()
    assert sorted(answers) == ["AuthPayload", "InvalidOAuthState", "InvalidOAuthState"]
