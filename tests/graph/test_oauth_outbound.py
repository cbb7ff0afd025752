"""Where authgraph's calls to a provider go, and what a misbehaving provider gets back.

Against tests/provider_imitation.py (a local OpenID provider imitation that can redirect,
hang, answer 500 or garbage, name another issuer or hand out an ID token whose header points
elsewhere) and its bystander (an address that is not the provider's, which counts what it is
asked): calls go only to the provider's discovered endpoints, never follow a redirect, a
``jku``/``x5u``/embedded ``jwk`` or an HTTP(S)_PROXY variable; every failure is
``OAuthProviderError`` with the one fixed message, nothing of the provider's body in the
answer or the log. PostgreSQL only: the database plays no part in any of it.
"""

from __future__ import annotations

import logging
import tracemalloc
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient

from tests.conftest import MakeClient
from tests.oauth import COMPLETE
from tests.oidc import REDIRECT_URI
from tests.provider_imitation import (
    ATTACKER_KEY,
    ATTACKER_KID,
    COMPRESSED,
    DISCOVERY,
    EMAIL,
    FAULTS,
    KEY,
    KID,
    STREAM_BYTES,
    STREAMS,
    ProviderImitation,
    claims,
    gzip_bomb,
    provider_imitation,
    public_jwk,
)

PROVIDER_ERROR = "The sign-in provider could not be reached or answered unexpectedly. Try again."
TIMEOUT_SECONDS = 0.5
ENDPOINTS = {"discovery": DISCOVERY, "token": "/token", "jwks": "/jwks", "userinfo": "/userinfo"}
PROXY_VARIABLES: tuple[str, ...] = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
PROXY_VARIABLES += tuple(name.lower() for name in PROXY_VARIABLES)


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture(scope="module")
def served() -> Iterator[ProviderImitation]:
    with provider_imitation() as imitation:
        yield imitation


@pytest.fixture
def imitation(served: ProviderImitation) -> Iterator[ProviderImitation]:
    served.reset()
    yield served
    served.reset()


def _client(make_client: MakeClient, imitation: ProviderImitation) -> TestClient:
    return make_client(
        oauth_providers=(imitation.settings(),),
        oauth_redirect_uris=(REDIRECT_URI,),
        oauth_timeout_seconds=TIMEOUT_SECONDS,
    )


def _sign_in(client: TestClient, imitation: ProviderImitation) -> tuple[httpx.Response, str]:
    """Start, then complete with any code (the imitation takes every one): the raw answer
    of the completion (or of the start, if it failed) and its typename."""
    response = client.post(
        "/graphql",
        json={
            "query": "mutation($p: ID!, $r: String!) { startOAuthSignIn(input: "
            "{provider: $p, redirectUri: $r}) { __typename ... on OAuthRedirect "
            "{ authorizationUrl } ... on Error { message } } }",
            "variables": {"p": "imit", "r": REDIRECT_URI},
        },
    )
    started = response.json()["data"]["startOAuthSignIn"]
    if started["__typename"] != "OAuthRedirect":
        return response, str(started["__typename"])
    query = {k: v[0] for k, v in parse_qs(urlsplit(started["authorizationUrl"]).query).items()}
    imitation.nonce = query["nonce"]
    variables = {"provider": "imit", "code": "any", "state": query["state"]}
    response = client.post(
        "/graphql",
        json={"query": COMPLETE, "variables": {**variables, "redirectUri": REDIRECT_URI}},
    )
    return response, str(response.json()["data"]["completeOAuthSignIn"]["__typename"])


def _refused_with_no_detail(
    response: httpx.Response, imitation: ProviderImitation, caplog: pytest.LogCaptureFixture
) -> None:
    body = response.json()
    assert not body.get("errors"), body
    (result,) = body["data"].values()
    assert result == {"__typename": "OAuthProviderError", "message": PROVIDER_ERROR}
    assert imitation.marker not in response.text
    assert imitation.marker not in caplog.text
    # The reason is logged (for the operator), without the provider's words.
    assert "OAuth provider imit" in caplog.text


