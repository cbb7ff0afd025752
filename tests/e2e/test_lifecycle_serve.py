"""The account lifecycle through a real ``authgraph serve`` process and a real SMTP server."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.factories import (
    REQUEST_PASSWORD_RESET,
    RESET_PASSWORD,
    VERIFY_EMAIL,
    login,
    mutate,
    signup,
    unique_email,
)
from tests.mailbox import Mailbox, token_from
from tests.servers import authgraph_env, run_cli, serve

SECRET = "e2e-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def test_served_app_delivers_verification_and_reset_mail(
    database_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    env = authgraph_env(
        DATABASE_URL=database_url,
        JWT_SECRET=SECRET,
        SMTP_URL=f"smtp://127.0.0.1:{mailbox.port}",
        APP_URL="https://app.example.com",
        EMAIL_FROM="Example <no-reply@example.com>",
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with serve(env, tmp_path) as base, httpx.Client(base_url=base) as client:
        email = unique_email()
        signup(client, email=email)
        (welcome,) = mailbox.wait_for(email)
        assert welcome["From"] == "Example <no-reply@example.com>"
        verified = mutate(client, VERIFY_EMAIL, {"token": token_from(welcome)})
        assert verified["__typename"] == "EmailVerified"

        mutate(client, REQUEST_PASSWORD_RESET, {"email": email})
        (reset,) = mailbox.wait_for(email, subject="reset")
        variables = {"token": token_from(reset), "password": "a brand new passphrase"}
        assert mutate(client, RESET_PASSWORD, variables)["__typename"] == "PasswordResetDone"
        assert login(client, email, "a brand new passphrase")["__typename"] == "AuthPayload"
    # Nothing was written to the development mail folder: SMTP_URL was set.
    assert not (tmp_path / "mail").exists()
