"""``authgraph check-config``: each problem it reports, all of them at once, text and JSON."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest

from graph.check_config import Deployment, check
from tests.servers import AUTHGRAPH
from tests.topology import ENV_FILE, read_env_file

# A production configuration with nothing to report for two instances behind a proxy.
PRODUCTION = {
    "AUTHGRAPH_ENV": "production",
    "DATABASE_URL": "postgresql://authgraph@db.internal/authgraph",
    "RATE_LIMIT_STORAGE": "redis://redis.internal:6379/0",
    "TRUSTED_PROXIES": "10.0.0.5",
    "JWT_SECRET": secrets.token_urlsafe(48),
    "KEY_ENCRYPTION_KEY": secrets.token_urlsafe(48),
    "MFA_ENCRYPTION_KEY": secrets.token_urlsafe(48),
    "SMTP_URL": "smtp://mail.internal:587",
    "APP_URL": "https://app.example.com",
    "CORS_ORIGINS": "https://app.example.com",
    "HASH_WORKERS": "1",
}
DEVELOPMENT = {**PRODUCTION, "AUTHGRAPH_ENV": "development"}
BEHIND_PROXY = Deployment(instances=2, behind_proxy=True)


def found(environ: dict[str, str], deployment: Deployment = BEHIND_PROXY) -> list[tuple[str, str]]:
    return [(p.level, p.setting) for p in check(environ, deployment).problems]


@pytest.mark.parametrize("base", [PRODUCTION, DEVELOPMENT])
def test_check_config_of_a_sound_configuration_finds_nothing(base: dict[str, str]) -> None:
    assert found(base) == []


@pytest.mark.parametrize(
    ("changes", "deployment", "expected"),
    [
        # What serve refuses in production, each named.
        ({"JWT_SECRET": "changeme"}, BEHIND_PROXY, ("error", "JWT_SECRET")),
        ({"MFA_ENCRYPTION_KEY": ""}, BEHIND_PROXY, ("error", "MFA_ENCRYPTION_KEY")),
        ({"KEY_ENCRYPTION_KEY": "short"}, BEHIND_PROXY, ("error", "KEY_ENCRYPTION_KEY")),
        (
            {"MFA_ENCRYPTION_KEY": PRODUCTION["JWT_SECRET"]},
            BEHIND_PROXY,
            ("error", "MFA_ENCRYPTION_KEY"),
        ),
        ({"BCRYPT_ROUNDS": "4"}, BEHIND_PROXY, ("error", "BCRYPT_ROUNDS")),
        ({"SMTP_URL": ""}, BEHIND_PROXY, ("error", "SMTP_URL")),
        ({"MAX_BODY_BYTES": "12"}, BEHIND_PROXY, ("error", "MAX_BODY_BYTES")),
        ({"AUTHGRAPH_ENV": "staging"}, BEHIND_PROXY, ("error", "AUTHGRAPH_ENV")),
        # SQLite with several instances or workers.
        ({"DATABASE_URL": "sqlite:///./a.db"}, BEHIND_PROXY, ("error", "DATABASE_URL")),
        (
            {"DATABASE_URL": "sqlite:///./a.db"},
            Deployment(workers=2, behind_proxy=True),
            ("warning", "DATABASE_URL"),
        ),
        # Rate limits counted in each process's memory.
        ({"RATE_LIMIT_STORAGE": "memory://"}, BEHIND_PROXY, ("error", "RATE_LIMIT_STORAGE")),
        (
            {"RATE_LIMIT_STORAGE": "memory://"},
            Deployment(workers=2, behind_proxy=True),
            ("error", "RATE_LIMIT_STORAGE"),
        ),
        # Browsers and proxies.
        ({"CORS_ORIGINS": "http://app.example.com"}, BEHIND_PROXY, ("error", "CORS_ORIGINS")),
        ({"TRUSTED_PROXIES": ""}, BEHIND_PROXY, ("error", "TRUSTED_PROXIES")),
        ({"TRUSTED_PROXIES": ""}, Deployment(), ("warning", "TRUSTED_PROXIES")),
        ({"TRUSTED_PROXIES": "0.0.0.0/0"}, BEHIND_PROXY, ("error", "TRUSTED_PROXIES")),
        ({"APP_URL": "http://app.example.com"}, BEHIND_PROXY, ("warning", "APP_URL")),
        # Developer pages left on in production.
        ({"GRAPHIQL": "true"}, BEHIND_PROXY, ("warning", "GRAPHIQL")),
        ({"API_DOCS": "true"}, BEHIND_PROXY, ("warning", "API_DOCS")),
        ({"GRAPHQL_INTROSPECTION": "true"}, BEHIND_PROXY, ("warning", "GRAPHQL_INTROSPECTION")),
        # More hashing threads than cores.
        ({"HASH_WORKERS": "256"}, BEHIND_PROXY, ("warning", "HASH_WORKERS")),
    ],
)
def test_check_config_reports_each_production_problem(
    changes: dict[str, str], deployment: Deployment, expected: tuple[str, str]
) -> None:
    assert found({**PRODUCTION, **changes}, deployment) == [expected]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"JWT_SECRET": ""}, ("warning", "JWT_SECRET")),
        ({"MFA_ENCRYPTION_KEY": "changeme"}, ("warning", "MFA_ENCRYPTION_KEY")),
        ({"BCRYPT_ROUNDS": "4"}, ("warning", "BCRYPT_ROUNDS")),
        # Development tolerates plain-HTTP origins (the example SPA on localhost).
        ({"CORS_ORIGINS": "http://localhost:5173"}, None),
    ],
)
def test_check_config_warns_of_what_production_would_refuse_in_development(
    changes: dict[str, str], expected: tuple[str, str] | None, tmp_path: Path
) -> None:
    secret_file = tmp_path / "dev-secret"
    environ = {**DEVELOPMENT, **changes, "AUTHGRAPH_DEV_SECRET_FILE": str(secret_file)}
    assert found(environ) == ([expected] if expected else [])
    # A missing key is reported, not generated: check-config writes nothing.
    assert not secret_file.exists()


def test_check_config_reports_every_problem_at_once() -> None:
    environ = {
        **PRODUCTION,
        "JWT_SECRET": "changeme",
        "BCRYPT_ROUNDS": "4",
        "CORS_ORIGINS": "http://app.example.com",
        "RATE_LIMIT_STORAGE": "memory://",
    }
    # serve stops at the first refusal; check-config names them all, and the deployment's too.
    assert found(environ) == [
        ("error", "JWT_SECRET"),
        ("error", "BCRYPT_ROUNDS"),
        ("error", "RATE_LIMIT_STORAGE"),
        ("error", "CORS_ORIGINS"),
    ]


def check_config(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AUTHGRAPH, "check-config", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_reads_dotenv_as_serve_does_and_exits_1_on_an_error(tmp_path: Path) -> None:
    # .env holds the configuration; the environment wins over it, as for serve.
    lines = [f"{k}={v}" for k, v in {**PRODUCTION, "BCRYPT_ROUNDS": "4"}.items()]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    failed = check_config(tmp_path, "--instances", "2", "--behind-proxy", env={"GRAPHIQL": "on"})
    assert failed.returncode == 1, failed.stderr
    assert (
        "error   BCRYPT_ROUNDS: BCRYPT_ROUNDS is 4; production needs at least 10." in failed.stdout
    )
    assert failed.stdout.rstrip().endswith("1 error(s), 1 warning(s)")
    passed = check_config(tmp_path, "--json", env={"BCRYPT_ROUNDS": "12", "GRAPHIQL": "on"})
    assert passed.returncode == 0, passed.stdout
    report = json.loads(passed.stdout)
    assert report["environment"] == "production"
    assert report["errors"] == 0
    assert [p["setting"] for p in report["problems"]] == ["GRAPHIQL"]
    assert report["problems"][0]["level"] == "warning"


def test_check_config_of_the_shipped_env_file_names_only_the_secrets_to_fill_in(
    tmp_path: Path,
) -> None:
    shipped = read_env_file(ENV_FILE)
    deployment = ("--instances", "2", "--behind-proxy")
    empty = check_config(tmp_path, "--json", *deployment, env=shipped)
    assert empty.returncode == 1
    settings = {p["setting"] for p in json.loads(empty.stdout)["problems"] if p["level"] == "error"}
    assert settings == {"JWT_SECRET", "KEY_ENCRYPTION_KEY", "MFA_ENCRYPTION_KEY"}
    keys = {name: secrets.token_urlsafe(48) for name in settings}
    filled = check_config(tmp_path, "--json", *deployment, env={**shipped, **keys})
    assert filled.returncode == 0, filled.stdout
    # HASH_WORKERS=2 may be more than a small test machine's cores: that alone may remain.
    left = {p["setting"] for p in json.loads(filled.stdout)["problems"]}
    assert left <= {"HASH_WORKERS"}
