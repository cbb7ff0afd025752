"""How a layer declares its settings, and the one loader that reads them.

Each layer owns a frozen dataclass of its settings (``auth.settings.AuthSettings``,
``mail.settings.MailSettings``, ``db.settings.DatabaseSettings``,
``graph.settings.HttpSettings``). Every field is declared once with :func:`setting`: its
environment name, default, bounds and one-line doc. :func:`load_section` reads them all from
one environment mapping, so a default is written in one place only, and ``.env.example`` is
generated from the same declarations (:func:`env_example`).

Some settings come once per configured item (an OAuth provider per id in ``OAUTH_PROVIDERS``).
Their section is declared the same way, its names holding ``{ID}`` (``OAUTH_{ID}_ISSUER``),
and is read once per id with :func:`load_keyed`; ``.env.example`` shows it, commented out,
for the section's ``EXAMPLE_ID``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import secrets
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dotenv import dotenv_values

from auth.errors import ConfigurationError

T = TypeVar("T")
# A loader context: the whole environment and whether it is production.
Parse = Callable[[str, "Source"], Any]
Unset = Callable[["Source"], Any]


class Secret:
    """A string that never shows itself in ``repr``, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Source:
    """What a loader reads: the environment (``.env`` under the real one) and its mode."""

    environ: Mapping[str, str]
    production: bool


@dataclass(frozen=True)
class Declaration:
    """One setting: the variable, its doc line, bounds, and how a value is checked."""

    env: str
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    # Turns a non-empty value into the field's value, raising ConfigurationError naming ``env``.
    parse: Parse | None = None
    # The value when the variable is unset or empty (default: the field's default);
    # may raise, e.g. for a setting production requires.
    unset: Unset | None = None
    # What .env.example shows as the value (default: the field's default).
    example: str | None = None


_KEY = "authgraph.setting"


