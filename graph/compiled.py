"""Compiled operations: a validated operation run by direct resolver calls.

graphql-core's ``execute`` builds an execution context, collects the fields of every
selection set and picks each value's completion by its type, on every request. For an
operation of a simple shape (fields only: no fragments, no directives, no union or interface
types, no introspection but ``__typename``) that work comes out the same on every request,
so :func:`compile_operation` does it once: each selected field becomes a :class:`Step` that
holds its definition, its resolver and the steps of its own selection.

:func:`run_compiled` calls the schema's own resolvers (Strawberry's, with their field
extensions: the access rules and expected errors) with the resolve info Strawberry's
execution context builds, and completes values as the specification says, in graphql-core's
words for its errors: a leaf is serialised by its type, a null in a non-null position goes
up to the nearest nullable field (one error per nulled position), root mutation fields run
one after the other and query fields at the same time. Anything it does not cover is never
compiled and graphql-core runs it; variables that do not coerce are left to graphql-core too,
so that its errors are the ones a client sees.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard, cast

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    default_field_resolver,
    get_named_type,
    is_leaf_type,
    is_object_type,
    located_error,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.pyutils import Path, inspect, is_iterable
from graphql.pyutils.gather_with_cancel import gather_with_cancel
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.schema.schema import _OperationContextAwareGraphQLResolveInfo as ResolveInfo

IsAwaitable = Callable[[Any], TypeGuard[Awaitable[Any]]]
# Strawberry's check, as its own pipeline passes it to graphql-core (typed as what it is).
IS_AWAITABLE = cast("IsAwaitable", optimized_is_awaitable)
_NO_VARIABLES = VariableValues({}, {})


@dataclass(frozen=True, slots=True, eq=False)
class Step:
    """One selected field: what to call, and how to complete what it returns."""

    key: str  # the response key: the alias, or the field's name
    name: str
    nodes: list[FieldNode]
    parent: GraphQLObjectType
    field: GraphQLField | None  # None for ``__typename``
    steps: tuple[Step, ...]  # the selection on the field's object type; () for a leaf


@dataclass(frozen=True, slots=True, eq=False)
class CompiledOperation:
    """An operation's root type and steps; ``serial`` for a mutation."""

    operation: OperationDefinitionNode
    root: GraphQLObjectType
    steps: tuple[Step, ...]
    serial: bool


