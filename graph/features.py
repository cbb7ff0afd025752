"""The schema's root types, joined from the feature modules of ``graph/``.

A feature module declares its root fields on a Strawberry type of its own and marks it::

    @extends_mutation
    @strawberry.type
    class MfaMutations: ...

:func:`root_type` imports every module of the package once and joins the marked classes
into ``Query`` or ``Mutation``, so adding a feature edits no shared module. Fields keep the
order of their modules' names, then of their classes' names: the printed schema is stable.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Literal, TypeVar

import strawberry

import graph

RootName = Literal["Query", "Mutation"]
T = TypeVar("T", bound=type)

_parts: dict[RootName, set[type]] = {"Query": set(), "Mutation": set()}


def extends_query(cls: T) -> T:
    """Mark a Strawberry type whose fields join the root ``Query``."""
    _parts["Query"].add(cls)
    return cls


def extends_mutation(cls: T) -> T:
    """Mark a Strawberry type whose fields join the root ``Mutation``."""
    _parts["Mutation"].add(cls)
    return cls


@functools.cache
def root_type(name: RootName) -> type:
    """``name``'s root type: one Strawberry type inheriting every marked class."""
    for module in pkgutil.iter_modules(graph.__path__):
        importlib.import_module(f"graph.{module.name}")
    parts = sorted(_parts[name], key=lambda c: (c.__module__, c.__qualname__))
    if not parts:
        raise LookupError(f"no module of graph/ extends {name}")
    return strawberry.type(type(name, tuple(parts), {}))
