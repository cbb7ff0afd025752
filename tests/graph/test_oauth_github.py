"""The github preset over HTTP, against a local imitation of GitHub's endpoints.

GitHub is OAuth 2 without OpenID Connect: the subject is the numeric user id from its
``/user`` API and the email its primary address from ``/user/emails``, trusted for linking
only when GitHub says it is verified. tests/github_imitation.py stands in for GitHub.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from auth.config import Secret
from auth.settings import OAuthProviderSettings
from tests.conftest import MakeClient
from tests.factories import gql, signup
from tests.github_imitation import CLIENT_ID, CLIENT_SECRET, GitHubImitation, GitHubUser
from tests.github_imitation import github_imitation as run_imitation
from tests.oauth import COMPLETE, PROVIDERS, complete, start
from tests.oidc import REDIRECT_URI
from tests.provider_imitation import Bystander

PROVIDER_ERROR = "The sign-in provider could not be reached or answered unexpectedly. Try again."
GITHUB_FAULTS = ("error", "garbage", "wrong-shape", "hang", "redirect")
GITHUB_PATHS = ("/login/oauth/access_token", "/user", "/user/emails")


@pytest.fixture(scope="module")
def bystander() -> Iterator[Bystander]:
    served = Bystander()
    yield served
    served.stop()


@pytest.fixture
def github(bystander: Bystander) -> Iterator[GitHubImitation]:
    bystander.requests.clear()
    with run_imitation() as imitation:
        imitation.elsewhere = bystander.url
        imitation.users = {
            "octocat": GitHubUser(
                583231,
                "octocat",
                [("old@example.com", False, True), ("octocat@example.com", True, True)],
            ),
            "unverified": GitHubUser(9001, "unverified", [("unver@example.com", True, False)]),
        }
        yield imitation


@pytest.fixture
def client(make_client: MakeClient, github: GitHubImitation) -> TestClient:
    provider = OAuthProviderSettings(
        id="github",
        kind="github",
        issuer=github.url,
        api_url=github.url,
        client_id=CLIENT_ID,
        client_secret=Secret(CLIENT_SECRET),
    )
    return make_client(
        oauth_providers=(provider,),
        oauth_redirect_uris=(REDIRECT_URI,),
        # Short, for the imitation's hanging answers; loopback answers well within it.
        oauth_timeout_seconds=0.5,
    )


def _at_github(client: TestClient, github: GitHubImitation, login: str) -> dict[str, str]:
    github.signed_in = login
    started = start(client, provider="github")
    assert started["__typename"] == "OAuthRedirect", started
    url = urlsplit(started["authorizationUrl"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{github.url}/login/oauth/authorize"
    assert query["scope"] == "read:user user:email"
    assert "nonce" not in query  # no OpenID Connect here
    back = httpx.get(started["authorizationUrl"], follow_redirects=False, trust_env=False)
    assert back.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(back.headers["location"]).query).items()}


def test_github_preset_is_listed_with_its_label(client: TestClient) -> None:
    assert gql(client, PROVIDERS)["data"]["oauthProviders"] == [{"id": "github", "name": "GitHub"}]


def test_github_sign_up_uses_the_numeric_id_and_primary_verified_email(
    client: TestClient, github: GitHubImitation
) -> None:
    signed_in = complete(client, _at_github(client, github, "octocat"), provider="github")
    assert signed_in["__typename"] == "AuthPayload", signed_in
    assert signed_in["user"]["email"] == "octocat@example.com"
    assert signed_in["user"]["emailVerified"] is True
    # The same GitHub user again, even after a change of email there: the same account.
    github.users["octocat"].emails = [("renamed@example.com", True, True)]
    again = complete(client, _at_github(client, github, "octocat"), provider="github")
    assert again["user"]["id"] == signed_in["user"]["id"]


def test_github_unverified_primary_email_is_not_trusted(
    client: TestClient, github: GitHubImitation
) -> None:
    signup(client, email="unver@example.com")
    answer = complete(client, _at_github(client, github, "unverified"), provider="github")
    assert answer["__typename"] == "AccountLinkRequired"


def test_github_bad_verification_code_is_an_invalid_attempt(
    client: TestClient, github: GitHubImitation
) -> None:
    returned = _at_github(client, github, "octocat")
    answer = complete(client, {**returned, "code": "not-a-code"}, provider="github")
    assert answer["__typename"] == "InvalidOAuthState"


# PostgreSQL only: the database plays no part in how a failing provider is answered.
@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("fault", GITHUB_FAULTS)
@pytest.mark.parametrize("path", GITHUB_PATHS)
def test_github_endpoint_failing_gives_provider_error_with_no_detail(
    client: TestClient,
    github: GitHubImitation,
    bystander: Bystander,
    caplog: pytest.LogCaptureFixture,
    path: str,
    fault: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="authgraph.oauth")
    returned = _at_github(client, github, "octocat")
    github.faults[path] = fault
    response = client.post(
        "/graphql",
        json={
            "query": COMPLETE,
            "variables": {"provider": "github", **returned, "redirectUri": REDIRECT_URI},
        },
    )
    body = response.json()
    assert body["data"]["completeOAuthSignIn"] == {
        "__typename": "OAuthProviderError",
        "message": PROVIDER_ERROR,
    }, body
    assert github.marker not in response.text
    assert github.marker not in caplog.text
    assert "OAuth provider github" in caplog.text
    # The faulty path was asked, and a redirect was not followed.
    assert any(r.split(" ")[1].startswith(path) for r in github.requests)
    assert bystander.requests == []
    github.release.set()


@pytest.mark.parametrize(
    "emails",
    [
        [("nobody@example.com", True, False)],
        [("primary@example.com", True, False), ("secondary@example.com", False, True)],
        [],
    ],
    ids=["unverified primary", "only a secondary verified", "no email"],
)
def test_github_without_a_verified_primary_email_creates_no_account(
    client: TestClient, github: GitHubImitation, emails: list[tuple[str, bool, bool]]
) -> None:
    github.users["someone"] = GitHubUser(4242, "someone", emails)
    answer = complete(client, _at_github(client, github, "someone"), provider="github")
    assert answer["__typename"] == "OAuthEmailNotVerified", answer
    state = client.app.state.authgraph  # type: ignore[attr-defined]
    with state.database() as database:
        users = state.unit_of_work(database).users
        assert all(users.get_by_email(address) is None for address, _, _ in emails)
    # Once GitHub has verified the primary address, the same GitHub user signs up.
    github.users["someone"].emails = [("someone@example.com", True, True)]
    again = complete(client, _at_github(client, github, "someone"), provider="github")
    assert again["__typename"] == "AuthPayload", again
