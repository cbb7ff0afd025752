"""The Strawberry schema and the extensions every request goes through."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
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

from graph.context import Context
from graph.errors import MaskUnexpectedErrors, is_unexpected, outage_of, report_outages
from graph.features import root_type
from graph.live import Subscription
from graph.settings import Settings
from graph.types import LastSignInMethod
from graph.validation import max_mutation_fields_rule

log = logging.getLogger("authgraph.graph")


class AuthgraphSchema(strawberry.Schema):
    """The schema, with the document limits it was built with (the lean path applies them too)."""

    # Set by build_schema: the parser's token limit and the validation rules beyond the
    # specification's, in the order Strawberry's extensions apply them.
    max_tokens: int
    document_rules: tuple[type[ASTValidationRule], ...]

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
        log_errors(errors, execution_context.context if execution_context is not None else None)


def log_errors(errors: list[GraphQLError], context: object) -> None:
    """Log an operation's errors before masking: our own failures, and outages once each.

    Expected errors are the client's business; an outage is counted (logged only once however
    many requests it fails, graph.outages).
    """
    outages = [o for o in map(outage_of, errors) if o is not None]
    if outages and isinstance(context, Context):
        report_outages(context.state.outages, outages)
    for error in errors:
        if is_unexpected(error) and outage_of(error) is None:
            log.error(
                "unexpected error in %s",
                ".".join(str(p) for p in error.path or ()) or "operation",
                exc_info=error.original_error,
            )


def build_schema(*, production: bool = False, settings: Settings | None = None) -> AuthgraphSchema:
    """Build the schema with the document limits and introspection policy of ``settings``.

    Without ``settings``, the defaults of a development (or, with ``production``, production)
    deployment. Extensions are passed as factories: one fresh instance per operation.
    """
    if settings is None:
        settings = Settings(env="production" if production else "development")
    rules = document_rules(settings)
    extensions: list[Any] = [
        # Sets the parser's token limit, which is part of ParserCache's key.
        lambda: MaxTokensLimiter(max_token_count=settings.http.max_tokens),
        lambda: ParserCache(maxsize=256),
        _with_fixed_rules(rules),
        lambda: ValidationCache(maxsize=256),
        MaskUnexpectedErrors,
    ]
    schema = AuthgraphSchema(
        # Each feature module of graph/ marks its own root fields (graph.features).
        query=root_type("Query"),
        mutation=root_type("Mutation"),
        subscription=Subscription,
        # Error types that no result union of this build names yet, but the contract does.
        types=[LastSignInMethod],
        # Suggestions ("Did you mean ...?") reveal the schema exactly as introspection would.
        config=StrawberryConfig(disable_field_suggestions=not settings.introspection_enabled),
        extensions=extensions,
    )
    schema.max_tokens = settings.http.max_tokens
    schema.document_rules = rules
    return schema


def document_rules(settings: Settings) -> tuple[type[ASTValidationRule], ...]:
    """The validation rules every document passes beside the specification's: introspection
    (when off), depth, aliases and root mutation fields, built once.

    Strawberry's limiters build a new rule class in each ``__init__``; ValidationCache keys
    on the rule classes, so the classes are made here once and shared by every operation.
    """
    rules: list[type[ASTValidationRule]] = []
    if not settings.introspection_enabled:
        rules.append(NoSchemaIntrospectionCustomRule)
    rules += QueryDepthLimiter(max_depth=settings.http.max_query_depth).validation_rules
    rules += MaxAliasesLimiter(max_alias_count=settings.http.max_aliases).validation_rules
    rules.append(max_mutation_fields_rule(settings.http.max_mutation_fields))
    return tuple(rules)


def _with_fixed_rules(rules: tuple[type[ASTValidationRule], ...]) -> type[AddValidationRules]:
    """An extension class that makes a fresh instance per operation, all sharing ``rules``."""

    class DocumentRules(AddValidationRules):
        def __init__(self) -> None:
            super().__init__(list(rules))

    return DocumentRules
