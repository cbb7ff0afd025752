from __future__ import annotations

import re
from pathlib import Path

import pytest

from auth.errors import ConfigurationError
from graph.cli import main
from graph.settings import Settings, load_database_settings, load_settings
from mail.settings import smtp_endpoint

STRONG = "k3y-" + "abcdefghijklmnopqrstuvwxyz0123456789"
ROOT = Path(__file__).resolve().parents[2]


def prod(**env: str) -> dict[str, str]:
    return {
        "AUTHGRAPH_ENV": "production",
        "JWT_SECRET": STRONG,
        "KEY_ENCRYPTION_KEY": "kek-" + STRONG,
        "MFA_ENCRYPTION_KEY": "mfa-" + STRONG,
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
        ({"MFA_ENCRYPTION_KEY": ""}, "MFA_ENCRYPTION_KEY"),
        ({"MFA_ENCRYPTION_KEY": "too-short-key"}, "MFA_ENCRYPTION_KEY"),
        ({"MFA_ENCRYPTION_KEY": STRONG}, "MFA_ENCRYPTION_KEY"),
        ({"MFA_RATE_LIMIT": "often"}, "MFA_RATE_LIMIT"),
        ({"REAUTH_MAX_AGE_SECONDS": "5"}, "REAUTH_MAX_AGE_SECONDS"),
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
        ({"MAIL_LEASE_SECONDS": "1"}, "MAIL_LEASE_SECONDS"),
        ({"MAIL_LEASE_SECONDS": "601"}, "MAIL_LEASE_SECONDS"),
        ({"DATABASE_URL": "authgraph.db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://db/authgraph"}, "DATABASE_URL"),
        ({"HASH_WORKERS": "0"}, "HASH_WORKERS"),
        ({"HASH_WORKERS": "all"}, "HASH_WORKERS"),
        ({"HASH_QUEUE_LIMIT": "-1"}, "HASH_QUEUE_LIMIT"),
        ({"HASH_NICENESS": "20"}, "HASH_NICENESS"),
        ({"MAX_HEADER_BYTES": "1024"}, "MAX_HEADER_BYTES"),
        ({"MAX_HEADER_BYTES": str(2 * 1024 * 1024)}, "MAX_HEADER_BYTES"),
        ({"MAX_HEADER_COUNT": "0"}, "MAX_HEADER_COUNT"),
        ({"MAX_HEADER_COUNT": "100000"}, "MAX_HEADER_COUNT"),
        ({"HEADER_READ_TIMEOUT_SECONDS": "0"}, "HEADER_READ_TIMEOUT_SECONDS"),
        ({"HEADER_READ_TIMEOUT_SECONDS": "3600"}, "HEADER_READ_TIMEOUT_SECONDS"),
        ({"HEADER_READ_TIMEOUT_SECONDS": "nan"}, "HEADER_READ_TIMEOUT_SECONDS"),
        ({"BODY_READ_TIMEOUT_SECONDS": "inf"}, "BODY_READ_TIMEOUT_SECONDS"),
        ({"BODY_READ_TIMEOUT_SECONDS": "-1"}, "BODY_READ_TIMEOUT_SECONDS"),
        ({"KEY_ENCRYPTION_KEY": ""}, "KEY_ENCRYPTION_KEY"),
        ({"KEY_ENCRYPTION_KEY": "changeme"}, "KEY_ENCRYPTION_KEY"),
        ({"JWT_ALGORITHM": "RS512"}, "JWT_ALGORITHM"),
        ({"JWT_ALGORITHM": "none"}, "JWT_ALGORITHM"),
        ({"KEY_REFRESH_SECONDS": "0"}, "KEY_REFRESH_SECONDS"),
        ({"KEY_ENCRYPTION_PREVIOUS_KEYS": "old-" + STRONG + ",short"}, "KEY_ENCRYPTION_PREVIOUS"),
        ({"MFA_ENCRYPTION_PREVIOUS_KEYS": "changeme"}, "MFA_ENCRYPTION_PREVIOUS_KEYS"),
        ({"MFA_ENCRYPTION_PREVIOUS_KEYS": STRONG}, "MFA_ENCRYPTION_PREVIOUS_KEYS"),
        ({"INTROSPECTION_CLIENTS": "no-secret"}, "INTROSPECTION_CLIENTS"),
        ({"INTROSPECTION_CLIENTS": "svc:short"}, "INTROSPECTION_CLIENTS"),
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
    assert settings.http.cors_origins == ()


def test_from_env_reads_defaults() -> None:
    settings = Settings.from_env(prod())
    assert settings.auth.access_token_ttl_seconds == 900
    assert settings.auth.bcrypt_rounds == 12
    assert settings.auth.refresh_reuse_grace_seconds == 10
    assert settings.http.refresh_token_transport == "body"
    assert settings.database.db_statement_timeout_seconds == 10.0
    assert settings.mail.smtp_timeout_seconds == 30.0
    assert settings.mail.mail_lease_seconds == 30
    assert settings.http.max_header_bytes == 32 * 1024
    assert settings.http.max_header_count == 100
    assert settings.http.header_read_timeout_seconds == 10
    assert settings.http.body_read_timeout_seconds == 10


def test_repr_masks_secrets() -> None:
    settings = Settings.from_env(
        prod(
            JWT_PREVIOUS_SECRETS="old-" + STRONG,
            KEY_ENCRYPTION_PREVIOUS_KEYS="old-kek-" + STRONG,
            MFA_ENCRYPTION_PREVIOUS_KEYS="old-mfa-" + STRONG + ", older-mfa-" + STRONG,
        )
    )
    assert STRONG not in repr(settings)
    assert "**********" in repr(settings)


def test_previous_encryption_keys_are_read_in_order() -> None:
    auth = Settings.from_env(
        prod(
            KEY_ENCRYPTION_PREVIOUS_KEYS="old-kek-" + STRONG,
            MFA_ENCRYPTION_PREVIOUS_KEYS="old-mfa-" + STRONG + ", older-mfa-" + STRONG,
        )
    ).auth
    assert [k.reveal() for k in auth.key_encryption_previous_keys] == ["old-kek-" + STRONG]
    assert [k.reveal() for k in auth.mfa_encryption_previous_keys] == [
        "old-mfa-" + STRONG,
        "older-mfa-" + STRONG,
    ]
    assert Settings.from_env(prod()).auth.mfa_encryption_previous_keys == ()


def test_from_env_generates_and_keeps_dev_secret_and_mfa_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret_file, kek_file = tmp_path / "secret", tmp_path / "kek"
    key_file = tmp_path / "mfa-key"
    env = {
        "AUTHGRAPH_DEV_SECRET_FILE": str(secret_file),
        "AUTHGRAPH_DEV_KEK_FILE": str(kek_file),
        "AUTHGRAPH_DEV_MFA_KEY_FILE": str(key_file),
    }
    loaded = Settings.from_env(env).auth
    first = loaded.jwt_secret.reveal()
    assert "JWT_SECRET is not set" in caplog.text
    assert "KEY_ENCRYPTION_KEY is not set" in caplog.text
    assert "MFA_ENCRYPTION_KEY is not set" in caplog.text
    assert len(first.encode()) >= 32
    assert len(loaded.mfa_encryption_key.reveal().encode()) >= 32
    assert loaded.mfa_encryption_key != loaded.jwt_secret
    for path in (secret_file, kek_file, key_file):
        assert path.stat().st_mode & 0o077 == 0
    again = Settings.from_env(env).auth
    assert again.jwt_secret.reveal() == first
    assert loaded.key_encryption_key == again.key_encryption_key
    assert loaded.key_encryption_key is not None
    assert loaded.key_encryption_key.reveal() != first
    # Kept: TOTP secrets sealed before a restart still open after it.
    assert again.mfa_encryption_key == loaded.mfa_encryption_key
    # HS256 needs no key encryption key, and none is generated.
    kek_file.unlink()
    hs256 = Settings.from_env({**env, "JWT_ALGORITHM": "hs256"}).auth
    assert (hs256.jwt_algorithm, hs256.key_encryption_key) == ("HS256", None)
    assert not kek_file.exists()


def test_load_settings_reads_env_file_under_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ACCESS_TOKEN_TTL_SECONDS=120\nJWT_ISSUER=from-file\n")
    monkeypatch.setenv("JWT_ISSUER", "from-env")
    monkeypatch.setenv("JWT_SECRET", STRONG)
    monkeypatch.setenv("KEY_ENCRYPTION_KEY", "kek-" + STRONG)
    monkeypatch.setenv("MFA_ENCRYPTION_KEY", "mfa-" + STRONG)
    settings = load_settings(env_file)
    assert settings.auth.access_token_ttl_seconds == 120
    assert settings.auth.jwt_issuer == "from-env"


def test_env_example_is_generated_from_the_declarations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["env-example"]) == 0
    generated = capsys.readouterr().out
    assert (ROOT / ".env.example").read_text() == generated, "run: authgraph env-example"
    names = re.findall(r"^([A-Z][A-Z0-9_]+)=", generated, re.MULTILINE)
    assert len(names) == len(set(names))
    assert {"AUTHGRAPH_ENV", "DATABASE_URL", "JWT_SECRET", "SMTP_URL", "MAX_BODY_BYTES"} <= set(
        names
    )
    lines = generated.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]+=", line):
            assert lines[index - 1].startswith("# "), f"{line} has no doc line above it"


