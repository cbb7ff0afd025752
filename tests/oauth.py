"""Social sign-in helpers for tests: the GraphQL operations and one whole provider round trip."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.factories import mutate
from tests.oidc import REDIRECT_URI, sign_in_at_provider

START = """
mutation Start($provider: ID!, $redirectUri: String!, $intent: OAuthIntent) {
  startOAuthSignIn(input: {provider: $provider, redirectUri: $redirectUri, intent: $intent}) {
    __typename
    ... on OAuthRedirect { authorizationUrl expiresAt }
    ... on ValidationError { field }
    ... on Error { message }
  }
}
"""

_INPUT = "(input: {provider: $provider, code: $code, state: $state, redirectUri: $redirectUri})"
_VARIABLES = "($provider: ID!, $code: String!, $state: String!, $redirectUri: String!)"

COMPLETE = f"""
mutation Complete{_VARIABLES} {{
  completeOAuthSignIn{_INPUT} {{
    __typename
    ... on AuthPayload {{ accessToken refreshToken user {{ id email emailVerified }} }}
    ... on MfaRequired {{ mfaToken methods }}
    ... on AccountLinkRequired {{ email }}
    ... on Error {{ message }}
  }}
}}
"""

LINK = f"""
mutation Link{_VARIABLES} {{
  linkIdentity{_INPUT} {{
    __typename
    ... on IdentityLinked {{ identity {{ id provider email linkedAt lastUsedAt }} }}
    ... on Error {{ message }}
  }}
}}
"""

UNLINK = """
mutation Unlink($id: ID!) {
  unlinkIdentity(id: $id) {
    __typename
    ... on IdentityUnlinked { unlinkedIdentityId }
    ... on Error { message }
  }
}
"""

PROVIDERS = "{ oauthProviders { id name } }"
IDENTITIES = """
{ viewer {
  id email emailVerified hasPassword identities { id provider email linkedAt lastUsedAt }
} }
"""

Client = TestClient | httpx.Client


def start(
    client: Client,
    *,
    provider: str = "acme",
    redirect_uri: str = REDIRECT_URI,
    intent: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    variables: dict[str, Any] = {"provider": provider, "redirectUri": redirect_uri}
    if intent is not None:
        variables["intent"] = intent
    return mutate(client, START, variables, token=token)


def complete(
    client: Client,
    returned: dict[str, str],
    *,
    provider: str = "acme",
    redirect_uri: str = REDIRECT_URI,
    query: str = COMPLETE,
    token: str | None = None,
) -> dict[str, Any]:
    variables = {
        "provider": provider,
        "code": returned.get("code", ""),
        "state": returned.get("state", ""),
        "redirectUri": redirect_uri,
    }
    return mutate(client, query, variables, token=token)


def at_provider(
    client: Client,
    login: str,
    *,
    provider: str = "acme",
    intent: str | None = None,
    token: str | None = None,
    user_agent: Callable[[str, str], dict[str, str]] = sign_in_at_provider,
) -> dict[str, str]:
    """Start a sign-in and go through the provider's pages as ``login``: the code and state."""
    started = start(client, provider=provider, intent=intent, token=token)
    assert started["__typename"] == "OAuthRedirect", started
    return user_agent(started["authorizationUrl"], login)


def sign_in(client: Client, login: str, *, provider: str = "acme", **kw: Any) -> dict[str, Any]:
    """The whole round trip: start, the provider's pages, complete."""
    returned = at_provider(client, login, provider=provider, **kw)
    return complete(client, returned, provider=provider)
