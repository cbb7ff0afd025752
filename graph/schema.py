"""The Strawberry schema and the extensions every request goes through."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from graph.accounts import AccountMutations
from graph.context import Context
from graph.errors import MaskUnexpectedErrors, is_unexpected, outage_of, report_outages
from graph.lifecycle import AccountLifecycleMutations
from graph.live import Subscription
from graph.mfa import MfaMutations
from graph.sessions import SessionMutations
from graph.settings import Settings
from graph.validation import max_mutation_fields_rule
from graph.viewer import Query

log = logging.getLogger("authgraph.graph")


@strawberry.type
class Mutation(AccountMutations, SessionMutations, AccountLifecycleMutations, MfaMutations):
    """Every mutation; each feature module contributes its own class of resolvers."""


class AuthgraphSchema(strawberry.Schema):
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        # A subscription runs only over graphql-transport-ws (Schema.subscribe); sent as one
        # HTTP request it is refused like a mutation over GET, never run to a null.
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed - {OperationType.SUBSCRIPTION},
            operation_extensions,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors are the client's business; only our own failures are logged, and an
        # outage only once however many requests it fails (graph.outages).
        outages = [o for o in map(outage_of, errors) if o is not None]
        context = execution_context.context if execution_context is not None else None
        if outages and isinstance(context, Context):
            report_outages(context.state.outages, outages)
        for error in errors:
            if is_unexpected(error) and outage_of(error) is None:
                log.error(
                    "unexpected error in %s",
                    ".".join(str(p) for p in error.path or ()) or "operation",
                    exc_info=error.original_error,
                )


def build_schema(
    *, production: bool = False, settings: Settings | None = None
) -> strawberry.Schema:
    """Build the schema with the document limits and introspection policy of ``settings``.

    Without ``settings``, the defaults of a development (or, with ``production``, production)
    deployment. Extensions are passed as factories: one fresh instance per operation.
    """
    if settings is None:
        settings = Settings(env="production" if production else "development")
    extensions: list[Any] = [
        # Sets the parser's token limit, which is part of ParserCache's key.
        lambda: MaxTokensLimiter(max_token_count=settings.http.max_tokens),
        lambda: ParserCache(maxsize=256),
        _with_fixed_rules(QueryDepthLimiter, max_depth=settings.http.max_query_depth),
        _with_fixed_rules(MaxAliasesLimiter, max_alias_count=settings.http.max_aliases),
        _with_fixed_rules(
            AddValidationRules, [max_mutation_fields_rule(settings.http.max_mutation_fields)]
        ),
        lambda: ValidationCache(maxsize=256),
        MaskUnexpectedErrors,
    ]
    if not settings.introspection_enabled:
        extensions.insert(2, DisableIntrospection)  # a class: one instance per operation
    return AuthgraphSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Suggestions ("Did you mean ...?") reveal the schema exactly as introspection would.
        config=StrawberryConfig(disable_field_suggestions=not settings.introspection_enabled),
        extensions=extensions,
    )


def _with_fixed_rules(
    extension: type[AddValidationRules], *args: Any, **kwargs: Any
) -> type[AddValidationRules]:
    """``extension`` as a class that makes a fresh instance per operation, all sharing rules.

    Strawberry's limiters build a new rule class in each ``__init__``; ValidationCache keys
    on the rule classes, so a factory making new ones would never hit the cache.
    """
    rules = extension(*args, **kwargs).validation_rules

    class WithFixedRules(extension):  # type: ignore[valid-type,misc]
        def __init__(self) -> None:
            AddValidationRules.__init__(self, rules)

    WithFixedRules.__name__ = WithFixedRules.__qualname__ = extension.__name__
    return WithFixedRules
