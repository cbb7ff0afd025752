"""Passkey helpers for tests: the mutations, and registering or signing in with a
:class:`tests.authenticator.SoftAuthenticator` over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.authenticator import Credential, SoftAuthenticator
from tests.factories import mutate

Client = TestClient | httpx.Client

START_REGISTRATION = """
mutation Start($name: String) {
  startPasskeyRegistration(input: {name: $name}) {
    __typename
    ... on PasskeyOptions { ceremonyId publicKeyJson expiresAt }
    ... on TooManyPasskeys { limit }
    ... on Error { message }
  }
}
"""

FINISH_REGISTRATION = """
mutation Finish($id: ID!, $credential: String!) {
  finishPasskeyRegistration(input: {ceremonyId: $id, credential: $credential}) {
    __typename
    ... on PasskeyAdded { passkey { id name createdAt lastUsedAt backedUp } }
    ... on Error { message }
  }
}
"""

START_LOGIN = """
mutation Start($email: String) {
  startPasskeyLogin(input: {email: $email}) {
    __typename
    ... on PasskeyOptions { ceremonyId publicKeyJson expiresAt }
    ... on Error { message }
  }
}
"""

FINISH_LOGIN = """
mutation Finish($id: ID!, $credential: String!) {
  finishPasskeyLogin(input: {ceremonyId: $id, credential: $credential}) {
    __typename
    ... on AuthPayload { accessToken refreshToken user { id email hasPassword } }
    ... on Error { message }
  }
}
"""

RENAME = """
mutation Rename($id: ID!, $name: String!) {
  renamePasskey(input: {id: $id, name: $name}) {
    __typename
    ... on PasskeyRenamed { passkey { id name } }
    ... on ValidationError { field }
    ... on Error { message }
  }
}
"""

REMOVE = """
mutation Remove($id: ID!) {
  removePasskey(id: $id) {
    __typename
    ... on PasskeyRemoved { removedPasskeyId }
    ... on Error { message }
  }
}
"""

PASSKEYS = "{ viewer { id passkeys { id name createdAt lastUsedAt backedUp } } }"

SIGN_IN_METHODS = "{ signInMethods { password passkeys emailCodes mfa } }"


def start_registration(client: Client, token: str, name: str | None = None) -> dict[str, Any]:
    return mutate(client, START_REGISTRATION, {"name": name}, token=token)


def finish_registration(
    client: Client, token: str, ceremony_id: str, credential: str
) -> dict[str, Any]:
    return mutate(
        client, FINISH_REGISTRATION, {"id": ceremony_id, "credential": credential}, token=token
    )


def register(
    client: Client, token: str, authenticator: SoftAuthenticator, name: str | None = None
) -> tuple[dict[str, Any], Credential]:
    """Register a passkey for the signed-in user: the stored passkey and the key held."""
    options = start_registration(client, token, name)
    assert options["__typename"] == "PasskeyOptions", options
    answer, credential = authenticator.create(options["publicKeyJson"])
    added = finish_registration(client, token, options["ceremonyId"], answer)
    assert added["__typename"] == "PasskeyAdded", added
    return added["passkey"], credential


def start_login(client: Client, email: str | None = None) -> dict[str, Any]:
    options = mutate(client, START_LOGIN, {"email": email})
    assert options["__typename"] == "PasskeyOptions", options
    return options


def finish_login(client: Client, ceremony_id: str, credential: str) -> dict[str, Any]:
    return mutate(client, FINISH_LOGIN, {"id": ceremony_id, "credential": credential})


def passkey_login(
    client: Client, authenticator: SoftAuthenticator, email: str | None = None, **answer: Any
) -> dict[str, Any]:
    """Start a login, answer it with ``authenticator``, and return ``finishPasskeyLogin``."""
    options = start_login(client, email)
    credential = authenticator.get(options["publicKeyJson"], **answer)
    return finish_login(client, options["ceremonyId"], credential)
