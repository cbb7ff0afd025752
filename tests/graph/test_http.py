"""Bad HTTP input gets a 4xx with a JSON body; unexpected failures are masked and logged."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from fastapi.testclient import TestClient

from graph.app import create_app
from graph.settings import Settings
from tests.conftest import GRAPHQL_PATHS
from tests.factories import VIEWER, gql

# Through the lean path and through Strawberry's full pipeline (tests/conftest.py).
pytestmark = pytest.mark.parametrize("graphql_path", GRAPHQL_PATHS)


def _assert_json_error(response_status: int, body: object, status: int) -> None:
    assert response_status == status
    assert isinstance(body, dict)
    assert body["errors"][0]["message"]


def test_post_malformed_json_is_400_json(client: TestClient) -> None:
    response = client.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    _assert_json_error(response.status_code, response.json(), 400)


def test_post_unknown_field_is_400_json(client: TestClient) -> None:
    response = client.post("/graphql", json={"query": "{ viewer { passwordHash } }"})
    _assert_json_error(response.status_code, response.json(), 400)
    assert "passwordHash" in response.json()["errors"][0]["message"]


def test_post_syntax_error_is_400_json(client: TestClient) -> None:
    response = client.post("/graphql", json={"query": "{ viewer { "})
    _assert_json_error(response.status_code, response.json(), 400)


def test_post_wrong_variable_type_is_400_json(client: TestClient) -> None:
    response = client.post(
        "/graphql",
        json={
            "query": 'mutation($e: String!) { login(input: {email: $e, password: "x"}) { '
            "__typename } }",
            "variables": {"e": 12},
        },
    )
    _assert_json_error(response.status_code, response.json(), 400)


def test_post_unknown_input_field_is_400_json(client: TestClient) -> None:
    response = client.post(
        "/graphql",
        json={
            "query": "mutation($i: LoginInput!) { login(input: $i) { __typename } }",
            "variables": {"i": {"email": "a@b.co", "password": "x", "admin": True}},
        },
    )
    _assert_json_error(response.status_code, response.json(), 400)


def test_get_mutation_is_refused(client: TestClient) -> None:
    response = client.get(
        "/graphql",
        params={
            "query": 'mutation { login(input: {email: "a@b.co", password: "x"}) { __typename } }'
        },
    )
    assert 400 <= response.status_code < 500
    assert response.json()["errors"]


def test_get_query_is_allowed(client: TestClient) -> None:
    response = client.get("/graphql", params={"query": VIEWER})
    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": None}}


def test_post_missing_query_is_400_json(client: TestClient) -> None:
    response = client.post("/graphql", json={"variables": {}})
    _assert_json_error(response.status_code, response.json(), 400)


def test_unexpected_error_is_masked_and_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Break the database under the running app: the resolver's failure is not the client's.
    state = client.app.state.authgraph  # type: ignore[attr-defined]
    state.reader = _broken_engine()
    state.session_factory.configure(bind=_broken_engine())
    body = gql(client, VIEWER, headers={"Authorization": "Bearer " + _valid_looking_token(client)})
    assert body["data"] == {"viewer": None}
    message = body["errors"][0]["message"]
    assert message == "Unexpected error."
    assert "sqlite" not in str(body).lower()
    assert "Traceback" not in str(body)
    assert "unexpected error in viewer" in caplog.text


def _broken_engine() -> object:
    from sqlalchemy import create_engine

    return create_engine("sqlite:////nonexistent-dir/definitely/missing.db")


def _valid_looking_token(client: TestClient) -> str:
    state = client.app.state.authgraph  # type: ignore[attr-defined]
    from datetime import UTC, datetime

    token: str = state.toolkit.tokens.issue(
        user_id="u", session_id="s", now=datetime.now(UTC)
    ).token
    return token


def test_get_docs_in_development_is_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    page = client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


@pytest.mark.parametrize(
    "overrides",
    [{"env": "production", "smtp": None}, {"api_docs": False, "graphiql": False}],
    ids=["production default", "turned off"],
)
def test_get_docs_and_graphiql_when_off_are_404(
    make_client: Any, overrides: dict[str, Any]
) -> None:
    client = make_client(**overrides)
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").status_code == 404
    page = client.get("/graphql", headers={"accept": "text/html"})
    assert "graphiql" not in page.text.lower()
    assert page.status_code in {400, 404}
    # The API itself still answers.
    assert client.post("/graphql", json={"query": "{ __typename }"}).json() == {
        "data": {"__typename": "Query"}
    }


def test_serving_app_freezes_what_start_up_built_until_it_stops(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        # Start-up's objects are out of the collector's walks while the app serves.
        assert gc.get_freeze_count() > 10_000
        assert client.post("/graphql", json={"query": "{ __typename }"}).status_code == 200
    assert gc.get_freeze_count() == 0  # the lifespan ended: collectable again