def test_a_sign_in_through_the_imitation_works_and_asks_only_the_provider(
    make_client: MakeClient, imitation: ProviderImitation
) -> None:
    client = _client(make_client, imitation)
    response, kind = _sign_in(client, imitation)
    assert kind == "AuthPayload", response.text
    assert response.json()["data"]["completeOAuthSignIn"]["user"]["email"] == EMAIL
    # Each endpoint the flow needs (userinfo too: the ID token has no email), nothing else.
    assert sorted(set(imitation.paths())) == sorted(ENDPOINTS.values())
    assert imitation.bystander.requests == []


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_faulty_endpoint_gives_provider_error_with_no_detail(
    make_client: MakeClient,
    imitation: ProviderImitation,
    caplog: pytest.LogCaptureFixture,
    endpoint: str,
    fault: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="authgraph.oauth")
    imitation.faults[ENDPOINTS[endpoint]] = fault
    client = _client(make_client, imitation)
    response, kind = _sign_in(client, imitation)
    assert kind == "OAuthProviderError", response.text
    _refused_with_no_detail(response, imitation, caplog)
    # The faulty endpoint was asked (the refusal is its doing), and a redirect not followed.
    assert ENDPOINTS[endpoint] in imitation.paths()
    assert imitation.bystander.requests == []


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("endpoint", ["token", "jwks"])
def test_an_endless_or_dripping_answer_is_cut_off(
    make_client: MakeClient,
    imitation: ProviderImitation,
    caplog: pytest.LogCaptureFixture,
    endpoint: str,
    stream: str,
) -> None:
    # Every read comes within the timeout (the drip) or at once (endless): the timeout per
    # read alone would wait for the end, and read the whole body before judging its size.
    caplog.set_level(logging.WARNING, logger="authgraph.oauth")
    imitation.faults[ENDPOINTS[endpoint]] = stream
    client = _client(make_client, imitation)
    response, kind = _sign_in(client, imitation)
    assert kind == "OAuthProviderError", response.text
    _refused_with_no_detail(response, imitation, caplog)
    assert imitation.streamed.wait(30)
    # authgraph hung up before the end of the answer, well before 64 MB.
    assert imitation.cut_off
    assert imitation.sent < STREAM_BYTES // 4


def test_a_gzip_compressed_provider_signs_in(
    make_client: MakeClient, imitation: ProviderImitation
) -> None:
    imitation.compress = True
    client = _client(make_client, imitation)
    response, kind = _sign_in(client, imitation)
    assert kind == "AuthPayload", response.text
    # Every call asked for only what the client inflates itself.
    assert imitation.accepted_encodings
    assert set(imitation.accepted_encodings) == {"identity, gzip"}


@pytest.mark.parametrize("fault", COMPRESSED)
@pytest.mark.parametrize("endpoint", ["token", "jwks"])
def test_a_gzip_bomb_or_an_unasked_for_encoding_is_refused_uninflated(
    make_client: MakeClient,
    imitation: ProviderImitation,
    caplog: pytest.LogCaptureFixture,
    endpoint: str,
    fault: str,
) -> None:
    # 64 KB of gzip on the wire inflates to 64 MB: httpx's own decoder inflates a whole chunk
    # at once, so the size limit alone would come after the memory was spent.
    caplog.set_level(logging.WARNING, logger="authgraph.oauth")
    imitation.faults[ENDPOINTS[endpoint]] = fault
    client = _client(make_client, imitation)
    gzip_bomb()  # made before the measurement: the imitation runs in this process
    tracemalloc.start()
    try:
        response, kind = _sign_in(client, imitation)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kind == "OAuthProviderError", response.text
    _refused_with_no_detail(response, imitation, caplog)
    assert peak < 16 * 1024 * 1024, peak


