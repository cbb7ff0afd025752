"""The one place where domain failures become GraphQL: result types or coded errors.

Expected failures are data (a member of the field's result union): each GraphQL error type
names the domain error it stands for with :func:`expected`, beside its definition, and
:func:`to_error_type` looks the table up. Failures the union has no room for (an anonymous
caller, a failed CSRF check) are GraphQL errors with a code in ``extensions``
(:data:`CODED`). Anything else is unexpected: masked in the response and logged here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Self, TypeVar

import strawberry
from graphql import GraphQLError

from auth import errors

log = logging.getLogger("authgraph.graph")

UNEXPECTED_MESSAGE = "Unexpected error."

# Domain errors that are not data: the GraphQL error code each becomes.
CODED: dict[type[errors.AuthError], str] = {
    errors.Unauthenticated: "UNAUTHENTICATED",
    errors.CsrfFailed: "FORBIDDEN",
}


class PublicError(GraphQLError):
    """A GraphQL error whose message and code are safe to show to any client."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


def error_body(message: str, code: str) -> dict[str, Any]:
    """The JSON body of an HTTP-level refusal, shaped like a GraphQL response's errors."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def unauthenticated(exc: errors.AuthError | None = None) -> PublicError:
    message = exc.public_message if exc is not None else errors.Unauthenticated.message
    return PublicError(message, "UNAUTHENTICATED")


@strawberry.interface(description="An expected failure, returned as data in a result union.")
class Error:
    message: str

    @classmethod
    def from_error(cls, exc: Any) -> Self:
        """The member for ``exc``; types with more fields than ``message`` override this."""
        return cls(message=exc.public_message)


ErrorType = TypeVar("ErrorType", bound=type[Error])
_ERROR_TYPES: dict[type[errors.AuthError], Callable[[Any], Error]] = {}


def expected(domain_error: type[errors.AuthError]) -> Callable[[ErrorType], ErrorType]:
    """Class decorator: this GraphQL error type is the union member for ``domain_error``."""

    def register(error_type: ErrorType) -> ErrorType:
        assert domain_error not in _ERROR_TYPES, f"{domain_error.__name__} is mapped twice"
        _ERROR_TYPES[domain_error] = error_type.from_error
        return error_type

    return register


def to_error_type(exc: errors.AuthError) -> Error:
    """The result-union member for an expected failure; raises for those that have none."""
    for kind in type(exc).__mro__:
        if kind in _ERROR_TYPES:
            return _ERROR_TYPES[kind](exc)
        if kind in CODED:
            raise PublicError(exc.public_message, CODED[kind]) from None
    raise exc


def is_unexpected(error: GraphQLError) -> bool:
    """Errors from our own code that were not meant for the client.

    Syntax and validation errors have no ``original_error`` and are the client's to see; a
    coercion error deep inside a variable's value wraps graphql-core's own GraphQLError,
    which is the client's too (a PublicError is one of those).
    """
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)
