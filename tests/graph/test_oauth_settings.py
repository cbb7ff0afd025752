"""OAUTH_PROVIDERS and the per-provider OAUTH_<ID>_* settings, read by auth.config.load_keyed."""

from __future__ import annotations

from pathlib import Path

import pytest

from auth.errors import ConfigurationError
from graph.settings import Settings
from tests.graph.test_settings import prod

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a-client-secret-that-must-never-be-shown"


def _providers(**env: str) -> dict[str, str]:
    return {
        "OAUTH_PROVIDERS": "google, github,acme",
        "OAUTH_GOOGLE_KIND": "google",
        "OAUTH_GOOGLE_CLIENT_ID": "g-id",
        "OAUTH_GOOGLE_CLIENT_SECRET": SECRET,
        "OAUTH_GITHUB_KIND": "GitHub",
        "OAUTH_GITHUB_CLIENT_ID": "gh-id",
        "OAUTH_GITHUB_CLIENT_SECRET": SECRET,
        "OAUTH_ACME_ISSUER": "https://login.acme.example/",
        "OAUTH_ACME_CLIENT_ID": "acme-id",
        "OAUTH_ACME_CLIENT_SECRET": SECRET,
        "OAUTH_ACME_SCOPES": "openid email",
        "OAUTH_ACME_NAME": "Acme",
        "OAUTH_REDIRECT_URIS": "https://app.example.com/oauth/callback",
        **env,
    }


def test_providers_are_read_per_id_with_the_kinds_defaults() -> None:
    settings = Settings.from_env(prod(**_providers()))
    google, github, acme = settings.auth.oauth_providers
    assert (google.id, google.kind, google.issuer_url) == (
        "google",
        "google",
        "https://accounts.google.com",
    )
    assert (google.scope, google.label) == ("openid email profile", "Google")
    assert (github.kind, github.issuer_url, github.github_api_url) == (
        "github",
        "https://github.com",
        "https://api.github.com",
    )
    assert (github.scope, github.label) == ("read:user user:email", "GitHub")
    assert (acme.kind, acme.issuer, acme.scope, acme.label) == (
        "oidc",
        "https://login.acme.example",
        "openid email",
        "Acme",
    )
    assert acme.client_secret.reveal() == SECRET
    assert settings.auth.oauth_redirect_uris == ("https://app.example.com/oauth/callback",)
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OAUTH_ACME_CLIENT_SECRET": ""}, "OAUTH_ACME_CLIENT_SECRET"),
        ({"OAUTH_GOOGLE_CLIENT_ID": ""}, "OAUTH_GOOGLE_CLIENT_ID"),
        ({"OAUTH_ACME_ISSUER": ""}, "OAUTH_ACME_ISSUER"),
        ({"OAUTH_ACME_ISSUER": "http://login.acme.example"}, "OAUTH_ACME_ISSUER"),
        ({"OAUTH_ACME_KIND": "saml"}, "OAUTH_ACME_KIND"),
        ({"OAUTH_ACME_API_URL": "https://api.acme.example"}, "OAUTH_ACME_API_URL"),
        ({"OAUTH_PROVIDERS": "google,Acme-1"}, "OAUTH_PROVIDERS"),
        ({"OAUTH_PROVIDERS": "acme,acme"}, "OAUTH_PROVIDERS"),
        ({"OAUTH_REDIRECT_URIS": "http://app.example.com/cb"}, "OAUTH_REDIRECT_URIS"),
        ({"OAUTH_REDIRECT_URIS": "https://app.example.com/cb#x"}, "OAUTH_REDIRECT_URIS"),
        ({"OAUTH_REDIRECT_URIS": "/cb"}, "OAUTH_REDIRECT_URIS"),
    ],
)
def test_a_bad_provider_setting_is_refused_by_name(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env(prod(**_providers(**env)))


def test_development_accepts_loopback_http_issuers_and_redirects() -> None:
    settings = Settings.from_env(
        _providers(
            OAUTH_ACME_ISSUER="http://127.0.0.1:9000",
            OAUTH_REDIRECT_URIS="http://localhost:5173/oauth/callback",
        )
    )
    assert settings.auth.oauth_providers[2].issuer == "http://127.0.0.1:9000"


def test_env_example_documents_an_example_provider_commented_out() -> None:
    text = (ROOT / ".env.example").read_text()
    assert "\nOAUTH_PROVIDERS=\n" in text
    assert "\nOAUTH_REDIRECT_URIS=\n" in text
    for name in ("KIND", "ISSUER", "CLIENT_ID", "CLIENT_SECRET", "SCOPES", "NAME"):
        assert f"\n#OAUTH_ACME_{name}=" in text
