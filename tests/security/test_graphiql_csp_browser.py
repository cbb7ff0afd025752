"""GraphiQL still works under its strict CSP, in a real browser (headless Chromium)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.servers import authgraph_env, run_cli, serve

SECRET = "csp-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


@pytest.mark.browser
def test_graphiql_renders_with_no_csp_violation(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        skip_or_fail("Debian's chromium is not installed")
        return
    env = authgraph_env(DATABASE_URL=f"sqlite:///{tmp_path / 'csp.db'}", JWT_SECRET=SECRET)
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with serve(env, tmp_path) as base:
        result = subprocess.run(
            [
                chromium,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--enable-logging=stderr",
                "--v=0",
                "--virtual-time-budget=10000",
                "--dump-dom",
                f"{base}/graphql",
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    # The editor exists only if every script ran; the console names any blocked resource.
    assert "graphiql-execute-button" in result.stdout, result.stderr[-2000:]
    violations = [line for line in result.stderr.splitlines() if "Content Security Policy" in line]
    assert violations == []
