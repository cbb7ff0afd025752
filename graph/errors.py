"""The one place where domain failures become GraphQL: result types or coded errors.

Expected failures are data (a member of the field's result union). Failures the union has
no room for (an anonymous caller, a failed CSRF check) are GraphQL errors with a code in
``extensions``. Anything else is unexpected: masked in the response and logged here.
"""

from __future__ import annotations

import logging

from graphql import GraphQLError

from auth import errors
from graph import account_types, types

log = logging.getLogger("authgraph.graph")

UNEXPECTED_MESSAGE = "Unexpected error."


class PublicError(GraphQLError):
    """A GraphQL error whose message and code are safe to show to any client."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


def unauthenticated(exc: errors.AuthError | None = None) -> PublicError:
    message = exc.public_message if exc is not None else errors.Unauthenticated.message
    return PublicError(message, "UNAUTHENTICATED")


def to_error_type(exc: errors.AuthError) -> types.Error:
    """The result-union member for an expected failure; raises for those that have none."""
    message = exc.public_message
    if isinstance(exc, errors.ValidationFailed):
        return types.ValidationError(message=message, field=exc.field)
    if isinstance(exc, errors.EmailTaken):
        return types.EmailTaken(message=message)
    if isinstance(exc, errors.InvalidCredentials):
        return types.InvalidCredentials(message=message)
    if isinstance(exc, errors.InvalidRefreshToken):
        return types.InvalidRefreshToken(message=message)
    if isinstance(exc, errors.RateLimited):
        return types.RateLimited(message=message, retry_after=exc.retry_after)
    if isinstance(exc, errors.SessionNotFound):
        return types.SessionNotFound(message=message)
    if isinstance(exc, errors.InvalidEmailToken):
        return account_types.InvalidToken(message=message)
    if isinstance(exc, errors.EmailAlreadyVerified):
        return account_types.EmailAlreadyVerified(message=message)
    if isinstance(exc, errors.Unauthenticated):
        raise unauthenticated(exc) from None
    if isinstance(exc, errors.CsrfFailed):
        raise PublicError(message, "FORBIDDEN") from None
    raise exc


def is_unexpected(error: GraphQLError) -> bool:
    """Errors from our own code that were not meant for the client.

    Syntax and validation errors have no ``original_error`` and are the client's to see.
    """
    original = error.original_error
    return original is not None and not isinstance(original, PublicError)
