"""The lean path: a valid document, parsed and validated once, then executed at once.

:class:`LeanGraphQL` is ASGI middleware in front of FastAPI's whole stack, inside the body limit,
the security headers and CORS. For ``/graphql`` it resolves the document a request names
(:mod:`graph.documents`: ad hoc text, a trusted document, an automatic persisted query) and
refuses what it may not run. A document that parses within ``MAX_TOKENS`` and validates
(the specification's rules and the schema's limits: depth, aliases, root mutation fields,
introspection) becomes a :class:`Plan`, kept in an LRU keyed by its exact text; later
requests for it run it at once: no FastAPI dependency solving, no Strawberry extension
instances, no re-parsing or re-validation. An operation of a simple shape (fields only, no
fragments, directives or abstract types: what SPAs mostly send) is compiled as well and runs
by direct resolver calls (:mod:`graph.compiled`); graphql-core executes the others.

Every answer a client could tell apart is made by the same code as on the full pipeline:
the context is :class:`graph.context.Context`, resolvers and their field extensions (the
access rules, expected errors) are the schema's own, errors are logged and masked by
:func:`graph.schema.log_errors` and :class:`graph.errors.MaskUnexpectedErrors`, and the
status (400 for a request error, 503 for an outage), media type and cookies come from
:class:`graph.router.AuthgraphRouter`. Anything else (a document that does not validate,
a mutation over GET, an unknown operation name, a body that is not JSON, GraphiQL) goes on
to the full pipeline, which answers it as before: a persisted document's text is put in
the request's ``query`` first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import BackgroundTasks, Request, Response
from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    specified_rules,
    validate,
)
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.schema._graphql_core import execution_context_class_kwargs

from graph.compiled import IS_AWAITABLE, CompiledOperation, compile_operation, run_compiled
from graph.context import Context, LazyDatabase
from graph.documents import DocumentRefused, Documents, Lru
from graph.errors import MaskUnexpectedErrors
from graph.middleware import header, replay_body
from graph.paths import GRAPHQL_PATH
from graph.request_json import RequestJsonError, decode_request_json
from graph.router import (
    JSON,
    AuthgraphRouter,
    error_response,
    media_type,
    negotiate_media_type,
)
from graph.schema import AuthgraphSchema, log_errors
from graph.settings import Settings

_NULLABLE = ("variables", "extensions")


@dataclass(frozen=True, slots=True)
class Plan:
    """A parsed, validated document, and the type of each operation a request may pick.

    ``operations`` maps each operation's name to its type, and ``None`` to the only one when
    there is exactly one (what a request without ``operationName`` runs).
    """

    document: DocumentNode
    operations: Mapping[str | None, OperationType]
    # The operations of a simple shape, compiled (graph/compiled.py); graphql-core runs the rest.
    compiled: Mapping[str | None, CompiledOperation]


class Plans:
    """Plans for document texts: built on first sight, kept in an LRU keyed by the exact text.

    Two texts never share a plan (the key is the text itself, not a hash of it); a text that
    does not parse or validate gets none, and the full pipeline answers its errors.
    """

    def __init__(self, schema: AuthgraphSchema, size: int) -> None:
        self._schema = schema
        self._rules = (*specified_rules, *schema.document_rules)
        self._cache: Lru[str, Plan] = Lru(size)

    def get(self, text: str) -> Plan | None:
        plan = self._cache.get(text)
        if plan is None:
            plan = self._build(text)
            if plan is not None:
                self._cache.put(text, plan)
        return plan

    def __len__(self) -> int:
        return len(self._cache)

    def _build(self, text: str) -> Plan | None:
        try:
            document = parse(text, max_tokens=self._schema.max_tokens)
        except GraphQLError:
            return None
        if validate(self._schema._schema, document, self._rules):
            return None
        operations: dict[str | None, OperationType] = {}
        compiled: dict[str | None, CompiledOperation] = {}
        found = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        for definition in found:
            names = [definition.name.value if definition.name else None]
            if len(found) == 1 and names[0] is not None:
                names.append(None)
            operation = compile_operation(self._schema._schema, document, definition)
            for name in names:
                operations[name] = definition.operation
                if operation is not None:
                    compiled[name] = operation
        return Plan(document, operations, compiled)


@dataclass
class LeanCounts:
    """How many ``/graphql`` requests ran on the lean path and how many went on to the full
    pipeline (for tests and the bench; ``app.state.lean_counts``)."""

    lean: int = 0
    full: int = 0
    # Of the lean ones, how many ran compiled (graph/compiled.py) rather than by graphql-core.
    compiled: int = 0


class LeanGraphQL:
    """ASGI middleware: persisted documents for ``/graphql``, and the lean path for plans."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        schema: AuthgraphSchema,
        router: AuthgraphRouter,
        documents: Documents,
        plans: Plans,
        settings: Settings,
        counts: LeanCounts | None = None,
    ) -> None:
        self.app = app
        self.schema = schema
        self.router = router
        self.documents = documents
        self.plans = plans
        self.lean = settings.http.lean_execution
        self._executor = execution_context_class_kwargs(schema.execution_context_class)
        self._mask = MaskUnexpectedErrors()
        self.counts = counts if counts is not None else LeanCounts()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != GRAPHQL_PATH:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        params: dict[str, Any] | None = None
        if method == "POST" and media_type(header(scope, b"content-type")) == JSON:
            body = await _read_body(receive)
            receive = replay_body(body, receive)
            try:
                params = decode_request_json(body)
            except RequestJsonError:
                params = None  # the full pipeline answers 400, in its own words
        elif method == "GET":
            params = _query_params(scope)
        if params is None:
            await self.app(scope, receive, send)
            return
        try:
            named = self.documents.name(params)
        except DocumentRefused as refused:
            response = error_response(refused.status, refused.message, refused.code)
            negotiate_media_type(header(scope, b"accept"), response)
            await response(scope, receive, send)
            return
        if named is None:
            await self.app(scope, receive, send)
            return
        plan = self.plans.get(named.text) if self.lean or named.register else None
        if named.register is not None and plan is not None:
            self.documents.keep(named.register, named.text)
        if self.lean and plan is not None and _runnable(plan, params, method):
            self.counts.lean += 1
            await self._run(plan, params, scope, receive, send)
            return
        self.counts.full += 1
        if named.kind != "query":
            scope, receive = _with_query(scope, receive, params, named.text)
        await self.app(scope, receive, send)

    async def _run(
        self, plan: Plan, params: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        request = Request(scope, receive)
        state = request.app.state.authgraph
        # What FastAPI hands the router as its sub-response: cookies and headers set by
        # resolvers, no status of its own unless one sets it.
        sub_response = Response()
        del sub_response.headers["content-length"]
        sub_response.status_code = None  # type: ignore[assignment]
        context = Context(state, LazyDatabase(state), request)
        context.response = sub_response
        # Run after the answer is sent, as FastAPI runs a route's (a reset mail's request).
        context.background_tasks = BackgroundTasks()
        try:
            result = None
            compiled = plan.compiled.get(params.get("operationName"))
            if compiled is not None:
                result = await run_compiled(
                    compiled,
                    self.schema._schema,
                    context,
                    params.get("variables"),
                    params.get("extensions"),
                    IS_AWAITABLE,
                )
                if result is not None:
                    self.counts.compiled += 1
            if result is None:
                result = await self._execute(plan, params, context)
            response_data: dict[str, Any] = {"data": result.data}
            if result.errors:
                # As on the full pipeline: logged as they are, then masked for the client.
                log_errors(result.errors, context)
                response_data["errors"] = [
                    (
                        self._mask.anonymise_error(e) if self._mask.should_mask_error(e) else e
                    ).formatted
                    for e in result.errors
                ]
            response = self.router.create_response(response_data, sub_response)
            if context.background_tasks.tasks:
                response.background = context.background_tasks
        finally:
            await context.database.aclose()
        negotiate_media_type(request.headers.get("accept"), response)
        await response(scope, receive, send)

    async def _execute(self, plan: Plan, params: dict[str, Any], context: Context) -> Any:
        """``plan`` run by graphql-core (what :mod:`graph.compiled` does not cover)."""
        outcome = execute(
            self.schema._schema,
            plan.document,
            context_value=context,
            variable_values=params.get("variables"),
            operation_name=params.get("operationName"),
            is_awaitable=IS_AWAITABLE,
            operation_extensions=params.get("extensions"),
            **self._executor,
        )
        return await outcome if isawaitable(outcome) else outcome


def _runnable(plan: Plan, params: Mapping[str, Any], method: str) -> bool:
    """Whether the lean path may run ``params`` against ``plan``; else the full pipeline
    answers (an unknown operation name, a mutation over GET, a malformed member)."""
    name = params.get("operationName")
    if name is not None and not isinstance(name, str):
        return False
    for member in _NULLABLE:
        if not isinstance(params.get(member), (dict, type(None))):
            return False
    kind = plan.operations.get(name)
    if kind is OperationType.QUERY:
        return True
    return kind is OperationType.MUTATION and method == "POST"


def _query_params(scope: Scope) -> dict[str, Any] | None:
    """A GET's parameters as the router reads them, or ``None`` where it would refuse them."""
    raw = scope.get("query_string", b"").decode("latin-1")
    params: dict[str, Any] = dict(parse_qsl(raw, keep_blank_values=True))
    for member in _NULLABLE:
        value = params.get(member)
        if value == "null":
            del params[member]
        elif value is not None:
            try:
                params[member] = decode_request_json(value)
            except RequestJsonError:
                return None
    return params


def _with_query(
    scope: Scope, receive: Receive, params: dict[str, Any], text: str
) -> tuple[Scope, Receive]:
    """The request as the full pipeline reads it: the persisted document's text as ``query``."""
    plain = {k: v for k, v in params.items() if k != "documentId"}
    plain["query"] = text
    if scope["method"] == "GET":
        encoded = {
            k: (v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))
            for k, v in plain.items()
        }
        return {**scope, "query_string": urlencode(encoded).encode("latin-1")}, receive
    body = json.dumps(plain, separators=(",", ":")).encode("utf-8")
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    return {**scope, "headers": headers}, replay_body(body, receive)


async def _read_body(receive: Receive) -> bytes:
    # BodyLimitMiddleware (outside) has read and bounded the body: one message, replayed.
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
