"""The example SPA's trusted-documents manifest is what its build script makes of its
operations, and authgraph loads it (examples/spa/build-manifest.mjs, graph/documents.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from graph.documents import load_manifest
from tests.servers import EXAMPLES

SPA = EXAMPLES / "spa"


def test_spa_manifest_is_built_from_its_operations(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is missing (CI installs it)")
    out = tmp_path / "manifest.json"
    done = subprocess.run(
        [node, str(SPA / "build-manifest.mjs"), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    committed = SPA / "trusted-documents.json"
    assert out.read_text() == committed.read_text(), "run: node examples/spa/build-manifest.mjs"
    documents = load_manifest(str(committed))
    assert any("viewer" in text for text in documents.values())
    assert any("refreshToken" in text for text in documents.values())
