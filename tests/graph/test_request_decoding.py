"""Requests wrong below GraphQL (bytes, JSON shape, nesting, numbers) get a 400 JSON error.

Each case also checks that the next well-formed request is answered as usual. Every test runs
on three targets: the app in process on SQLite and on PostgreSQL, and the suite's shared real
``authgraph serve`` (``server``), whose log is checked for exceptions and 5xx at the end.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from graph.request_json import MAX_JSON_DEPTH
from tests.conftest import GRAPHQL_PATHS, MakeClient
from tests.factories import gql, signup

# Through the lean path and through Strawberry's full pipeline (tests/conftest.py).
pytestmark = pytest.mark.parametrize("graphql_path", GRAPHQL_PATHS)

JSON_HEADERS = {"content-type": "application/json"}
DEEP = 10_000
# A document that uses its variable, so only the JSON can make it fail.
USES_V = "query($v: String!) { __type(name: $v) { name } }"


@pytest.fixture(params=["sqlite", "postgresql", "server"])
def backend(request: pytest.FixtureRequest) -> str:
    param: str = request.param
    return param


@pytest.fixture
def client(backend: str, request: pytest.FixtureRequest, graphql_path: str) -> httpx.Client:
    """The app in process on ``backend``'s database, or the shared real server (each on the
    lean path and on the full pipeline: ``graphql_path``)."""
    if backend == "server":
        live: httpx.Client = request.getfixturevalue("live_client")
        return live
    make_client: MakeClient = request.getfixturevalue("make_client")
    return make_client()


def _nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def _nested_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _variables_body(variables_json: str) -> bytes:
    query = json.dumps(USES_V)
    return f'{{"query": {query}, "variables": {{"v": {variables_json}}}}}'.encode()


BAD_BODIES: dict[str, bytes] = {
    "body not utf-8": b'{"query": "{ __typename }"}\xff\xfe',
    "invalid utf-8 inside the query": b'{"query": "{ __typename \xc3\x28 }"}',
    "variables: list nested 10,000 deep": _variables_body(_nested_list(DEEP)),
    "variables: object nested 10,000 deep": _variables_body(_nested_object(DEEP)),
    "top-level value nested 10,000 deep": _nested_list(DEEP).encode(),
    "top-level object nested 10,000 deep": _nested_object(DEEP).encode(),
    "integer with thousands of digits": _variables_body("1" * 5000),
    "negative integer with thousands of digits": _variables_body("-" + "9" * 5000),
    "not json": b"query { __typename }",
    "truncated json": b'{"query": "{ __typ',
    "empty body": b"",
    "array": b"[]",
    "array of a request": b'[{"query": "{ __typename }"}]',
    "string": b'"x"',
    "number": b"1",
    "null": b"null",
    "true": b"true",
    "NaN constant": b'{"query": "{ __typename }", "variables": {"v": NaN}}',
    "query not a string": b'{"query": 1}',
    "query an object": b'{"query": {"a": 1}}',
    "variables a list": b'{"query": "{ __typename }", "variables": [1]}',
    "variables a string": b'{"query": "{ __typename }", "variables": "x"}',
    "extensions a number": b'{"query": "{ __typename }", "extensions": 1}',
    "operationName a number": b'{"query": "{ __typename }", "operationName": 1}',
    "operationName an object": b'{"query": "{ __typename }", "operationName": {}}',
}


def _assert_request_error(response: Any, *, before_graphql: bool = True) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert isinstance(body, dict)
    assert body["errors"][0]["message"]
    # GraphQL over HTTP: a request error has no "data" entry.
    assert "data" not in body
    if before_graphql:
        # Refused by the HTTP layer, not by GraphQL's validation of a document.
        assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def _assert_still_answers(client: httpx.Client) -> None:
    assert gql(client, "{ __typename }") == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_post_bad_body_is_400_json(client: httpx.Client, body: bytes) -> None:
    _assert_request_error(client.post("/graphql", content=body, headers=JSON_HEADERS))
    _assert_still_answers(client)


BAD_QUERY_STRINGS = {
    # 1,000, not 10,000: percent-encoded, 10,000 levels make a URL over MAX_HEADER_BYTES,
    # which a real server refuses with 431 before the decoder sees it (tests/e2e/
    # test_http_bounds.py); 1,000 still exceeds the decoder's depth bound many times over.
    "variables nested 1,000 deep": {"variables": '{"v": ' + _nested_list(1000) + "}"},
    "variables with a huge integer": {"variables": '{"v": ' + "7" * 5000 + "}"},
    "variables not json": {"variables": "{nope"},
    "variables an array": {"variables": "[1]"},
    "extensions a string": {"extensions": '"x"'},
}


@pytest.mark.parametrize("params", BAD_QUERY_STRINGS.values(), ids=BAD_QUERY_STRINGS.keys())
def test_get_bad_query_string_is_400_json(client: httpx.Client, params: dict[str, str]) -> None:
    query = {"query": USES_V, **params}
    _assert_request_error(client.get("/graphql", params=query))
    _assert_still_answers(client)


def test_post_nesting_at_the_limit_is_answered(client: httpx.Client) -> None:
    # Just under the bound, the document reaches GraphQL: a coercion error (a list is not a
    # String), not a refusal of the JSON.
    body = _variables_body(_nested_list(MAX_JSON_DEPTH - 3))
    response = client.post("/graphql", content=body, headers=JSON_HEADERS)
    _assert_request_error(response, before_graphql=False)
    assert "String" in response.json()["errors"][0]["message"]
    assert "extensions" not in response.json()["errors"][0]


def test_post_brackets_inside_strings_are_not_nesting(client: httpx.Client) -> None:
    text = "[{" * (DEEP // 2)
    response = client.post(
        "/graphql",
        json={"query": USES_V, "variables": {"v": text}},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__type": None}}


def test_validation_error_body_has_no_data_key(client: httpx.Client) -> None:
    response = client.post("/graphql", json={"query": "{ nope }"})
    _assert_request_error(response, before_graphql=False)


def test_refresh_token_lone_surrogate_is_invalid_token(client: httpx.Client) -> None:
    signup(client)
    query = json.dumps("mutation($t: String) { refreshToken(refreshToken: $t) { __typename } }")
    body = f'{{"query": {query}, "variables": {{"t": "\\ud800abc"}}}}'.encode()
    response = client.post("/graphql", content=body, headers=JSON_HEADERS)
    assert response.status_code == 200, response.text
    typename = response.json()["data"]["refreshToken"]["__typename"]
    bad_token = gql(
        client,
        "mutation($t: String) { refreshToken(refreshToken: $t) { __typename } }",
        {"t": "not-a-token"},
    )["data"]["refreshToken"]["__typename"]
    assert typename == bad_token
    assert typename != "AuthPayload"


LONE_SURROGATE_CASES = {
    "login email": (
        'mutation($s: String!) { login(input: {email: $s, password: "wrong guess"}) '
        "{ __typename } }",
        {"login": {"__typename": "InvalidCredentials"}},
    ),
    "login password": (
        'mutation($s: String!) { login(input: {email: "s@example.com", password: $s}) '
        "{ __typename } }",
        {"login": {"__typename": "InvalidCredentials"}},
    ),
    "password reset email": (
        "mutation($s: String!) { requestPasswordReset(email: $s) { __typename } }",
        {"requestPasswordReset": {"__typename": "ValidationError"}},
    ),
    "verify email token": (
        "mutation($s: String!) { verifyEmail(token: $s) { __typename } }",
        {"verifyEmail": {"__typename": "InvalidToken"}},
    ),
}


@pytest.mark.parametrize(
    ("query", "expected"), LONE_SURROGATE_CASES.values(), ids=LONE_SURROGATE_CASES.keys()
)
def test_lone_surrogate_argument_is_typed_answer(
    client: httpx.Client, query: str, expected: dict[str, Any]
) -> None:
    # Decoded as U+FFFD, as a browser does for a USVString: the ordinary answer to a bad value.
    body = json.dumps({"query": query, "variables": {"s": "\ud800" + "x" * 12}})
    response = client.post("/graphql", content=body.encode(), headers=JSON_HEADERS)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": expected}


def test_lone_surrogate_in_a_signed_in_call_is_typed_answer(client: httpx.Client) -> None:
    token = signup(client)["accessToken"]
    body = json.dumps(
        {
            "query": "mutation($s: ID!) { revokeSession(id: $s) { __typename } }",
            "variables": {"s": "\udfff"},
        }
    )
    response = client.post(
        "/graphql",
        content=body.encode(),
        headers={**JSON_HEADERS, "authorization": f"Bearer {token}"},
    )
    assert response.json() == {"data": {"revokeSession": {"__typename": "SessionNotFound"}}}


def test_get_null_variables_and_extensions_are_none(client: httpx.Client) -> None:
    response = client.get(
        "/graphql",
        params={"query": "{ __typename }", "variables": "null", "extensions": "null"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}