def test_every_setting_in_env_example_is_read(tmp_path: Path) -> None:
    # Each variable of .env.example, set to a distinct valid value, reaches its field.
    settings = Settings.from_env(
        prod(
            DB_CONNECT_TIMEOUT_SECONDS="7",
            MAX_ALIASES="4",
            OUTBOX_MAX_ATTEMPTS="3",
            REFRESH_TOKEN_TRANSPORT="Cookie",
            GRAPHIQL="on",
        )
    )
    assert settings.database.db_connect_timeout_seconds == 7.0
    assert settings.http.max_aliases == 4
    assert settings.mail.outbox_max_attempts == 3
    assert settings.http.cookie_mode
    assert settings.graphiql_enabled
    assert not settings.api_docs_enabled


def test_load_database_settings_needs_no_secret_or_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("JWT_SECRET", "MFA_ENCRYPTION_KEY", "SMTP_URL", "APP_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTHGRAPH_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/db.sqlite")
    assert load_database_settings(tmp_path / "none.env").database_url.endswith("db.sqlite")
    monkeypatch.setenv("DATABASE_URL", "db.sqlite")
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        load_database_settings(tmp_path / "none.env")


def test_with_values_replaces_a_field_in_its_section() -> None:
    base = Settings()
    changed = base.with_values(bcrypt_rounds=5, max_aliases=2, env="production")
    assert (changed.auth.bcrypt_rounds, changed.http.max_aliases) == (5, 2)
    assert changed.is_production
    assert base.auth.bcrypt_rounds == 12
    with pytest.raises(TypeError, match="no_such"):
        base.with_values(no_such=1)


def test_smtp_url_is_parsed_once_and_masked() -> None:
    settings = Settings.from_env(prod())
    endpoint = settings.mail.smtp
    assert endpoint is not None
    assert "p@ss" not in repr(settings)
    assert "p%40ss" not in repr(settings)
    assert (endpoint.host, endpoint.port, endpoint.implicit_tls) == ("mail.example.com", 587, False)
    assert endpoint.username == "mailer"
    assert endpoint.password is not None
    assert endpoint.password.reveal() == "p@ss"
    assert smtp_endpoint("smtps://mail.example.com").port == 465


def test_development_needs_no_mail_server() -> None:
    settings = Settings.from_env(
        {
            "JWT_SECRET": STRONG,
            "KEY_ENCRYPTION_KEY": "kek-" + STRONG,
            "MFA_ENCRYPTION_KEY": "mfa-" + STRONG,
        }
    )
    assert settings.mail.smtp is None
    assert settings.auth.app_url.startswith("http")