def setting(
    env: str,
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    minimum: float | None = None,
    maximum: float | None = None,
    parse: Parse | None = None,
    unset: Unset | None = None,
    example: str | None = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """Declare a settings field (use as the dataclass field's default)."""
    declared = Declaration(env, doc, minimum, maximum, parse, unset, example)
    if default_factory is not None:
        return field(default_factory=default_factory, metadata={_KEY: declared})
    return field(default=default, metadata={_KEY: declared})


def declarations(section: type[Any]) -> list[tuple[dataclasses.Field[Any], Declaration]]:
    """The declared fields of a settings class, in declaration order."""
    return [(f, f.metadata[_KEY]) for f in dataclasses.fields(section) if _KEY in f.metadata]


def load_section(section: type[T], source: Source, only: Iterable[str] | None = None) -> T:
    """Build ``section`` from the environment, checking every declared field.

    ``only`` names the fields to read (a command that needs a few of a section's settings);
    the others keep their defaults, unchecked.
    """
    return _load(section, source, only=only)


# A per-item section's names hold this; an id replaces it, upper-cased.
ID_PLACEHOLDER = "{ID}"
_ID = re.compile(r"[a-z][a-z0-9_]{0,31}")


def keyed_name(env: str, key: str) -> str:
    """``OAUTH_{ID}_ISSUER`` for the id ``acme``: ``OAUTH_ACME_ISSUER``."""
    return env.replace(ID_PLACEHOLDER, key.upper())


def check_id(list_name: str, key: str) -> str:
    """An item id as settings name it: lower-case letters, digits, ``_``, a letter first."""
    if not _ID.fullmatch(key):
        raise ConfigurationError(
            f"{list_name}: {key!r} is no valid id (lower-case letters, digits and _, starting "
            "with a letter, at most 32)."
        )
    return key


def load_keyed(section: type[T], source: Source, key: str) -> T:
    """Build one item's ``section`` (names holding ``{ID}``) for the id ``key``.

    Values are checked as :func:`load_section` checks them, and errors name the variable as
    set (``OAUTH_ACME_ISSUER``). A ``parse`` or ``unset`` function of such a section gets
    ``Source.environ`` with the item's own variables under their ``{ID}`` names too, so it
    can read a sibling without knowing the id.
    """
    return _load(section, source, key=key)


def _load(
    section: type[T], source: Source, *, only: Iterable[str] | None = None, key: str | None = None
) -> T:
    hints = typing.get_type_hints(section)
    values: dict[str, Any] = {}
    wanted = None if only is None else set(only)
    if key is not None:
        own = {
            d.env: source.environ.get(keyed_name(d.env, key), "") for _, d in declarations(section)
        }
        source = Source({**source.environ, **own}, source.production)
    for f, declared in declarations(section):
        if wanted is not None and f.name not in wanted:
            continue
        name = declared.env if key is None else keyed_name(declared.env, key)
        if key is not None:
            declared = dataclasses.replace(declared, env=name)
        raw = source.environ.get(name, "").strip()
        if not raw:
            if declared.unset is not None:
                values[f.name] = declared.unset(source)
            continue
        value = (
            declared.parse(raw, source) if declared.parse else _convert(name, raw, hints[f.name])
        )
        _check_bounds(declared, value)
        values[f.name] = value
    return section(**values)


def load_environment(env_file: Path | None = None) -> dict[str, str]:
    """``.env`` (if present) under the real environment: the one source every loader reads.

    Variables already set in the environment win over the file, as with python-dotenv's
    ``load_dotenv``; the process environment itself is left untouched.
    """
    path = env_file or Path(os.environ.get("AUTHGRAPH_ENV_FILE", ".env"))
    file_values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    return {**file_values, **os.environ}


def env_example(sections: Iterable[type[Any]]) -> str:
    """``.env.example``: every declared setting, with its doc line above it."""
    lines = ["# authgraph settings. Copy to .env; real environment variables win over this file."]
    lines.append(
        "# Generated from the declarations (`authgraph env-example`); do not edit by hand."
    )
    for section in sections:
        lines += ["", f"# -- {(section.__doc__ or section.__name__).splitlines()[0]}"]
        example_id = getattr(section, "EXAMPLE_ID", None)
        if example_id is not None:
            # Per-item settings: an example item, commented out (copying this file must not
            # configure it).
            lines.append(f"# {section.EXAMPLE_NOTE}")
        for f, declared in declarations(section):
            lines.append(f"# {declared.doc}")
            if example_id is None:
                lines.append(f"{declared.env}={_example_value(f, declared)}")
            else:
                name = keyed_name(declared.env, example_id)
                lines.append(f"#{name}={_example_value(f, declared)}")
    return "\n".join(lines) + "\n"


def render(section: object) -> str:
    """``Name(field=value, ...)`` with secrets masked (they are :class:`Secret`)."""
    shown = ", ".join(
        f"{f.name}={getattr(section, f.name)!r}"
        for f in dataclasses.fields(section)  # type: ignore[arg-type]
    )
    return f"{type(section).__name__}({shown})"


def comma_list(raw: str) -> tuple[str, ...]:
    """``a, b,,c`` as ``("a", "b", "c")``."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _example_value(f: dataclasses.Field[Any], declared: Declaration) -> str:
    if declared.example is not None:
        return declared.example
    if f.default is dataclasses.MISSING or f.default is None:
        return ""
    default = f.default
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, tuple):
        return ",".join(str(item) for item in default)
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def _convert(name: str, raw: str, hint: Any) -> Any:
    """A raw value as the field's type: int, float, bool, str, a Literal, a list, a Secret."""
    options = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(options) == 1:
        hint = options[0]
    if hint is bool:
        return _boolean(name, raw)
    if hint is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be a whole number, got {raw!r}.") from None
    if hint is float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number, got {raw!r}.") from None
        if not math.isfinite(value):
            raise ConfigurationError(f"{name} must be a finite number, got {raw!r}.")
        return value
    if hint is Secret:
        return Secret(raw)
    if typing.get_origin(hint) is typing.Literal:
        allowed = typing.get_args(hint)
        choice = raw.lower()
        if choice not in allowed:
            raise ConfigurationError(f"{name} must be one of {', '.join(allowed)}; got {choice!r}.")
        return choice
    if typing.get_origin(hint) is tuple:
        return comma_list(raw)
    if hint is str:
        return raw
    raise TypeError(f"{name}: no conversion for {hint!r}; declare a parse function")


def _boolean(name: str, raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}.")


def _check_bounds(declared: Declaration, value: Any) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    if declared.minimum is not None and value < declared.minimum:
        raise ConfigurationError(
            f"{declared.env} must be at least {declared.minimum:g}, got {value}."
        )
    if declared.maximum is not None and value > declared.maximum:
        raise ConfigurationError(
            f"{declared.env} must be at most {declared.maximum:g}, got {value}."
        )
