"""Layers point one way: graph -> auth <- db. Checked on the source, so a stray import fails CI.

Inside graph/, only the composition root (graph/root.py) may import db/: every other module
gets its services from the app state. Every repository port a use case asks for
(``uow.repository(Port)``) has its implementation in db/, found at test time, not in production.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "auth": {
        "fastapi",
        "starlette",
        "strawberry",
        "graphql",
        "sqlalchemy",
        "graph",
        "db",
        "uvicorn",
        "mail",
        "aiosmtplib",
        "psycopg",
    },
    "db": {"fastapi", "starlette", "strawberry", "graph", "uvicorn", "mail"},
    "mail": {"fastapi", "starlette", "strawberry", "sqlalchemy", "graph", "db", "uvicorn"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_in_layer(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
        if _imports(path) & FORBIDDEN[package]
    }
    assert offenders == {}


COMPOSITION_ROOT = ROOT / "graph" / "root.py"


def test_only_composition_root_imports_db_in_graph() -> None:
    offenders = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "graph").rglob("*.py")
        # ast.walk sees the imports inside functions too (the CLI defers its own).
        if path != COMPOSITION_ROOT and "db" in _imports(path)
    )
    assert offenders == []
    assert "db" in _imports(COMPOSITION_ROOT)


def _repository_ports() -> set[tuple[str, str]]:
    """(module, name) of every port a use case of auth/ asks for with ``.repository(Port)``."""
    found: set[tuple[str, str]] = set()
    for path in (ROOT / "auth").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "repository"
                and node.args
                and isinstance(node.args[0], ast.Name)
            ):
                found.add((module, node.args[0].id))
    return found


def test_every_repository_port_asked_for_has_an_implementation() -> None:
    import importlib

    from db.features import implementation

    ports = _repository_ports()
    assert ("auth.mfa", "MfaRepository") in ports
    for module, name in sorted(ports):
        implementation(getattr(importlib.import_module(module), name))  # LookupError names it