def compile_operation(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> CompiledOperation | None:
    """``operation`` (of the validated ``document``) compiled, or ``None`` if its shape is
    one that graphql-core must run."""
    if operation.directives:
        return None
    if operation.operation is OperationType.QUERY:
        root = schema.query_type
    elif operation.operation is OperationType.MUTATION:
        root = schema.mutation_type
    else:
        return None
    if root is None:
        return None
    steps = _compile_selection(root, operation.selection_set)
    if steps is None:
        return None
    return CompiledOperation(
        operation, root, steps, serial=operation.operation is OperationType.MUTATION
    )


def _compile_selection(
    parent: GraphQLObjectType, selection_set: SelectionSetNode | None
) -> tuple[Step, ...] | None:
    if selection_set is None:
        return None
    steps: list[Step] = []
    keys: set[str] = set()
    for selection in selection_set.selections:
        # Fragments and directives (@include, @skip) would need field collection per
        # request; a key selected twice would need its selections merged.
        if not isinstance(selection, FieldNode) or selection.directives:
            return None
        name = selection.name.value
        key = selection.alias.value if selection.alias else name
        if key in keys:
            return None
        keys.add(key)
        if name == "__typename":
            steps.append(Step(key, name, [selection], parent, None, ()))
            continue
        field = parent.fields.get(name)
        if field is None or name.startswith("__"):
            return None
        named = get_named_type(field.type)
        children: tuple[Step, ...] | None = ()
        if is_object_type(named):
            children = _compile_selection(named, selection.selection_set)
        elif not is_leaf_type(named):  # a union or an interface: resolved per value
            children = None
        if children is None:
            return None
        steps.append(Step(key, name, [selection], parent, field, children))
    return tuple(steps)


async def run_compiled(
    compiled: CompiledOperation,
    schema: GraphQLSchema,
    context: Any,
    variables: dict[str, Any] | None,
    extensions: dict[str, Any] | None,
    is_awaitable: IsAwaitable,
) -> ExecutionResult | None:
    """Run ``compiled``; ``None`` when its variables do not coerce (graphql-core answers)."""
    definitions = compiled.operation.variable_definitions
    coerced = _NO_VARIABLES
    if definitions:
        found = get_variable_values(schema, definitions, variables or {})
        if isinstance(found, list):
            return None
        coerced = found
    run = _Run(schema, compiled.operation, coerced, context, extensions or {}, is_awaitable)
    data: dict[str, Any] | None
    try:
        data = await run.fields(compiled.root, compiled.steps, None, None, compiled.serial)
    except GraphQLError as error:  # a null that reached the root
        run.add(error, None)
        data = None
    if run.tracked:
        await asyncio.gather(*run.tracked, return_exceptions=True)
    return ExecutionResult(data, run.errors or None)


class _Run:
    """One execution: what its resolvers see, and the errors collected."""

    __slots__ = (
        "context",
        "errors",
        "extensions",
        "helpers",
        "is_awaitable",
        "nulled",
        "operation",
        "schema",
        "tracked",
        "variables",
    )

    def __init__(
        self,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        variables: VariableValues,
        context: Any,
        extensions: dict[str, Any],
        is_awaitable: IsAwaitable,
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.variables = variables
        self.context = context
        self.extensions = extensions
        self.is_awaitable = is_awaitable
        self.errors: list[GraphQLError] = []
        self.nulled: set[Path | None] = set()
        self.tracked: list[Awaitable[Any]] = []
        self.helpers = GraphQLResolveInfoHelpers(gather=self._gather, track=self._track)

    def _gather(self, values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
        return gather_with_cancel(*values)

    def _track(self, values: Sequence[Any]) -> None:
        self.tracked.extend(v for v in values if self.is_awaitable(v))

    def add(self, error: GraphQLError, path: Path | None) -> None:
        """Keep ``error`` unless its position, or one above it, was nulled already."""
        position = path
        while position is not None:
            if position in self.nulled:
                return
            position = position.prev
        self.nulled.add(path)
        self.errors.append(error)

    async def fields(
        self,
        parent: GraphQLObjectType,
        steps: tuple[Step, ...],
        source: Any,
        path: Path | None,
        serial: bool,
    ) -> dict[str, Any]:
        results: dict[str, Any] = {}
        pending: list[tuple[str, Awaitable[Any]]] = []
        failure: BaseException | None = None
        for step in steps:
            try:
                value = self.field(step, source, Path(path, step.key, parent.name))
                if self.is_awaitable(value):
                    if serial:
                        value = await value
                    else:
                        pending.append((step.key, value))
                results[step.key] = value
            except Exception as exc:  # a null going up: settle what was started first
                failure = exc
                break
        if failure is not None:
            if pending:
                await asyncio.gather(*(a for _, a in pending), return_exceptions=True)
            raise failure
        if len(pending) == 1:
            key, awaitable = pending[0]
            results[key] = await awaitable
        elif pending:
            # As graphql-core: a null going up cancels its siblings (their errors are moot).
            values = await gather_with_cancel(*(a for _, a in pending))
            for (key, _), value in zip(pending, values, strict=True):
                results[key] = value
        return results

    def field(self, step: Step, source: Any, path: Path) -> Any:
        """The completed value of ``step`` on ``source``, or an awaitable of it."""
        if step.field is None:
            return step.parent.name
        field = step.field
        info: Any = ResolveInfo(
            step.name,
            step.nodes,
            field.type,
            step.parent,
            path,
            self.schema,
            {},
            None,
            self.operation,
            self.variables.coerced,
            self.context,
            self.is_awaitable,
            None,
            self.helpers,
            self.extensions,
        )
        try:
            args = (
                get_argument_values(field, step.nodes[0], self.variables)
                if field.args or step.nodes[0].arguments
                else {}
            )
            result = (field.resolve or default_field_resolver)(source, info, **args)
            if self.is_awaitable(result):
                return self._awaited(step, field.type, info, path, result)
            completed = self.complete(step, field.type, info, path, result)
            if self.is_awaitable(completed):
                return self._settled(step, field.type, path, completed)
            return completed
        except Exception as exc:
            self.failed(exc, step, field.type, path)
            return None

    async def _awaited(
        self, step: Step, type_: GraphQLOutputType, info: Any, path: Path, result: Any
    ) -> Any:
        try:
            completed = self.complete(step, type_, info, path, await result)
            if self.is_awaitable(completed):
                completed = await completed
        except Exception as exc:
            self.failed(exc, step, type_, path)
            return None
        return completed

    async def _settled(
        self, step: Step, type_: GraphQLOutputType, path: Path, completed: Awaitable[Any]
    ) -> Any:
        try:
            return await completed
        except Exception as exc:
            self.failed(exc, step, type_, path)
            return None

    def failed(self, exc: Exception, step: Step, type_: GraphQLOutputType, path: Path) -> None:
        """Locate the error; raise it on to the parent for a non-null type, else keep it."""
        error = located_error(exc, step.nodes, path.as_list())
        if isinstance(type_, GraphQLNonNull):
            raise error
        self.add(error, path)

    def complete(
        self, step: Step, type_: GraphQLOutputType, info: Any, path: Path, result: Any
    ) -> Any:
        if isinstance(result, Exception):
            raise result
        if isinstance(type_, GraphQLNonNull):
            completed = self.complete(step, type_.of_type, info, path, result)
            if self.is_awaitable(completed):
                return self._non_null(completed, info)
            if completed is None:
                raise TypeError(_null_message(info))
            return completed
        if result is None or result is Undefined:
            return None
        if isinstance(type_, GraphQLList):
            return self._list(step, type_.of_type, info, path, result)
        if is_leaf_type(type_):
            coerced = type_.coerce_output_value(result)
            if coerced is Undefined or coerced is None:
                raise TypeError(
                    f"Expected `{inspect(type_)}.coerce_output_value({inspect(result)})`"
                    f" to return non-nullable value, returned: {inspect(coerced)}"
                )
            return coerced
        assert isinstance(type_, GraphQLObjectType)  # compile_operation admits nothing else
        if type_.is_type_of is not None:
            matches = type_.is_type_of(result, info)
            if self.is_awaitable(matches):
                return self._checked(step, type_, result, path, matches)
            if not matches:
                raise _wrong_type(step, type_, result)
        return self.fields(type_, step.steps, result, path, False)

    async def _checked(
        self,
        step: Step,
        type_: GraphQLObjectType,
        result: Any,
        path: Path,
        matches: Awaitable[bool],
    ) -> dict[str, Any]:
        if not await matches:
            raise _wrong_type(step, type_, result)
        return await self.fields(type_, step.steps, result, path, False)

    async def _non_null(self, completed: Awaitable[Any], info: Any) -> Any:
        value = await completed
        if value is None:
            raise TypeError(_null_message(info))
        return value

    def _list(
        self, step: Step, item_type: GraphQLOutputType, info: Any, path: Path, result: Any
    ) -> Any:
        if not is_iterable(result):
            raise GraphQLError(
                "Expected Iterable, but did not find one for field"
                f" '{info.parent_type}.{info.field_name}'."
            )
        items: list[Any] = []
        awaiting: list[int] = []
        for index, item in enumerate(result):
            item_path = path.add_key(index, None)
            try:
                completed = self.complete(step, item_type, info, item_path, item)
                if self.is_awaitable(completed):
                    completed = self._settled(step, item_type, item_path, completed)
                    awaiting.append(index)
            except Exception as exc:
                try:
                    self.failed(exc, step, item_type, item_path)
                except GraphQLError as error:  # a null going up: settle what was started
                    if not awaiting:
                        raise
                    return self._list_settled(items, awaiting, error)
                completed = None
            items.append(completed)
        if not awaiting:
            return items
        return self._list_settled(items, awaiting)

    async def _list_settled(
        self, items: list[Any], awaiting: list[int], failure: BaseException | None = None
    ) -> list[Any]:
        settled = await asyncio.gather(*(items[i] for i in awaiting), return_exceptions=True)
        for index, value in zip(awaiting, settled, strict=True):
            if isinstance(value, BaseException):
                failure = failure or value
            items[index] = value
        if failure is not None:
            raise failure
        return items


def _null_message(info: Any) -> str:
    return f"Cannot return null for non-nullable field {info.parent_type}.{info.field_name}."


def _wrong_type(step: Step, type_: GraphQLObjectType, result: Any) -> GraphQLError:
    return GraphQLError(f"Expected value of type '{type_}' but got: {inspect(result)}.", step.nodes)
