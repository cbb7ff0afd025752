from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import DEFAULT_PASSWORD, VIEWER, gql, signup, unique_email


def test_token_with_good_form_returns_bearer(client: TestClient) -> None:
    email = unique_email()
    created = signup(client, email=email)
    response = client.post("/token", data={"username": email.upper(), "password": DEFAULT_PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert response.headers["cache-control"] == "no-store"
    viewer = gql(client, VIEWER, token=body["access_token"])["data"]["viewer"]
    assert viewer["id"] == created["user"]["id"]


def test_token_with_bad_credentials_is_401(client: TestClient) -> None:
    email = unique_email()
    signup(client, email=email)
    wrong = client.post("/token", data={"username": email, "password": "nope nope nope"})
    unknown = client.post("/token", data={"username": unique_email(), "password": "nope nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == "Bearer"


def test_token_without_form_fields_is_422(client: TestClient) -> None:
    response = client.post("/token", data={"username": "x@example.com"})
    assert response.status_code == 422


def test_healthz_is_ok(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reflects_database(client: TestClient) -> None:
    healthy = client.get("/readyz")
    assert healthy.status_code == 200
    assert healthy.json()["database_writable"] is True
    state = client.app.state.authgraph  # type: ignore[attr-defined]
    from sqlalchemy import create_engine

    state.session_factory.configure(bind=create_engine("sqlite:////nonexistent/dir/x.db"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["database"] is False
    assert response.json()["database_writable"] is False


def test_openapi_docs_list_token_route(client: TestClient) -> None:
    assert "/token" in client.get("/openapi.json").json()["paths"]