def test_discovery_naming_another_issuer_is_refused(
    make_client: MakeClient, imitation: ProviderImitation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="authgraph.oauth")
    imitation.announced_issuer = imitation.bystander.url
    client = _client(make_client, imitation)
    response, kind = _sign_in(client, imitation)
    assert kind == "OAuthProviderError"
    _refused_with_no_detail(response, imitation, caplog)
    assert "names another issuer" in caplog.text
    # Refused at discovery: neither the provider's other endpoints nor the one named asked.
    assert set(imitation.paths()) == {DISCOVERY}
    assert imitation.bystander.requests == []


ODD_DISCOVERY: dict[str, dict[str, Any]] = {
    "algorithms a number": {"id_token_signing_alg_values_supported": 5},
    "algorithms of numbers": {"id_token_signing_alg_values_supported": [5, None]},
    "only none and HS256": {"id_token_signing_alg_values_supported": ["none", "HS256"]},
    "token endpoint a number": {"token_endpoint": 5},
    "jwks_uri missing": {"jwks_uri": None},
    "userinfo on another scheme": {"userinfo_endpoint": "file:///etc/passwd"},
    "authorization endpoint with no host": {"authorization_endpoint": "http:///auth"},
}


@pytest.mark.parametrize("case", sorted(ODD_DISCOVERY))
def test_an_unusable_discovery_document_is_refused(
    make_client: MakeClient, imitation: ProviderImitation, case: str
) -> None:
    imitation.discovery_changes.update(ODD_DISCOVERY[case])
    client = _client(make_client, imitation)
    _, kind = _sign_in(client, imitation)
    assert kind == "OAuthProviderError"
    assert set(imitation.paths()) == {DISCOVERY}


def _with_header(key: Any, kid: str, **header: Any) -> Any:
    return lambda issuer, nonce: jwt.encode(
        claims(issuer, nonce), key, algorithm="RS256", headers={"kid": kid, **header}
    )


@pytest.mark.filterwarnings("ignore:The RSA key is 1024 bits long")
@pytest.mark.parametrize("member", ["jku", "x5u", "jwk"])
def test_id_token_header_pointing_elsewhere_is_not_fetched(
    make_client: MakeClient, imitation: ProviderImitation, member: str
) -> None:
    elsewhere = f"{imitation.bystander.url}/jwks"
    value = public_jwk(ATTACKER_KEY, ATTACKER_KID) if member == "jwk" else elsewhere
    client = _client(make_client, imitation)
    # Signed by the attacker's key, which only the header leads to: refused.
    imitation.forge = _with_header(ATTACKER_KEY, ATTACKER_KID, **{member: value})
    _, kind = _sign_in(client, imitation)
    assert kind == "OAuthProviderError"
    # Signed by the provider's own key: the header is ignored, the token verifies.
    imitation.forge = _with_header(KEY, KID, **{member: value})
    response, kind = _sign_in(client, imitation)
    assert kind == "AuthPayload", response.text
    assert imitation.bystander.requests == []


def test_proxy_variables_are_not_used_for_provider_calls(
    make_client: MakeClient, imitation: ProviderImitation, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, imitation.bystander.url)
    # The test client's own host is not proxied; the provider's loopback address would be.
    monkeypatch.setenv("NO_PROXY", "testserver")
    monkeypatch.setenv("no_proxy", "testserver")
    # The variables do take effect for a client that reads them ...
    with httpx.Client() as trusting:
        trusting.get(f"{imitation.url}{DISCOVERY}")
    assert imitation.bystander.requests == [f"GET {imitation.url}{DISCOVERY}"]
    imitation.bystander.requests.clear()
    # ... but not for authgraph's: discovery, token, JWKS and userinfo go straight there.
    client = _client(make_client, imitation)
    response, kind = _sign_in(client, imitation)
    assert kind == "AuthPayload", response.text
    assert sorted(set(imitation.paths())) == sorted(ENDPOINTS.values())
    assert imitation.bystander.requests == []
