"""``authgraph check-config``: each finding it can report, all of them at once, text and JSON.

One case per finding (``PRODUCTION_CASES``, ``DEVELOPMENT_CASES``): the environment that
triggers exactly that finding from an otherwise sound configuration, its code, level,
setting and a stable part of its message; each is checked in process (fast), a few also as
the command itself. ``test_check_config_has_a_case_for_every_finding`` fails when the source
gains a finding no case covers.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from auth.errors import ConfigurationError
from auth.settings import AuthSettings
from graph import check_config as module
from graph.check_config import FINDINGS, Deployment, check, findings_table, run
from tests.servers import AUTHGRAPH
from tests.topology import ENV_FILE, read_env_file

ROOT = Path(__file__).resolve().parents[2]

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
WEBHOOK_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="  # 32 bytes


@dataclass(frozen=True)
class Expected:
    """The one finding a case must produce: code, level, setting, a stable part of the text."""

    code: str
    level: str
    setting: str
    says: str


def case(
    case_id: str,
    changes: dict[str, str],
    expected: Expected,
    deployment: Deployment = BEHIND_PROXY,
) -> Any:
    return pytest.param(changes, deployment, expected, id=case_id)


# Values may name files in the test's directory: {tmp} is replaced by it.
PRODUCTION_CASES = [
    case(
        "environment-unknown",
        {"AUTHGRAPH_ENV": "staging"},
        Expected("environment-unknown", "error", "AUTHGRAPH_ENV", "must be one of"),
    ),
    # What serve refuses, setting by setting.
    case(
        "refused-placeholder-key",
        {"JWT_SECRET": "changeme"},
        Expected(
            "setting-refused", "error", "JWT_SECRET", "JWT_SECRET is a well-known placeholder."
        ),
    ),
    case(
        "refused-missing-key",
        {"MFA_ENCRYPTION_KEY": ""},
        Expected(
            "setting-refused", "error", "MFA_ENCRYPTION_KEY", "MFA_ENCRYPTION_KEY is not set."
        ),
    ),
    case(
        "refused-short-key",
        {"KEY_ENCRYPTION_KEY": "short"},
        Expected("setting-refused", "error", "KEY_ENCRYPTION_KEY", "is shorter than 32 bytes"),
    ),
    case(
        "refused-weak-previous-key",
        {"KEY_ENCRYPTION_PREVIOUS_KEYS": secrets.token_urlsafe(48) + ",changeme"},
        Expected(
            "setting-refused",
            "error",
            "KEY_ENCRYPTION_PREVIOUS_KEYS",
            "KEY_ENCRYPTION_PREVIOUS_KEYS is a well-known placeholder.",
        ),
    ),
    case(
        "refused-short-mfa-previous-key",
        {"MFA_ENCRYPTION_PREVIOUS_KEYS": "short"},
        Expected(
            "setting-refused", "error", "MFA_ENCRYPTION_PREVIOUS_KEYS", "is shorter than 32 bytes"
        ),
    ),
    case(
        "refused-missing-smtp",
        {"SMTP_URL": ""},
        Expected("setting-refused", "error", "SMTP_URL", "SMTP_URL"),
    ),
    case(
        "refused-missing-app-url",
        {"APP_URL": ""},
        Expected("setting-refused", "error", "APP_URL", "APP_URL"),
    ),
    case(
        "refused-weak-introspection-secret",
        {"INTROSPECTION_CLIENTS": "api:changeme"},
        Expected("setting-refused", "error", "INTROSPECTION_CLIENTS", "INTROSPECTION_CLIENTS"),
    ),
    case(
        "refused-out-of-bounds",
        {"MAX_BODY_BYTES": "12"},
        Expected("setting-refused", "error", "MAX_BODY_BYTES", "MAX_BODY_BYTES must be at least"),
    ),
    case(
        "refused-unreadable-value",
        {"TRUSTED_PROXIES": "proxy.internal"},
        Expected("setting-refused", "error", "TRUSTED_PROXIES", "is not an IP address or network"),
    ),
    case(
        "refused-plain-http-webhook",
        {"WEBHOOK_URL": "http://hooks.example.com/in", "WEBHOOK_SECRET": WEBHOOK_SECRET},
        Expected(
            "setting-refused", "error", "WEBHOOK_URL", "WEBHOOK_URL must be https:// in production."
        ),
    ),
    # What serve refuses between settings.
    case(
        "passkeys-half-configured",
        {"WEBAUTHN_RP_ID": "app.example.com"},
        Expected(
            "passkeys-half-configured",
            "error",
            "WEBAUTHN_ORIGINS",
            "WEBAUTHN_ORIGINS is not set: passkeys need both",
        ),
    ),
    case(
        "webhook-secret-missing",
        {"WEBHOOK_URL": "https://hooks.example.com/in"},
        Expected("webhook-secret-missing", "error", "WEBHOOK_SECRET", "WEBHOOK_SECRET is not set;"),
    ),
    case(
        "bcrypt-rounds-low",
        {"BCRYPT_ROUNDS": "4"},
        Expected(
            "bcrypt-rounds-low",
            "error",
            "BCRYPT_ROUNDS",
            "BCRYPT_ROUNDS is 4; production needs at least 10.",
        ),
    ),
    case(
        "mfa-key-is-jwt-secret",
        {"MFA_ENCRYPTION_KEY": PRODUCTION["JWT_SECRET"]},
        Expected("mfa-key-is-jwt-secret", "error", "MFA_ENCRYPTION_KEY", "equals JWT_SECRET"),
    ),
    case(
        "mfa-previous-key-is-jwt-secret",
        {"MFA_ENCRYPTION_PREVIOUS_KEYS": PRODUCTION["JWT_SECRET"]},
        Expected(
            "mfa-key-is-jwt-secret",
            "error",
            "MFA_ENCRYPTION_PREVIOUS_KEYS",
            "MFA_ENCRYPTION_PREVIOUS_KEYS holds JWT_SECRET",
        ),
    ),
    # The manifest each process loads when it starts.
    case(
        "trusted-documents-missing",
        {"TRUSTED_DOCUMENTS": "{tmp}/absent.json"},
        Expected("trusted-documents-unusable", "error", "TRUSTED_DOCUMENTS", "cannot be read"),
    ),
    case(
        "trusted-documents-unreadable",
        {"TRUSTED_DOCUMENTS": "{tmp}"},
        Expected("trusted-documents-unusable", "error", "TRUSTED_DOCUMENTS", "cannot be read"),
    ),
    case(
        "trusted-documents-not-json",
        {"TRUSTED_DOCUMENTS": "{tmp}/not.json"},
        Expected("trusted-documents-unusable", "error", "TRUSTED_DOCUMENTS", "is not JSON."),
    ),
    case(
        "trusted-documents-only-without-manifest",
        {"TRUSTED_DOCUMENTS_ONLY": "true"},
        Expected(
            "trusted-documents-unusable",
            "error",
            "TRUSTED_DOCUMENTS",
            "TRUSTED_DOCUMENTS_ONLY=true needs TRUSTED_DOCUMENTS",
        ),
    ),
    # The settings file serve reads first.
    case(
        "env-file-unreadable",
        {"AUTHGRAPH_ENV_FILE": "{tmp}/latin-1.env"},
        Expected(
            "env-file-unreadable",
            "error",
            "AUTHGRAPH_ENV_FILE",
            "latin-1.env cannot be read (not UTF-8): serve stops",
        ),
    ),
    case(
        "env-file-missing",
        {"AUTHGRAPH_ENV_FILE": "{tmp}/absent.env"},
        Expected(
            "env-file-missing",
            "warning",
            "AUTHGRAPH_ENV_FILE",
            "absent.env is not a file: serve would silently read no settings from it.",
        ),
    ),
    case(
        "env-file-is-a-directory",
        {"AUTHGRAPH_ENV_FILE": "{tmp}"},
        Expected("env-file-missing", "warning", "AUTHGRAPH_ENV_FILE", "is not a file"),
    ),
    # SQLite with several instances or workers.
    case(
        "sqlite-instances",
        {"DATABASE_URL": "sqlite:///./a.db"},
        Expected("sqlite-instances", "error", "DATABASE_URL", "SQLite cannot be shared by 2"),
    ),
    case(
        "sqlite-workers",
        {"DATABASE_URL": "sqlite:///./a.db"},
        Expected("sqlite-workers", "warning", "DATABASE_URL", "SQLite with 2 workers"),
        Deployment(workers=2, behind_proxy=True),
    ),
    # Rate limits counted in each process's memory.
    case(
        "rate-limits-per-instance",
        {"RATE_LIMIT_STORAGE": "memory://"},
        Expected(
            "rate-limits-per-process", "error", "RATE_LIMIT_STORAGE", "memory:// with 2 processes"
        ),
    ),
    case(
        "rate-limits-per-worker",
        {"RATE_LIMIT_STORAGE": "memory://"},
        Expected(
            "rate-limits-per-process", "error", "RATE_LIMIT_STORAGE", "memory:// with 3 processes"
        ),
        Deployment(workers=3, behind_proxy=True),
    ),
    # Browsers and proxies.
    case(
        "trusted-proxies-missing",
        {"TRUSTED_PROXIES": ""},
        Expected("trusted-proxies-missing", "error", "TRUSTED_PROXIES", "empty behind a proxy"),
    ),
    case(
        "trusted-proxies-unset",
        {"TRUSTED_PROXIES": ""},
        Expected("trusted-proxies-unset", "warning", "TRUSTED_PROXIES", "run check-config with"),
        Deployment(),
    ),
    case(
        "trusted-proxies-everyone",
        {"TRUSTED_PROXIES": "0.0.0.0/0"},
        Expected("trusted-proxies-everyone", "error", "TRUSTED_PROXIES", "trusts every address"),
    ),
    case(
        "cors-plain-http",
        {"CORS_ORIGINS": "http://app.example.com"},
        Expected(
            "cors-plain-http",
            "error",
            "CORS_ORIGINS",
            "http://app.example.com is plain HTTP",
        ),
    ),
    case(
        "app-url-plain-http",
        {"APP_URL": "http://app.example.com"},
        Expected("app-url-plain-http", "warning", "APP_URL", "carry one-time tokens"),
    ),
    # Developer pages left on in production.
    case(
        "graphiql-on",
        {"GRAPHIQL": "true"},
        Expected("graphiql-on", "warning", "GRAPHIQL", "on in production: GraphiQL"),
    ),
    case(
        "api-docs-on",
        {"API_DOCS": "true"},
        Expected("api-docs-on", "warning", "API_DOCS", "on in production: /docs"),
    ),
    case(
        "introspection-on",
        {"GRAPHQL_INTROSPECTION": "true"},
        Expected(
            "introspection-on", "warning", "GRAPHQL_INTROSPECTION", "the whole schema is readable"
        ),
    ),
    # More hashing threads than cores.
    case(
        "hash-workers-oversubscribed",
        {"HASH_WORKERS": "256"},
        Expected("hash-workers-oversubscribed", "warning", "HASH_WORKERS", "256 hashing threads"),
    ),
]

# From the same configuration with AUTHGRAPH_ENV=development.
DEVELOPMENT_CASES = [
    case(
        "development-key-unset",
        {"JWT_SECRET": ""},
        Expected(
            "development-key-unset",
            "warning",
            "JWT_SECRET",
            "not set: development generates one",
        ),
    ),
    case(
        "development-key-weak",
        {"MFA_ENCRYPTION_KEY": "changeme"},
        Expected(
            "development-key-weak",
            "warning",
            "MFA_ENCRYPTION_KEY",
            "is a well-known placeholder; production refuses it.",
        ),
    ),
    case(
        "development-previous-key-weak",
        {"KEY_ENCRYPTION_PREVIOUS_KEYS": secrets.token_urlsafe(48) + ",short"},
        Expected(
            "development-key-weak",
            "warning",
            "KEY_ENCRYPTION_PREVIOUS_KEYS",
            "key 2 is shorter than 32 bytes; production refuses it.",
        ),
    ),
    case(
        "development-bcrypt-rounds-low",
        {"BCRYPT_ROUNDS": "4"},
        Expected(
            "development-bcrypt-rounds-low",
            "warning",
            "BCRYPT_ROUNDS",
            "4 is refused in production",
        ),
    ),
    case(
        "development-refused",
        {"MAX_BODY_BYTES": "12"},
        Expected("setting-refused", "error", "MAX_BODY_BYTES", "MAX_BODY_BYTES must be at least"),
    ),
    case(
        "development-webhook-secret-missing",
        {"WEBHOOK_URL": "http://localhost:9000/hooks"},
        Expected("webhook-secret-missing", "error", "WEBHOOK_SECRET", "WEBHOOK_SECRET is not set;"),
    ),
]

# These also run as the command itself, as an operator runs it (a warning's exit 0 as a
# command: test_check_config_reads_dotenv_as_serve_does_and_exits_1_on_an_error).
AS_A_COMMAND = {
    "refused-placeholder-key",
    "trusted-documents-unreadable",
    "env-file-unreadable",  # the command stopped with a traceback here
}


@pytest.fixture(autouse=True)
def four_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    # In process, the machine has four usable cores, so that a case with --workers 2 or 3
    # reports what it is about and not also HASH_WORKERS on a small test machine.
    monkeypatch.setattr(module, "usable_cores", lambda: 4)


def files(tmp_path: Path, changes: dict[str, str]) -> dict[str, str]:
    """``changes`` with {tmp} filled in, and the files the cases name written there."""
    (tmp_path / "not.json").write_text("{not json")
    (tmp_path / "latin-1.env").write_bytes(
        "EMAIL_FROM=Caf\u00e9 <x@example.com>\n".encode("latin-1")
    )
    return {name: value.replace("{tmp}", str(tmp_path)) for name, value in changes.items()}


def found(environ: dict[str, str], deployment: Deployment = BEHIND_PROXY) -> list[tuple[str, str]]:
    return [(p.level, p.setting) for p in check(environ, deployment).problems]


def assert_reports(
    output: str, exit_code: int, as_json: bool, expected: Expected, environment: str
) -> None:
    """``output`` reports exactly ``expected``, with the exit code its level calls for."""
    assert exit_code == (1 if expected.level == "error" else 0), output
    if not as_json:
        lines = output.splitlines()
        assert len(lines) == 3, output
        assert lines[1].startswith(f"{expected.level:<7} {expected.setting}: "), output
        assert expected.says in lines[1]
        assert lines[2] == (
            "1 error(s), 0 warning(s)" if expected.level == "error" else "0 error(s), 1 warning(s)"
        )
        return
    report = json.loads(output)
    assert set(report) == {"environment", "deployment", "errors", "warnings", "problems"}
    assert report["environment"] == environment
    assert set(report["deployment"]) == {"workers", "instances", "behind_proxy"}
    assert (report["errors"], report["warnings"]) == (
        (1, 0) if expected.level == "error" else (0, 1)
    )
    [problem] = report["problems"]
    assert set(problem) == {"level", "setting", "message", "code"}
    assert (problem["code"], problem["level"], problem["setting"]) == (
        expected.code,
        expected.level,
        expected.setting,
    )
    assert expected.says in problem["message"]


@pytest.mark.parametrize("base", [PRODUCTION, DEVELOPMENT])
def test_check_config_of_a_sound_configuration_finds_nothing(base: dict[str, str]) -> None:
    assert found(base) == []
    output, exit_code = run(base, BEHIND_PROXY, as_json=False)
    assert exit_code == 0
    assert output.splitlines()[-1] == "no problems found"


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize(("changes", "deployment", "expected"), PRODUCTION_CASES)
def test_check_config_reports_each_production_finding(
    changes: dict[str, str],
    deployment: Deployment,
    expected: Expected,
    as_json: bool,
    tmp_path: Path,
) -> None:
    environ = {**PRODUCTION, **files(tmp_path, changes)}
    output, exit_code = run(environ, deployment, as_json=as_json)
    assert_reports(output, exit_code, as_json, expected, "production")


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize(("changes", "deployment", "expected"), DEVELOPMENT_CASES)
def test_check_config_reports_each_development_finding(
    changes: dict[str, str],
    deployment: Deployment,
    expected: Expected,
    as_json: bool,
    tmp_path: Path,
) -> None:
    secret_file = tmp_path / "dev-secret"
    environ = {**DEVELOPMENT, **changes, "AUTHGRAPH_DEV_SECRET_FILE": str(secret_file)}
    output, exit_code = run(environ, deployment, as_json=as_json)
    assert_reports(output, exit_code, as_json, expected, "development")
    # A missing key is reported, not generated: check-config writes nothing.
    assert not secret_file.exists()


def test_check_config_tolerates_plain_http_origins_in_development() -> None:
    # The example SPA on localhost.
    assert found({**DEVELOPMENT, "CORS_ORIGINS": "http://localhost:5173"}) == []


def check_config(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AUTHGRAPH, "check-config", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def command_line(deployment: Deployment) -> list[str]:
    args = ["--workers", str(deployment.workers), "--instances", str(deployment.instances)]
    return args + (["--behind-proxy"] if deployment.behind_proxy else [])


@pytest.mark.parametrize(
    ("changes", "deployment", "expected"),
    [p for p in PRODUCTION_CASES if p.id in AS_A_COMMAND],
)
def test_check_config_as_a_command_reports_the_finding_and_exits_by_its_level(
    changes: dict[str, str], deployment: Deployment, expected: Expected, tmp_path: Path
) -> None:
    environ = {**PRODUCTION, **files(tmp_path, changes)}
    for as_json in (False, True):
        args = command_line(deployment) + (["--json"] if as_json else [])
        done = check_config(tmp_path, *args, env=environ)
        assert done.stderr == ""
        assert_reports(done.stdout, done.returncode, as_json, expected, "production")


def _kebab_constants(tree: ast.AST, skip: ast.AST | None = None) -> set[str]:
    """The string constants of ``tree`` that look like finding codes (``a-b``), outside
    ``skip``."""
    skipped = {id(n) for n in ast.walk(skip)} if skip is not None else set()
    return {
        node.value
        for node in ast.walk(tree)
        if id(node) not in skipped
        and isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"[a-z]+(-[a-z]+)+", node.value)
    }


def emitted_codes() -> set[str]:
    """Every finding code the source can emit: check_config's own, and AuthSettings.problems'."""
    tree = ast.parse(Path(module.__file__).read_text())
    [catalogue] = [
        n
        for n in tree.body
        if isinstance(n, ast.AnnAssign)
        and isinstance(n.target, ast.Name)
        and n.target.id == "FINDINGS"
    ]
    codes = _kebab_constants(tree, skip=catalogue)
    settings = ast.parse((ROOT / "auth" / "settings.py").read_text())
    [problems] = [
        n for n in ast.walk(settings) if isinstance(n, ast.FunctionDef) and n.name == "problems"
    ]
    return codes | _kebab_constants(problems)


def test_check_config_has_a_case_for_every_finding() -> None:
    # Each code the source emits is catalogued (with its level), and each one catalogued is
    # emitted somewhere: a new report.add(...) or AuthSettings.problems entry shows here.
    assert emitted_codes() == set(FINDINGS)
    covered = {p.values[2].code for p in PRODUCTION_CASES + DEVELOPMENT_CASES}
    assert covered == set(FINDINGS), f"no case for {sorted(set(FINDINGS) - covered)}"
    # A case's level is the catalogue's.
    for p in PRODUCTION_CASES + DEVELOPMENT_CASES:
        assert p.values[2].level == FINDINGS[p.values[2].code].level, p.id


def test_check_config_findings_are_listed_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    assert findings_table() in readme, (
        "README's check-config table is stale; regenerate it with "
        '.venv/bin/python -c "from graph.check_config import findings_table as t; print(t())"'
    )


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


@pytest.mark.parametrize(
    ("changes", "hidden"),
    [
        # WEBHOOK_URL refused (http in production) was judged as unset, so WEBHOOK_SECRET's
        # absence only showed once the URL was fixed.
        ({"WEBHOOK_URL": "http://hooks.example.com/in"}, ("error", "WEBHOOK_SECRET")),
        # WEBAUTHN_RP_ID refused (a URL, not a domain): WEBAUTHN_ORIGINS is still missing
        # (this one was right before, the field's default being non-empty; kept so it stays).
        ({"WEBAUTHN_RP_ID": "https://app.example.com"}, ("error", "WEBAUTHN_ORIGINS")),
    ],
)
def test_check_config_judges_a_refused_value_as_set(
    changes: dict[str, str], hidden: tuple[str, str]
) -> None:
    [refused, also] = found({**PRODUCTION, **changes})
    assert refused == ("error", next(iter(changes)))
    assert also == hidden


def test_check_config_still_reports_a_refusal_its_own_checks_do_not_know(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The safety net: whatever Settings.from_env refuses shows, even if no check above knows.
    def refuse(cls: type[AuthSettings], source: object) -> AuthSettings:
        raise ConfigurationError("a refusal check-config does not know of.")

    monkeypatch.setattr(AuthSettings, "load", classmethod(refuse))
    [problem] = check(PRODUCTION, BEHIND_PROXY).problems
    assert (problem.code, problem.level, problem.setting) == ("setting-refused", "error", "")
    assert problem.message == "a refusal check-config does not know of."


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
