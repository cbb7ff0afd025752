from __future__ import annotations

import re
from pathlib import Path

import pytest

from auth.errors import ConfigurationError
from auth.settings import Settings, load_settings, smtp_endpoint

STRONG = "k3y-" + "abcdefghijklmnopqrstuvwxyz0123456789"
ROOT = Path(__file__).resolve().parents[2]


def prod(**env: str) -> dict[str, str]:
    return {
        "AUTHGRAPH_ENV": "production",
        "JWT_SECRET": STRONG,
        "SMTP_URL": "smtp://mailer:p%40ss@mail.example.com:587",
        "APP_URL": "https://app.example.com",
        **env,
    }


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"JWT_SECRET": ""}, "JWT_SECRET"),
        ({"JWT_SECRET": "too-short-secret"}, "JWT_SECRET"),
        ({"JWT_SECRET": "changeme"}, "JWT_SECRET"),
        ({"JWT_SECRET": "a" * 40}, "JWT_SECRET"),
        ({"BCRYPT_ROUNDS": "9"}, "BCRYPT_ROUNDS"),
        ({"BCRYPT_ROUNDS": "twelve"}, "BCRYPT_ROUNDS"),
        ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": "https://app.example.com/"}, "CORS_ORIGINS"),
        ({"REFRESH_TOKEN_TRANSPORT": "header"}, "REFRESH_TOKEN_TRANSPORT"),
        ({"TRUSTED_PROXIES": "not-an-ip"}, "TRUSTED_PROXIES"),
        ({"AUTHGRAPH_ENV": "staging"}, "AUTHGRAPH_ENV"),
        ({"SMTP_URL": ""}, "SMTP_URL"),
        ({"SMTP_URL": "http://mail.example.com"}, "SMTP_URL"),
        ({"APP_URL": ""}, "APP_URL"),
        ({"APP_URL": "app.example.com"}, "APP_URL"),
        ({"OUTBOX_MAX_ATTEMPTS": "0"}, "OUTBOX_MAX_ATTEMPTS"),
        ({"HASH_WORKERS": "0"}, "HASH_WORKERS"),
        ({"HASH_WORKERS": "all"}, "HASH_WORKERS"),
        ({"HASH_QUEUE_LIMIT": "-1"}, "HASH_QUEUE_LIMIT"),
        ({"HASH_NICENESS": "20"}, "HASH_NICENESS"),
        ({"DATABASE_URL": "authgraph.db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://db/authgraph"}, "DATABASE_URL"),
    ],
)
def test_from_env_refuses_unsafe_production_naming_setting(
    env: dict[str, str], setting: str
) -> None:
    with pytest.raises(ConfigurationError, match=setting):
        Settings.from_env(prod(**env))


def test_from_env_accepts_production_with_sqlite_and_no_cors() -> None:
    settings = Settings.from_env(prod(DATABASE_URL="sqlite:///./prod.db", CORS_ORIGINS=""))
    assert settings.is_production
    assert settings.cors_origins == ()


def test_from_env_reads_defaults() -> None:
    settings = Settings.from_env(prod())
    assert settings.access_token_ttl_seconds == 900
    assert settings.bcrypt_rounds == 12
    assert settings.refresh_reuse_grace_seconds == 10
    assert settings.refresh_token_transport == "body"


def test_repr_masks_secrets() -> None:
    settings = Settings.from_env(prod(JWT_PREVIOUS_SECRETS="old-" + STRONG))
    assert STRONG not in repr(settings)
    assert "**********" in repr(settings)


def test_from_env_generates_and_keeps_dev_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret_file = tmp_path / "secret"
    env = {"AUTHGRAPH_DEV_SECRET_FILE": str(secret_file)}
    first = Settings.from_env(env).jwt_secret.reveal()
    assert "JWT_SECRET is not set" in caplog.text
    assert len(first.encode()) >= 32
    assert secret_file.stat().st_mode & 0o077 == 0
    assert Settings.from_env(env).jwt_secret.reveal() == first


def test_load_settings_reads_env_file_under_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ACCESS_TOKEN_TTL_SECONDS=120\nJWT_ISSUER=from-file\n")
    monkeypatch.setenv("JWT_ISSUER", "from-env")
    monkeypatch.setenv("JWT_SECRET", STRONG)
    settings = load_settings(env_file)
    assert settings.access_token_ttl_seconds == 120
    assert settings.jwt_issuer == "from-env"


def test_env_example_documents_every_setting() -> None:
    source = (ROOT / "auth" / "settings.py").read_text()
    # Every name the loader reads from the environment (environ.get / _int / _choice calls).
    read = set(re.findall(r'environ(?:\.get)?\(\s*"([A-Z][A-Z0-9_]+)"', source))
    read |= set(re.findall(r'_(?:int|float|choice)\(\s*environ,\s*"([A-Z][A-Z0-9_]+)"', source))
    read -= {"AUTHGRAPH_DEV_SECRET_FILE", "AUTHGRAPH_ENV_FILE"}
    assert {"DATABASE_URL", "JWT_SECRET", "BCRYPT_ROUNDS", "CORS_ORIGINS"} <= read
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert read - documented == set()
    lines = example.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]+=", line):
            assert lines[index - 1].startswith("# "), f"{line} has no comment above it"


def test_smtp_url_is_parsed_and_masked() -> None:
    settings = Settings.from_env(prod())
    assert settings.smtp_url is not None
    assert "p%40ss" not in repr(settings)
    endpoint = smtp_endpoint(settings.smtp_url.reveal())
    assert (endpoint.host, endpoint.port, endpoint.implicit_tls) == ("mail.example.com", 587, False)
    assert endpoint.username == "mailer"
    assert endpoint.password is not None
    assert endpoint.password.reveal() == "p@ss"
    assert smtp_endpoint("smtps://mail.example.com").port == 465


def test_development_needs_no_mail_server() -> None:
    settings = Settings.from_env({"JWT_SECRET": STRONG})
    assert settings.smtp_url is None
    assert settings.app_url.startswith("http")
