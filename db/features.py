"""Feature repositories: which SQL class implements which domain port, and where tables live.

A feature keeps its tables and its repository in one module of this package (``db/mfa.py``
is the example): the tables on :class:`db.models.Base`, the repository marked with
:func:`implements` and the domain Protocol it implements. The unit of work then hands it out
as ``uow.repository(Port)``, and :func:`metadata` (what Alembic, the tests and the schema
check read) finds the tables, with no list of features to keep anywhere.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import MetaData
from sqlalchemy.orm import Session as OrmSession

import db
from db.models import Base

C = TypeVar("C")

_implementations: dict[type[Any], Callable[[OrmSession], Any]] = {}
_loaded = False


def implements(port: type[Any]) -> Callable[[type[C]], type[C]]:
    """Mark a repository class (built from an ORM session) as the implementation of ``port``."""

    def register(cls: type[C]) -> type[C]:
        if port in _implementations and _implementations[port] is not cls:
            raise RuntimeError(f"{port.__qualname__} is implemented twice")
        _implementations[port] = cls
        return cls

    return register


def implementation(port: type[Any]) -> Callable[[OrmSession], Any]:
    """The class registered for ``port``; ``LookupError`` naming the port if there is none."""
    load()
    try:
        return _implementations[port]
    except KeyError:
        raise LookupError(
            f"no module of db/ implements {port.__qualname__}: mark its repository class "
            "with @db.features.implements"
        ) from None


def metadata() -> MetaData:
    """Every table of every module of ``db/``."""
    load()
    return Base.metadata


def load() -> None:
    """Import each module of ``db/`` once, so that its tables and repositories register."""
    global _loaded
    if _loaded:
        return
    for module in pkgutil.iter_modules(db.__path__):
        if not module.ispkg:  # db.migrations holds Alembic's scripts, not features
            importlib.import_module(f"db.{module.name}")
    _loaded = True
