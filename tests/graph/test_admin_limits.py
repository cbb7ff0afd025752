"""The admin API within the document limits of the rest, through HTTP as an aal2 admin.

Depth, aliases, tokens and root mutation fields are checked when the document is parsed and
validated, before any resolver or role rule runs: a document over a limit is refused the
same way for an admin, a user and an anonymous caller (so the refusal says nothing of the
admin API to those who may not use it), and it runs nothing (no admin read reaches the audit
trail, no admin mutation happens). At the limit the admin is answered. Page size: here for
non-admins, and in tests/graph/test_admin.py (test_page_size_is_capped_at_200) for the admin.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from graphql.language import Lexer, Source, TokenKind

from graph.settings import HttpSettings
from tests.admin import USERS, account, admin_user_id, admin_with_mfa
from tests.conftest import GRAPHQL_PATHS, MakeClient
from tests.factories import VIEWER, error_codes, gql
from tests.mfa import Enrolled, controlled_clock

pytestmark = pytest.mark.parametrize("graphql_path", GRAPHQL_PATHS)

DEFAULTS = HttpSettings()
# The deepest document the admin API has (admin 0, users 1, edges 2, node 3, sessions 4,
# id 5): run with MAX_QUERY_DEPTH at exactly this, and at one less.
DEEPEST = "query Deep { admin { users(first: 2) { edges { node { sessions { id } } } } } }"
DEEPEST_DEPTH = 5
SCALARS: tuple[str, ...] = ("id", "email", "emailVerified", "createdAt", "disabledAt")
SCALARS += ("disabledReason", "roles", "mfaEnabled", "lastSignInAt", "__typename")
ACTIONS = "query Actions($id: ID!) { admin { user(id: $id) { adminActions { action } } } }"


@pytest.fixture
def backend() -> str:
    # The limits are the document's, before any database is read: PostgreSQL alone will do.
    return "postgresql"


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client(max_query_depth=DEEPEST_DEPTH)


@pytest.fixture
def admin(client: TestClient) -> Enrolled:
    return admin_with_mfa(client, controlled_clock(client))


def _post(client: TestClient, query: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response: httpx.Response = client.post("/graphql", json={"query": query}, headers=headers)
    return response


def _refused_alike(client: TestClient, query: str, tokens: list[str | None]) -> str:
    """Post ``query`` as each caller: one 400 answer, the same for all; its message."""
    answers = [_post(client, query, token) for token in tokens]
    assert {a.status_code for a in answers} == {400}, [a.text for a in answers]
    bodies = [a.json() for a in answers]
    assert all(body == bodies[0] for body in bodies), bodies
    assert "data" not in bodies[0] or bodies[0]["data"] is None
    return " ".join(str(e["message"]) for e in bodies[0]["errors"])


def _callers(client: TestClient, admin: Enrolled) -> list[str | None]:
    return [admin.access_token, account(client).access_token, None]


def _token_count(document: str) -> int:
    lexer, count = Lexer(Source(document)), 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


def _fields(count: int) -> str:
    """``count`` scalar fields of AdminUser, one token each, repeated in turn (many copies of
    one name would make the overlapping-fields check give up, another limit than this one)."""
    return " ".join(SCALARS[i % len(SCALARS)] for i in range(count)) + " "


def _admin_reads(client: TestClient, admin: Enrolled, user_id: str) -> list[str]:
    """The actions the audit trail holds about ``user_id`` (itself an audited read)."""
    body = gql(client, ACTIONS, {"id": user_id}, token=admin.access_token)
    assert not body.get("errors"), body
    return [a["action"] for a in body["data"]["admin"]["user"]["adminActions"]]


def _forbidden(body: dict[str, Any]) -> None:
    assert body["data"] == {"admin": None}
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["message"] == "Forbidden."


def test_admin_query_at_the_depth_limit_is_answered_and_one_deeper_refused(
    client: TestClient, make_client: MakeClient, admin: Enrolled
) -> None:
    answered = gql(client, DEEPEST, token=admin.access_token)
    assert not answered.get("errors"), answered
    edges = answered["data"]["admin"]["users"]["edges"]
    assert edges
    assert all(isinstance(e["node"]["sessions"], list) for e in edges)
    user = account(client)
    _forbidden(gql(client, DEEPEST, token=user.access_token))
    # The same database, one level less allowed: the same document is too deep for anyone.
    shallower = make_client(max_query_depth=DEEPEST_DEPTH - 1)
    message = _refused_alike(shallower, DEEPEST, [admin.access_token, user.access_token, None])
    assert f"'Deep' exceeds maximum operation depth of {DEEPEST_DEPTH - 1}" in message


def test_admin_query_at_the_alias_limit_is_answered_and_one_more_refused(
    client: TestClient, admin: Enrolled
) -> None:
    target = account(client, "target")
    limit = DEFAULTS.max_aliases

    def aliased(count: int) -> str:
        reads = " ".join(f'u{i}: user(id: "{target.id}") {{ id }}' for i in range(count))
        return f"{{ admin {{ {reads} }} }}"

    answered = gql(client, aliased(limit), token=admin.access_token)
    assert not answered.get("errors"), answered
    assert [answered["data"]["admin"][f"u{i}"]["id"] for i in range(limit)] == [target.id] * limit
    before = _admin_reads(client, admin, target.id)
    message = _refused_alike(client, aliased(limit + 1), _callers(client, admin))
    assert f"{limit + 1} aliases found. Allowed: {limit}" in message
    # Nothing ran: no admin read of the target was recorded (only the check's own read).
    after = _admin_reads(client, admin, target.id)
    assert len(after) == len(before) + 1


def test_aliases_of_admin_itself_count_too(client: TestClient, admin: Enrolled) -> None:
    limit = DEFAULTS.max_aliases
    document = "{ " + " ".join(f"a{i}: admin {{ __typename }}" for i in range(limit + 1)) + " }"
    message = _refused_alike(client, document, _callers(client, admin))
    assert "aliases" in message


def test_admin_document_at_the_token_limit_is_answered_and_one_more_refused(
    client: TestClient, admin: Enrolled
) -> None:
    limit = DEFAULTS.max_tokens
    admin_id = admin_user_id(client, admin)
    head = f'{{ admin {{ user(id: "{admin_id}") {{ '
    tail = "} } }"
    padding = limit - _token_count(head + tail)
    at_limit = head + _fields(padding) + tail
    assert _token_count(at_limit) == limit
    answered = gql(client, at_limit, token=admin.access_token)
    assert not answered.get("errors"), answered
    assert answered["data"]["admin"]["user"]["id"] == admin_id
    user = account(client)
    _forbidden(gql(client, at_limit, token=user.access_token))
    over = head + _fields(padding + 1) + tail
    message = _refused_alike(client, over, [admin.access_token, user.access_token, None])
    assert f"Document contains more than {limit} tokens" in message


def test_admin_mutations_within_the_root_field_cap_run_and_one_more_runs_nothing(
    client: TestClient, admin: Enrolled
) -> None:
    limit = DEFAULTS.max_mutation_fields
    targets = [account(client, "target") for _ in range(limit + 1)]

    def revoking(count: int) -> str:
        fields = " ".join(
            f'r{i}: adminRevokeSessions(id: "{t.id}") {{ __typename }}'
            for i, t in enumerate(targets[:count])
        )
        return f"mutation {{ {fields} }}"

    message = _refused_alike(client, revoking(limit + 1), _callers(client, admin))
    assert f"at most {limit} root fields" in message
    # Nothing ran: every target is still signed in.
    for target in targets:
        assert gql(client, VIEWER, token=target.access_token)["data"]["viewer"], target
    answered = gql(client, revoking(limit), token=admin.access_token)
    assert not answered.get("errors"), answered
    assert list(answered["data"].values()) == [{"__typename": "AdminUserPayload"}] * limit
    for target in targets[:limit]:
        assert error_codes(gql(client, VIEWER, token=target.access_token)) == ["UNAUTHENTICATED"]
    assert gql(client, VIEWER, token=targets[limit].access_token)["data"]["viewer"]


def test_page_size_over_200_is_refused_alike_for_everyone_but_the_admin(
    client: TestClient, admin: Enrolled
) -> None:
    # The admin is told the page is too large; a user and an anonymous caller only get the
    # answer every admin field gives them, whatever the arguments.
    told = gql(client, USERS, {"first": 201}, token=admin.access_token)
    assert told["data"] == {"admin": None}
    assert error_codes(told) == ["BAD_USER_INPUT"]
    user = account(client)
    for first in (201, 200):
        _forbidden(gql(client, USERS, {"first": first}, token=user.access_token))
        anonymous = gql(client, USERS, {"first": first})
        assert anonymous["data"] == {"admin": None}
        assert error_codes(anonymous) == ["UNAUTHENTICATED"]
