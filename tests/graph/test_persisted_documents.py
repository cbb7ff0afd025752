"""Persisted documents over HTTP: automatic persisted queries, trusted documents, trusted-only
mode, and the lean path's plans (graph/documents.py, graph/lean.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from auth.errors import ConfigurationError
from graph.app import create_app
from graph.documents import document_hash
from graph.settings import Settings
from tests.conftest import MakeClient
from tests.factories import VIEWER, error_codes, gql, signup

EMAIL_ONLY = "{ viewer { email } }"
ID_ONLY = "{ viewer { id } }"
TYPENAME = "{ __typename }"


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    # Transport behaviour: SQLite only (the documents are not stored in the database).
    path = tmp_path / "authgraph.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def apq(query: str | None, digest: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}},
        **extra,
    }
    if query is not None:
        body["query"] = query
    return body


def manifest(tmp_path: Path, *documents: str, apollo: bool = False) -> str:
    path = tmp_path / "manifest.json"
    if apollo:
        operations = [
            {"id": document_hash(d), "body": d, "name": "Op", "type": "query"} for d in documents
        ]
        path.write_text(
            json.dumps(
                {
                    "format": "apollo-persisted-query-manifest",
                    "version": 1,
                    "operations": operations,
                }
            )
        )
    else:
        path.write_text(json.dumps({document_hash(d): d for d in documents}))
    return str(path)


def counts(client: TestClient) -> tuple[int, int]:
    found = client.app.state.lean_counts  # type: ignore[attr-defined]
    return found.lean, found.full


def test_apq_unknown_hash_then_register_then_hit(client: TestClient) -> None:
    token = signup(client)["accessToken"]
    digest = document_hash(EMAIL_ONLY)
    headers = {"Authorization": f"Bearer {token}"}

    missing = client.post("/graphql", json=apq(None, digest), headers=headers)
    assert missing.status_code == 400
    assert error_codes(missing.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert missing.json()["errors"][0]["message"] == "PersistedQueryNotFound"

    registered = client.post("/graphql", json=apq(EMAIL_ONLY, digest), headers=headers)
    assert registered.status_code == 200, registered.text
    email = registered.json()["data"]["viewer"]["email"]

    before = counts(client)
    hit = client.post("/graphql", json=apq(None, digest), headers=headers)
    assert hit.json() == {"data": {"viewer": {"email": email}}}
    assert counts(client) == (before[0] + 1, before[1])  # ran on the lean path


def test_apq_hit_over_get(client: TestClient) -> None:
    digest = document_hash(TYPENAME)
    client.post("/graphql", json=apq(TYPENAME, digest))
    extensions = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest}})
    response = client.get("/graphql", params={"extensions": extensions})
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


def test_apq_hash_that_does_not_match_is_refused(client: TestClient) -> None:
    response = client.post("/graphql", json=apq(TYPENAME, document_hash(ID_ONLY)))
    assert response.status_code == 400
    assert error_codes(response.json()) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    again = client.post("/graphql", json=apq(None, document_hash(ID_ONLY)))
    assert error_codes(again.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


def test_apq_invalid_document_is_answered_but_not_kept(client: TestClient) -> None:
    bad = "{ viewer { nope } }"
    response = client.post("/graphql", json=apq(bad, document_hash(bad)))
    assert response.status_code == 400
    assert "nope" in response.json()["errors"][0]["message"]
    again = client.post("/graphql", json=apq(None, document_hash(bad)))
    assert error_codes(again.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


def test_apq_store_keeps_at_most_its_bound(make_client: MakeClient) -> None:
    client = make_client(persisted_query_max_documents=2)
    documents = [f"query Q{i} {{ __typename }}" for i in range(3)]
    for document in documents:
        assert (
            client.post("/graphql", json=apq(document, document_hash(document))).status_code == 200
        )
    first = client.post("/graphql", json=apq(None, document_hash(documents[0])))
    assert error_codes(first.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    last = client.post("/graphql", json=apq(None, document_hash(documents[2])))
    assert last.json() == {"data": {"__typename": "Query"}}
    assert len(client.app.state.documents.persisted) == 2  # type: ignore[attr-defined]


def test_apq_registrations_past_the_rate_are_answered_not_kept(make_client: MakeClient) -> None:
    client = make_client(persisted_query_registrations_per_minute=1)
    one, two = "query A { __typename }", "query B { __typename }"
    assert client.post("/graphql", json=apq(one, document_hash(one))).status_code == 200
    answered = client.post("/graphql", json=apq(two, document_hash(two)))
    assert answered.json() == {"data": {"__typename": "Query"}}
    kept = client.post("/graphql", json=apq(None, document_hash(one)))
    assert kept.json() == {"data": {"__typename": "Query"}}
    not_kept = client.post("/graphql", json=apq(None, document_hash(two)))
    assert error_codes(not_kept.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


def test_apq_turned_off_answers_not_supported(make_client: MakeClient) -> None:
    client = make_client(persisted_queries=False)
    response = client.post("/graphql", json=apq(None, document_hash(TYPENAME)))
    assert response.status_code == 400
    assert error_codes(response.json()) == ["PERSISTED_QUERY_NOT_SUPPORTED"]


@pytest.mark.parametrize("apollo", [False, True], ids=["codegen", "apollo"])
def test_trusted_document_by_id_prefixed_and_bare(
    make_client: MakeClient, tmp_path: Path, apollo: bool
) -> None:
    client = make_client(trusted_documents=manifest(tmp_path, VIEWER, TYPENAME, apollo=apollo))
    token = signup(client)["accessToken"]
    headers = {"Authorization": f"Bearer {token}"}
    digest = document_hash(VIEWER)
    prefixed = client.post("/graphql", json={"documentId": f"sha256:{digest}"}, headers=headers)
    assert prefixed.status_code == 200, prefixed.text
    assert prefixed.json()["data"]["viewer"]["email"]
    bare = client.post("/graphql", json={"documentId": digest}, headers=headers)
    assert bare.json() == prefixed.json()
    by_get = client.get("/graphql", params={"documentId": f"sha256:{document_hash(TYPENAME)}"})
    assert by_get.json() == {"data": {"__typename": "Query"}}


def test_unknown_document_id_is_400_not_found(make_client: MakeClient, tmp_path: Path) -> None:
    client = make_client(trusted_documents=manifest(tmp_path, TYPENAME))
    response = client.post("/graphql", json={"documentId": f"sha256:{'0' * 64}"})
    assert response.status_code == 400
    assert error_codes(response.json()) == ["PERSISTED_DOCUMENT_NOT_FOUND"]
    assert "data" not in response.json()
    graphql_json = client.post(
        "/graphql",
        json={"documentId": "sha256:nothex"},
        headers={"Accept": "application/graphql-response+json"},
    )
    assert graphql_json.status_code == 400
    assert graphql_json.headers["content-type"].startswith("application/graphql-response+json")


def test_document_id_with_query_too_is_refused(make_client: MakeClient, tmp_path: Path) -> None:
    client = make_client(trusted_documents=manifest(tmp_path, TYPENAME))
    response = client.post(
        "/graphql", json={"documentId": document_hash(TYPENAME), "query": TYPENAME}
    )
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_REQUEST"]


def test_trusted_only_refuses_ad_hoc_documents(make_client: MakeClient, tmp_path: Path) -> None:
    client = make_client(
        trusted_documents=manifest(tmp_path, TYPENAME), trusted_documents_only=True
    )
    refused = client.post("/graphql", json={"query": "{ __schema { types { name } } }"})
    assert refused.status_code == 400
    body = refused.json()
    assert error_codes(body) == ["TRUSTED_DOCUMENT_REQUIRED"]
    assert "trusted documents" in body["errors"][0]["message"]
    by_get = client.get("/graphql", params={"query": ID_ONLY})
    assert error_codes(by_get.json()) == ["TRUSTED_DOCUMENT_REQUIRED"]
    unknown_apq = client.post("/graphql", json=apq(ID_ONLY, document_hash(ID_ONLY)))
    assert error_codes(unknown_apq.json()) == ["TRUSTED_DOCUMENT_REQUIRED"]
    # The trusted text itself, by id, by its hash, or as its exact text, runs.
    assert client.post("/graphql", json={"documentId": document_hash(TYPENAME)}).status_code == 200
    assert client.post("/graphql", json=apq(None, document_hash(TYPENAME))).status_code == 200
    assert gql(client, TYPENAME) == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("graphql_path", ["full"])
def test_trusted_documents_run_on_the_full_pipeline_too(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = make_client(
        trusted_documents=manifest(tmp_path, TYPENAME), trusted_documents_only=True
    )
    response = client.post("/graphql", json={"documentId": document_hash(TYPENAME)})
    assert response.json() == {"data": {"__typename": "Query"}}
    assert counts(client) == (0, 1)
    refused = client.post("/graphql", json={"query": ID_ONLY})
    assert error_codes(refused.json()) == ["TRUSTED_DOCUMENT_REQUIRED"]


def test_manifest_with_a_wrong_hash_stops_the_start(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"0" * 64: TYPENAME}))
    with pytest.raises(ConfigurationError, match="TRUSTED_DOCUMENTS"):
        create_app(settings.with_values(trusted_documents=str(path)))
    with pytest.raises(ConfigurationError, match="TRUSTED_DOCUMENTS"):
        create_app(settings.with_values(trusted_documents_only=True))


def test_plans_are_keyed_by_text_and_bounded(make_client: MakeClient) -> None:
    client = make_client(document_cache_size=2)
    token = signup(client)["accessToken"]
    for _ in range(2):
        for document, field in ((EMAIL_ONLY, "email"), (ID_ONLY, "id"), (VIEWER, "id")):
            viewer = gql(client, document, token=token)["data"]["viewer"]
            assert field in viewer
            assert set(viewer) == ({"id", "email"} if document == VIEWER else {field})
    assert len(client.app.state.plans) == 2  # type: ignore[attr-defined]


def test_operation_name_picks_the_operation_of_one_plan(client: TestClient) -> None:
    document = "query A { __typename } query B { viewer { id } }"
    a = client.post("/graphql", json={"query": document, "operationName": "A"})
    b = client.post("/graphql", json={"query": document, "operationName": "B"})
    assert a.json() == {"data": {"__typename": "Query"}}
    assert b.json() == {"data": {"viewer": None}}
    unknown = client.post("/graphql", json={"query": document, "operationName": "C"})
    assert unknown.status_code == 400


def test_valid_documents_run_lean_and_others_go_on(client: TestClient) -> None:
    assert gql(client, TYPENAME) == {"data": {"__typename": "Query"}}
    assert counts(client) == (1, 0)
    gql(client, "{ nope }", expect_status=400)
    assert counts(client) == (1, 1)
    mutation_over_get = client.get(
        "/graphql", params={"query": "mutation { logout { __typename } }"}
    )
    assert mutation_over_get.status_code in (400, 405)
    assert counts(client) == (1, 2)


def test_lean_path_runs_simple_documents_compiled(client: TestClient) -> None:
    token = signup(client)["accessToken"]
    headers = {"Authorization": f"Bearer {token}"}
    found = client.app.state.lean_counts  # type: ignore[attr-defined]
    lean, compiled = found.lean, found.compiled
    plain = client.post("/graphql", json={"query": EMAIL_ONLY}, headers=headers)
    assert (found.lean, found.compiled) == (lean + 1, compiled + 1)
    # A fragment needs field collection per request: graphql-core runs it, same answer.
    spread = "{ viewer { ...F } } fragment F on User { email }"
    fragment = client.post("/graphql", json={"query": spread}, headers=headers)
    assert (found.lean, found.compiled) == (lean + 2, compiled + 1)
    assert plain.json() == fragment.json()
    assert plain.json()["data"]["viewer"]["email"].endswith("@example.com")
    # A bad token on the compiled path: the same masked UNAUTHENTICATED answer.
    bad = client.post("/graphql", json={"query": EMAIL_ONLY}, headers={"Authorization": "Bearer x"})
    assert found.compiled == compiled + 2
    assert bad.json()["data"] == {"viewer": None}
    assert error_codes(bad.json()) == ["UNAUTHENTICATED"]
