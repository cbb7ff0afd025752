"""The Strawberry schema and the extensions every request goes through."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from graph.account_resolvers import AccountLifecycleMutations
from graph.errors import UNEXPECTED_MESSAGE, is_unexpected
from graph.resolvers import AccountMutations, Query
from graph.session_resolvers import SessionMutations

log = logging.getLogger("authgraph.graph")


@strawberry.type
class Mutation(AccountMutations, SessionMutations, AccountLifecycleMutations):
    """Every mutation; each capability contributes its own class of resolvers."""


class AuthgraphSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors are the client's business; only our own failures are logged.
        for error in errors:
            if is_unexpected(error):
                log.error(
                    "unexpected error in %s",
                    ".".join(str(p) for p in error.path or ()) or "operation",
                    exc_info=error.original_error,
                )


def build_schema(*, production: bool = False, **_: Any) -> strawberry.Schema:
    """Build the schema; ``production`` hides field suggestions from error messages."""
    return AuthgraphSchema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(disable_field_suggestions=production),
        extensions=[
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
            lambda: MaskErrors(should_mask_error=is_unexpected, error_message=UNEXPECTED_MESSAGE),
        ],
    )
