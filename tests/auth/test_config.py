"""The declaration toolkit: a layer's settings read, converted and bounded by declaration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from auth.config import Secret, Source, env_example, load_section, render, setting
from auth.errors import ConfigurationError


@dataclass(frozen=True, repr=False)
class Example:
    """Example: one field of each kind."""

    count: int = setting("EX_COUNT", 3, doc="A count.", minimum=1, maximum=9)
    ratio: float = setting("EX_RATIO", 0.5, doc="A ratio.", minimum=0.1)
    flag: bool | None = setting("EX_FLAG", None, doc="A switch; empty = by mode.")
    mode: Literal["a", "b"] = setting("EX_MODE", "a", doc="A choice.")
    names: tuple[str, ...] = setting("EX_NAMES", (), doc="A list.")
    key: Secret = setting("EX_KEY", default_factory=lambda: Secret("default"), doc="A key.")


def load(**environ: str) -> Example:
    return load_section(Example, Source(environ, production=False))


def test_load_section_uses_declared_defaults_when_unset() -> None:
    example = load(EX_COUNT="  ")
    assert (example.count, example.ratio, example.flag, example.mode, example.names) == (
        3,
        0.5,
        None,
        "a",
        (),
    )


def test_load_section_converts_each_kind() -> None:
    example = load(EX_COUNT="9", EX_RATIO="2", EX_FLAG="off", EX_MODE="B", EX_NAMES="x, y,,")
    assert (example.count, example.ratio, example.flag, example.mode) == (9, 2.0, False, "b")
    assert example.names == ("x", "y")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EX_COUNT", "0"),
        ("EX_COUNT", "10"),
        ("EX_COUNT", "three"),
        ("EX_RATIO", "nan"),
        ("EX_RATIO", "0.01"),
        ("EX_FLAG", "maybe"),
        ("EX_MODE", "c"),
    ],
)
def test_load_section_refuses_a_bad_value_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        load(**{name: value})


def test_render_masks_secrets() -> None:
    shown = render(load(EX_KEY="hunter2-hunter2"))
    assert "hunter2" not in shown
    assert "Secret('**********')" in shown


def test_env_example_lists_each_declaration_with_its_doc() -> None:
    text = env_example([Example])
    assert "# -- Example: one field of each kind.\n" in text
    assert "# A count.\nEX_COUNT=3\n" in text
    assert "# A ratio.\nEX_RATIO=0.5\n" in text
    assert "EX_FLAG=\n" in text
    assert "EX_NAMES=\n" in text
