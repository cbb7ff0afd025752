"""The reference servers must do the work authgraph does, or the ratios mean nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette

from bench.references import raw_floor, same_layer
from graph.app import create_app
from graph.settings import Settings
from tests.factories import LOGOUT, VIEWER, error_codes, gql, signup

REFERENCES = [pytest.param(raw_floor, id="raw-floor"), pytest.param(same_layer, id="same-layer")]


@pytest.fixture
def environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The references read settings from the environment, as ``authgraph serve`` does."""
    monkeypatch.setenv("DATABASE_URL", settings.database.database_url)
    monkeypatch.setenv("JWT_SECRET", settings.auth.jwt_secret.reveal())
    assert settings.auth.key_encryption_key is not None
    monkeypatch.setenv("KEY_ENCRYPTION_KEY", settings.auth.key_encryption_key.reveal())
    monkeypatch.setenv("AUTHGRAPH_ENV_FILE", "/nonexistent/.env")
    return settings


@pytest.fixture
def authgraph(environment: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(environment)) as client:
        yield client


@pytest.mark.parametrize("make_reference", REFERENCES)
def test_reference_answers_viewer_like_authgraph(
    authgraph: TestClient, make_reference: Callable[[], Starlette]
) -> None:
    account = signup(authgraph)
    with TestClient(make_reference()) as reference:
        ours = gql(authgraph, VIEWER, token=account["accessToken"])
        theirs = gql(reference, VIEWER, token=account["accessToken"])
    assert theirs == ours
    assert theirs["data"]["viewer"]["email"] == account["user"]["email"]


@pytest.mark.parametrize("make_reference", REFERENCES)
def test_reference_refuses_revoked_session_and_forged_token(
    authgraph: TestClient, make_reference: Callable[[], Starlette]
) -> None:
    account = signup(authgraph)
    gql(authgraph, LOGOUT, {"scope": "CURRENT"}, token=account["accessToken"])
    forged = account["accessToken"].rsplit(".", 1)[0] + "." + "A" * 43
    with TestClient(make_reference()) as reference:
        for token in (account["accessToken"], forged):
            body = gql(reference, VIEWER, token=token)
            assert body["data"] == {"viewer": None}
            assert error_codes(body) == ["UNAUTHENTICATED"]
