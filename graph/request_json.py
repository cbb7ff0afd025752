"""Decoding a GraphQL-over-HTTP request's JSON with limits, before GraphQL runs.

The standard library's decoder turns hostile input into exceptions it does not document
as decoding errors (``RecursionError`` for deep nesting, ``ValueError`` for an integer
past Python's digit limit) or into values that fail later (a JSON value that is not an
object). Every such input is the client's mistake: :func:`decode_request_json` raises
:class:`RequestJsonError` for each, and the router answers 400 with a JSON body.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Deep enough for any real variables; far below where Python's recursion gives out.
MAX_JSON_DEPTH = 32
# Digits of a JSON integer: GraphQL's Int is 32 bits, and IDs are strings.
MAX_INTEGER_DIGITS = 64


# A JSON escape of a UTF-16 surrogate; a valid pair decodes to one character, a lone one
# survives into a str that cannot be encoded, and fails wherever it is hashed or stored.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class RequestJsonError(ValueError):
    """The bytes are not JSON authgraph accepts; the message is safe to show the client."""


def decode_request_json(data: str | bytes) -> dict[str, Any]:
    """The JSON object in ``data``, or :class:`RequestJsonError` saying what is wrong."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestJsonError("The request is not valid UTF-8.") from None
    else:
        text = data
    # A cheap count first: a document with few brackets cannot be nested deeply.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth(text) > MAX_JSON_DEPTH:
        raise RequestJsonError(f"JSON is nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        value = json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except RequestJsonError:
        raise
    except (ValueError, RecursionError):
        raise RequestJsonError("Unable to parse request body as JSON.") from None
    if not isinstance(value, dict):
        raise RequestJsonError("The request must be a JSON object.")
    if _SURROGATE_ESCAPE.search(text):
        # What browsers do for a USVString: a lone surrogate becomes U+FFFD, so every argument
        # is text that any layer can encode, and a bad value gets its ordinary typed answer.
        replaced: dict[str, Any] = _replace_lone_surrogates(value)
        return replaced
    return value


def _replace_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_replace_lone_surrogates(k): _replace_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_lone_surrogates(item) for item in value]
    return value


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text``, strings skipped."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise RequestJsonError(f"A JSON number has more than {MAX_INTEGER_DIGITS} digits.")
    return int(digits)


def _no_constant(name: str) -> Any:
    # NaN and Infinity are Python's extension, not JSON.
    raise RequestJsonError(f"{name} is not JSON.")
