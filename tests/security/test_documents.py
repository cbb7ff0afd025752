"""Abusive documents and requests: size, depth, aliases, tokens, batches, methods, media types."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from tests.conftest import MakeClient
from tests.factories import DEFAULT_PASSWORD, SIGNUP, VIEWER, login, unique_email


def _messages(response_json: dict[str, object]) -> str:
    errors = response_json.get("errors") or []
    assert isinstance(errors, list)
    return " ".join(str(e["message"]) for e in errors)


def test_oversized_body_is_413_before_it_is_read(make_client: MakeClient) -> None:
    client = make_client(max_body_bytes=4096)
    padding = "x" * 5000
    response = client.post("/graphql", json={"query": VIEWER, "variables": {"pad": padding}})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert "4096" in _messages(response.json())


def test_oversized_chunked_body_is_413(make_client: MakeClient) -> None:
    # No Content-Length: the limit must count the bytes as they stream in.
    client = make_client(max_body_bytes=4096)

    def chunks() -> Iterator[bytes]:
        yield b'{"query": "{ viewer { id } }", "variables": {"pad": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}}'

    response = client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_body_under_the_limit_streamed_in_chunks_is_served(make_client: MakeClient) -> None:
    client = make_client(max_body_bytes=4096)

    def chunks() -> Iterator[bytes]:
        yield b'{"query": "{ viewer'
        yield b' { id } }"}'

    response = client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": None}}


def test_oversized_signup_on_token_route_is_413_too(make_client: MakeClient) -> None:
    client = make_client(max_body_bytes=4096)
    response = client.post("/token", data={"username": "a@b.co", "password": "p" * 10_000})
    assert response.status_code == 413


def test_deeply_nested_document_is_refused(client: httpx.Client) -> None:
    depth = 40
    query = "{ viewer " + "{ sessions " * depth + "{ id }" + " }" * (depth + 1)
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 400
    assert "exceeds maximum operation depth" in _messages(response.json())


def test_depth_limit_follows_its_setting(make_client: MakeClient) -> None:
    client = make_client(max_query_depth=3)
    response = client.post("/graphql", json={"query": "{ viewer { sessions { id { a { b } } } } }"})
    assert response.status_code == 400
    assert "exceeds maximum operation depth of 3" in _messages(response.json())


def test_pathologically_nested_document_is_refused_without_a_crash(client: httpx.Client) -> None:
    # Thousands of levels: the parser stops (token or nesting limit) before any recursion error.
    query = "{ a " * 3000 + "}" * 3000
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 400
    assert "Parsing aborted" in _messages(response.json())


def test_too_many_tokens_is_refused(client: httpx.Client) -> None:
    query = "{ viewer { " + "id " * 1200 + "} }"
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 400
    assert "tokens" in _messages(response.json())


def test_too_many_aliases_is_refused(client: httpx.Client) -> None:
    query = "{ " + " ".join(f"v{i}: viewer {{ id }}" for i in range(16)) + " }"
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 400
    assert "aliases" in _messages(response.json())


def test_batched_array_is_refused_and_nothing_runs(client: httpx.Client) -> None:
    email = unique_email()
    operation = {"query": SIGNUP, "variables": {"email": email, "password": DEFAULT_PASSWORD}}
    response = client.post("/graphql", json=[operation, operation])
    assert response.status_code == 400
    assert "must be a JSON object" in _messages(response.json())
    assert login(client, email)["__typename"] == "InvalidCredentials"


def test_mutation_over_get_is_refused_and_nothing_runs(client: httpx.Client) -> None:
    email = unique_email()
    query = (
        f'mutation {{ signup(input: {{email: "{email}", password: "{DEFAULT_PASSWORD}"}}) '
        "{ __typename } }"
    )
    response = client.get("/graphql", params={"query": query})
    assert 400 <= response.status_code < 500
    assert response.json()["errors"]
    assert login(client, email)["__typename"] == "InvalidCredentials"


def test_non_json_post_bodies_are_415_and_nothing_runs(client: httpx.Client) -> None:
    email = unique_email()
    query = (
        f'mutation {{ signup(input: {{email: "{email}", password: "{DEFAULT_PASSWORD}"}}) '
        "{ __typename } }"
    )
    attempts = [
        # What a cross-site <form> or a CORS "simple request" can send.
        {"content": '{"query": "' + query.replace('"', '\\"') + '"}', "content_type": "text/plain"},
        {"content": "query=" + query, "content_type": "application/x-www-form-urlencoded"},
        {"content": query, "content_type": "application/graphql"},
        {"content": "{}", "content_type": "application/json-patch+json"},
    ]
    for attempt in attempts:
        response = client.post(
            "/graphql",
            content=attempt["content"],
            headers={"content-type": attempt["content_type"]},
        )
        assert response.status_code == 415, attempt["content_type"]
        assert response.json()["errors"]
    multipart = client.post("/graphql", files={"operations": ("o.json", b"{}")})
    assert multipart.status_code == 415
    assert login(client, email)["__typename"] == "InvalidCredentials"


def test_json_with_charset_is_accepted(client: httpx.Client) -> None:
    response = client.post(
        "/graphql",
        content='{"query": "{ viewer { id } }"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200
