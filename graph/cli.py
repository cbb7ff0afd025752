"""The ``authgraph`` command: serve, migrate, keys, mfa, users, check-config, export-schema,
env-example, prune-sessions."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from auth.errors import ConfigurationError
from graph.settings import (
    Settings,
    example_file,
    load_database_settings,
    load_key_settings,
    load_settings,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="authgraph", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API (GraphQL at /graphql)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--migrate", action="store_true", help="apply database migrations before serving"
    )
    commands.add_parser(
        "migrate",
        help="upgrade the database schema to the latest revision and create the first signing "
        "key (ES256) if there is none",
    )
    keys = commands.add_parser(
        "keys", help="list, generate, activate, retire and re-encrypt signing keys"
    )
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    listing = key_commands.add_parser("list", help="every signing key with its state")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    key_commands.add_parser(
        "generate", help="add a standby key, published at once; prints its kid on the last line"
    )
    activate = key_commands.add_parser(
        "activate", help="make a standby key current (the current one retires)"
    )
    activate.add_argument("kid")
    retire = key_commands.add_parser(
        "retire",
        help="emergency: unpublish a standby or retired key now; its tokens are rejected",
    )
    retire.add_argument("kid")
    key_commands.add_parser(
        "reencrypt",
        help="rewrite the private keys still under a KEY_ENCRYPTION_PREVIOUS_KEYS key with "
        "KEY_ENCRYPTION_KEY (after a rotation; idempotent)",
    )
    mfa = commands.add_parser("mfa", help="operate on the stored second factors")
    mfa_commands = mfa.add_subparsers(dest="mfa_command", required=True)
    mfa_commands.add_parser(
        "reencrypt",
        help="reseal the TOTP secrets still under a MFA_ENCRYPTION_PREVIOUS_KEYS key with "
        "MFA_ENCRYPTION_KEY (after a rotation; idempotent)",
    )
    from graph.users_cli import add_users_parser

    add_users_parser(commands)
    commands.add_parser("export-schema", help="print the GraphQL schema (SDL) to stdout")
    commands.add_parser(
        "env-example", help="print .env.example: every setting with its default and doc line"
    )
    check = commands.add_parser(
        "check-config",
        help="read the settings as serve would and print every problem and production "
        "recommendation; exit 1 on an error",
    )
    check.add_argument("--json", action="store_true", help="print a JSON object")
    check.add_argument(
        "--workers", type=int, default=1, help="worker processes per instance (as serve's)"
    )
    check.add_argument(
        "--instances", type=int, default=1, help="instances sharing the database (default 1)"
    )
    check.add_argument(
        "--behind-proxy", action="store_true", help="a reverse proxy forwards the requests"
    )
    commands.add_parser(
        "prune-sessions",
        help="delete expired and revoked sessions, spent email tokens and old delivered mail",
    )

    args = parser.parse_args(argv)
    if args.command == "export-schema":
        from graph.schema import build_schema

        sys.stdout.write(build_schema().as_str() + "\n")
        return 0
    if args.command == "env-example":
        sys.stdout.write(example_file())
        return 0
    if args.command == "check-config":
        return _check_config(args)

    # A migration needs the database and the key settings: no JWT secret, no mail server.
    try:
        settings = None if args.command == "migrate" else load_settings()
        database_url = (
            load_database_settings() if settings is None else settings.database
        ).database_url
        key_settings = load_key_settings() if args.command == "migrate" else settings
    except ConfigurationError as exc:
        print(f"authgraph: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.http.log_level if settings else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if args.command == "migrate" or (args.command == "serve" and args.migrate):
        from graph.root import migrate

        migrate(database_url)
        print("authgraph: database is at the latest revision", file=sys.stderr)
        if key_settings is not None and (created := _first_key(key_settings)):
            print(f"authgraph: created signing key {created} (current)", file=sys.stderr)
    if settings is None:
        return 0
    if args.command == "keys":
        from graph.keys_cli import run_keys_command

        return run_keys_command(settings, args)
    if args.command == "mfa":
        from graph.mfa_cli import run_mfa_command

        return run_mfa_command(settings, args)
    if args.command == "users":
        from graph.users_cli import run_users_command

        return run_users_command(settings, args)
    if args.command == "prune-sessions":
        return _prune(settings)
    return _serve(settings, args.host, args.port, args.workers)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How ``serve`` runs uvicorn (the benchmark serves its reference routes the same way)."""
    from graph.http_server import HttpBounds, protocol_factory

    bounds = HttpBounds(
        max_header_bytes=settings.http.max_header_bytes,
        max_header_count=settings.http.max_header_count,
        header_read_timeout=settings.http.header_read_timeout_seconds,
        body_read_timeout=settings.http.body_read_timeout_seconds,
    )
    return {
        # uvloop when installed (uvicorn[standard] is a dependency).
        "loop": "auto",
        # httptools with bounds on the head and on slow clients (uvicorn's own has none).
        "http": protocol_factory(bounds),
        # The client address comes from TRUSTED_PROXIES, not from uvicorn's header handling.
        "proxy_headers": False,
        "server_header": False,
        "log_level": settings.http.log_level.lower(),
    }


def _serve(settings: Settings, host: str, port: int, workers: int) -> int:
    import uvicorn

    # Each worker process builds its own app, and so its own engine, from the environment.
    uvicorn.run(
        "graph.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **uvicorn_options(settings),
    )
    return 0


def _check_config(args: argparse.Namespace) -> int:
    import os

    from auth.config import load_environment
    from graph.check_config import Deployment, run

    deployment = Deployment(
        workers=max(1, args.workers),
        instances=max(1, args.instances),
        behind_proxy=args.behind_proxy,
    )
    try:
        environ = load_environment()
    except (OSError, UnicodeDecodeError):
        # An unreadable settings file: check reports it (env-file-unreadable).
        environ = dict(os.environ)
    output, code = run(environ, deployment, as_json=args.json)
    sys.stdout.write(output)
    return code


def _first_key(settings: Settings) -> str | None:
    from graph.root import ensure_signing_key

    return ensure_signing_key(settings)


def _prune(settings: Settings) -> int:
    from graph.root import build_state, prune

    state = build_state(settings, serving=False)
    try:
        pruned = prune(state)
        print(
            f"authgraph: pruned {pruned.sessions} sessions, {pruned.email_tokens} email tokens "
            f"and {pruned.mail} delivered messages"
        )
    finally:
        state.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
