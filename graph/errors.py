"""The one place where domain failures become GraphQL: result types or coded errors.

Expected failures are data (a member of the field's result union): each GraphQL error type
names the domain error it stands for with :func:`expected`, beside its definition, and
:func:`to_error_type` looks the table up. Failures the union has no room for (an anonymous
caller, a failed CSRF check) are GraphQL errors with a code in ``extensions``
(:data:`CODED`). A dependency that did not answer (:class:`auth.errors.ServiceUnavailable`,
raised by the database and rate-limit adapters) is ``SERVICE_UNAVAILABLE``, logged once per
outage (:mod:`graph.outages`). Anything else is unexpected: masked in the response and
logged here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Self, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from auth import errors
from graph.outages import OutageLog

log = logging.getLogger("authgraph.graph")

UNEXPECTED_MESSAGE = "Unexpected error."
UNAVAILABLE = "SERVICE_UNAVAILABLE"
# What clients are told to wait during an outage (Retry-After, extensions.retryAfter): about
# the connect timeout, so a retry does not arrive before a failing attempt would have ended.
RETRY_AFTER_SECONDS = 5

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


def unavailable_extensions() -> dict[str, Any]:
    return {"code": UNAVAILABLE, "retryAfter": RETRY_AFTER_SECONDS}


def outage_of(error: GraphQLError) -> errors.ServiceUnavailable | None:
    """The outage behind a GraphQL error, if a dependency's failure caused it."""
    original = error.original_error
    return original if isinstance(original, errors.ServiceUnavailable) else None


def report_outages(outages: OutageLog, found: Iterable[errors.ServiceUnavailable]) -> None:
    """Count one failed request for each dependency among ``found`` (logged once an outage)."""
    seen: dict[str, str] = {}
    for outage in found:
        seen.setdefault(outage.dependency, outage.reason)
    for dependency, reason in seen.items():
        outages.failed(dependency, reason)


class MaskUnexpectedErrors(MaskErrors):
    """Masks our own failures as "Unexpected error."; an outage gets its code and a short
    message instead (it is no bug, and the client can act on it: retry later)."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=UNEXPECTED_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        outage = outage_of(error)
        if outage is None:
            return super().anonymise_error(error)
        return GraphQLError(
            outage.public_message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=unavailable_extensions(),
        )


def is_outage_only(response_data: dict[str, Any]) -> bool:
    """Whether an answer holds nothing but outage errors: no field produced any data.

    Such an answer is a request-level failure (HTTP 503, Retry-After); an answer with some
    data keeps 200, its outage errors beside the fields that did resolve.
    """
    found = response_data.get("errors") or []
    data = response_data.get("data")
    return (
        bool(found)
        and all((e.get("extensions") or {}).get("code") == UNAVAILABLE for e in found)
        and (data is None or all(value is None for value in data.values()))
    )


def is_unexpected(error: GraphQLError) -> bool:
    """Errors from our own code that were not meant for the client.

    Syntax and validation errors have no ``original_error`` and are the client's to see; a
    coercion error deep inside a variable's value wraps graphql-core's own GraphQLError,
    which is the client's too (a PublicError is one of those).
    """
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)
