"""graph.compiled: a compiled operation answers exactly what graphql-core's ``execute`` does.

Each case runs one document both ways on a small schema whose resolvers succeed, fail, return
null where null is not allowed, return the wrong shape, and are synchronous or not, then
compares the two results whole (data, and each error's message, path and locations).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from graphql import (
    ExecutionResult,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    execute,
    parse,
    validate,
)

from graph.compiled import IS_AWAITABLE, compile_operation, run_compiled
from tests.aio import run_coroutine

SDL = """
type Query {
  user(id: ID!): User
  users(limit: Int = 2): [User!]!
  maybeUsers: [User]
  brokenList: [User!]
  notAList: [String]
  strictUser: User!
  failing: String
  failingStrict: String!
  slow(n: Int!): Int
  slowFailing: String
  wrongLeaf: Int
  hello(name: String = "world"): String!
  thing: Thing
}
type Mutation { add(n: Int!): Int! }
type User {
  id: ID!
  name: String
  friend: User
  strictFriend: User!
  failing: String!
  tags: [String!]!
  failsSoon: String!
  failsLater: String
}
union Thing = User
"""

LOG: list[str] = []


class User:
    def __init__(self, id: str, name: str | None = "n") -> None:
        self.id, self.name = id, name
        self.tags = ["a", None] if id == "bad-tags" else ["a", "b"]

    def friend(self, info: Any) -> User | None:
        return User(self.id + "f") if self.id != "lonely" else None

    def strictFriend(self, info: Any) -> User | None:
        return None if self.id == "3" else User(self.id + "s")

    def failing(self, info: Any) -> str:
        raise ValueError(f"failing on {self.id}")

    async def failsSoon(self, info: Any) -> str:
        await asyncio.sleep(0)
        raise ValueError("soon")

    async def failsLater(self, info: Any) -> str:
        await asyncio.sleep(0.01)
        raise ValueError("later")


async def _slow(_root: Any, info: Any, n: int) -> int:
    await asyncio.sleep(0.001 * (3 - n))
    LOG.append(f"slow {n}")
    return n


async def _slow_failing(_root: Any, info: Any) -> str:
    await asyncio.sleep(0)
    raise RuntimeError("slow failure")


async def _add(_root: Any, info: Any, n: int) -> int:
    await asyncio.sleep(0.001 * (3 - n))
    LOG.append(f"add {n}")
    return n


def _raise(message: str) -> Any:
    def resolve(*_args: Any, **_kwargs: Any) -> Any:
        raise ValueError(message)

    return resolve


def _schema() -> GraphQLSchema:
    schema = build_schema(SDL)
    query = schema.query_type
    assert query is not None
    resolvers: dict[str, Any] = {
        "user": lambda _r, _i, id: None if id == "none" else User(id),
        "users": lambda _r, _i, limit: [User(str(i)) for i in range(limit)],
        "maybeUsers": lambda _r, _i: [User("1"), None, User("lonely")],
        "brokenList": lambda _r, _i: [User("1"), None],
        "notAList": lambda _r, _i: "abc",
        "strictUser": lambda _r, _i: None,
        "failing": _raise("plain failure"),
        "failingStrict": _raise("strict failure"),
        "slow": _slow,
        "slowFailing": _slow_failing,
        "wrongLeaf": lambda _r, _i: "not a number",
        "hello": lambda _r, _i, name: f"hello {name}",
    }
    for name, resolve in resolvers.items():
        query.fields[name].resolve = resolve
    mutation = schema.mutation_type
    assert mutation is not None
    mutation.fields["add"].resolve = _add
    return schema


SCHEMA = _schema()

# Documents the compiler takes: every one must answer as graphql-core does.
COMPILED = {
    "scalars and an object": "{ user(id: 1) { id name } }",
    "aliases and __typename": "{ a: user(id: 1) { __typename x: id } b: user(id: 2) { id } }",
    "a null object": '{ user(id: "none") { id } }',
    "nested objects": "{ user(id: 1) { friend { friend { id } } } }",
    "a list of objects": "{ users { id name } }",
    "an argument's default": "{ users { id } hello }",
    "an argument from a variable": "query ($n: Int) { users(limit: $n) { id } }",
    "a variable's default": 'query ($who: String = "you") { hello(name: $who) }',
    "a nullable list with nulls": "{ maybeUsers { id friend { id } } }",
    "a null in a non-null list item": "{ brokenList { id } }",
    "a null in a non-null leaf list item": '{ user(id: "bad-tags") { tags } }',
    "not a list": "{ notAList }",
    "a null non-null root field": "{ strictUser { id } hello }",
    "a failing field": "{ failing hello }",
    "a failing non-null root field": "{ failingStrict hello }",
    "a failing non-null nested field": "{ user(id: 1) { id failing } users { id } }",
    "a null non-null nested object": "{ user(id: 3) { id strictFriend { id } } }",
    "a wrong leaf": "{ wrongLeaf hello }",
    "a later error under a nulled object": "{ user(id: 1) { failsLater failsSoon } hello }",
    "a later error in a nulled list": "{ maybeUsers { failsLater } users { failsSoon } }",
    "items failing at different times": "{ maybeUsers { id failsLater failsSoon } }",
    "async fields": "{ a: slow(n: 1) b: slow(n: 2) c: slowFailing hello }",
    "a mutation": "mutation { a: add(n: 1) b: add(n: 2) }",
}

# Shapes the compiler leaves to graphql-core.
NOT_COMPILED = {
    "a fragment spread": "{ user(id: 1) { ...F } } fragment F on User { id }",
    "an inline fragment": "{ user(id: 1) { ... on User { id } } }",
    "a directive": "{ user(id: 1) { id @include(if: true) } }",
    "an operation directive": "query @skip(if: false) { hello }",
    "a key selected twice": "{ user(id: 1) { id } user(id: 1) { name } }",
    "a union": "{ thing { __typename } }",
    "introspection": "{ __schema { queryType { name } } }",
    "a subscription": "subscription { hello }",
}


def _operation(text: str) -> tuple[Any, OperationDefinitionNode]:
    document = parse(text)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return document, operation


def _formatted(result: ExecutionResult) -> dict[str, Any]:
    return {
        "data": result.data,
        "errors": [e.formatted for e in result.errors or ()],
    }


async def _both(text: str, variables: dict[str, Any] | None) -> tuple[Any, Any, list[str]]:
    document, operation = _operation(text)
    assert validate(SCHEMA, document) == []
    compiled = compile_operation(SCHEMA, document, operation)
    assert compiled is not None
    LOG.clear()
    ours = await run_compiled(compiled, SCHEMA, None, variables, None, IS_AWAITABLE)
    ours_log = list(LOG)
    LOG.clear()
    outcome = execute(SCHEMA, document, variable_values=variables)
    theirs = await outcome if asyncio.iscoroutine(outcome) else outcome
    assert ours_log == LOG, "resolvers ran in another order"
    assert ours is not None
    return _formatted(ours), _formatted(theirs), ours_log  # type: ignore[arg-type]


@pytest.mark.parametrize("text", COMPILED.values(), ids=COMPILED.keys())
def test_run_compiled_answers_as_graphql_core(text: str) -> None:
    ours, theirs, _ = run_coroutine(_both(text, {"n": 3}))
    assert ours == theirs


def test_run_compiled_mutation_fields_run_one_after_the_other() -> None:
    # add(n: 1) sleeps longer than add(n: 2): run at once, 2 would finish first.
    _, _, log = run_coroutine(_both(COMPILED["a mutation"], None))
    assert log == ["add 1", "add 2"]


def test_run_compiled_query_fields_run_at_the_same_time() -> None:
    _, _, log = run_coroutine(_both(COMPILED["async fields"], None))
    assert log == ["slow 2", "slow 1"]


def test_run_compiled_leaves_variables_that_do_not_coerce_to_graphql_core() -> None:
    document, operation = _operation("query ($n: Int) { users(limit: $n) { id } }")
    compiled = compile_operation(SCHEMA, document, operation)
    assert compiled is not None
    result = run_coroutine(run_compiled(compiled, SCHEMA, None, {"n": "three"}, None, IS_AWAITABLE))
    assert result is None


@pytest.mark.parametrize("text", NOT_COMPILED.values(), ids=NOT_COMPILED.keys())
def test_compile_operation_refuses_shapes_it_does_not_cover(text: str) -> None:
    document, operation = _operation(text)
    assert compile_operation(SCHEMA, document, operation) is None
