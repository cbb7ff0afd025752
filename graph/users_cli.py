"""``authgraph users``: find, disable, enable and sign out users, and grant the admin role.

For the first administrator and for operators with shell access to the database: no token
and no role is asked (whoever can run this can read the database anyway), and every command
is recorded in the audit trail like the GraphQL admin API's, its actor ``cli:<os user>``.
Output is a table, or JSON with ``--json`` (the fields of GraphQL's ``AdminUser``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime
from typing import Any

from auth.admin import ADMIN, PAGE_DEFAULT, Actor, AdminService, AdminUserView, cursor_of
from auth.errors import AuthError, ConfigurationError
from auth.ports import ClientInfo
from graph.settings import Settings


def add_users_parser(commands: Any) -> None:
    """The ``users`` subcommands, on the main parser's subparsers."""
    users = commands.add_parser(
        "users", help="find, disable, enable and sign out users; grant and revoke admin"
    )
    sub = users.add_subparsers(dest="users_command", required=True)

    def command(name: str, help: str, target: str | None = "ID_OR_EMAIL") -> Any:
        parser = sub.add_parser(name, help=help)
        if target is not None:
            parser.add_argument("target", metavar=target)
        parser.add_argument("--json", action="store_true", help="print JSON")
        return parser

    listing = command("list", "users, newest first", target=None)
    listing.add_argument("--query", help="an email prefix or a whole user id")
    state = listing.add_mutually_exclusive_group()
    state.add_argument("--disabled", action="store_true", help="only disabled accounts")
    state.add_argument("--enabled", action="store_true", help="only enabled accounts")
    listing.add_argument(
        "--limit",
        type=int,
        default=PAGE_DEFAULT,
        help=f"at most this many (1 to 200, {PAGE_DEFAULT})",
    )
    listing.add_argument("--after", help="the cursor a previous page ended with")
    command("show", "one user, with roles and live sessions")
    disable = command("disable", "disable the account and end its sessions at once")
    disable.add_argument("--reason", required=True, help="why (kept and audited)")
    command("enable", "let a disabled account sign in again")
    command("sign-out", "end every session of the user")
    command("grant-admin", "give the admin role", target="EMAIL")
    command("revoke-admin", "take the admin role (refused for the last active admin)", "EMAIL")


def run_users_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``users`` subcommand; 0 on success, 1 when it is refused."""
    from graph.root import build_state  # the parser alone needs no database layer

    state = build_state(settings, serving=False)
    actor = Actor(user_id=None, client=ClientInfo(), label=f"cli:{getpass.getuser()}")
    try:
        with state.database() as database:
            admin = state.service(AdminService, database)
            command = args.users_command
            if command == "list":
                disabled = True if args.disabled else False if args.enabled else None
                page = admin.list_users(
                    actor, first=args.limit, after=args.after, query=args.query, disabled=disabled
                )
                rows = [as_json(v) for v in page.users]
                end = cursor_of(page.users[-1].user) if page.users else None
                if args.json:
                    _print_json({"users": rows, "hasNextPage": page.has_next, "endCursor": end})
                else:
                    _print_table(rows)
                    if page.has_next:
                        print(f"more: authgraph users list --after {end}")
                return 0
            user_id = admin.resolve(args.target)
            if command == "show":
                view = admin.user(actor, user_id)
            elif command == "disable":
                view = admin.disable(actor, user_id, args.reason)
            elif command == "enable":
                view = admin.enable(actor, user_id)
            elif command == "sign-out":
                view = admin.revoke_sessions(actor, user_id)
            elif command == "grant-admin":
                view = admin.grant_role(actor, user_id, ADMIN)
            else:
                assert command == "revoke-admin"
                view = admin.revoke_role(actor, user_id, ADMIN)
            row = as_json(view)
            if args.json:
                _print_json(row)
            else:
                _print_user(row)
            return 0
    except (AuthError, ConfigurationError) as exc:
        print(f"authgraph: {exc}", file=sys.stderr)
        return 1
    finally:
        state.close()


def as_json(view: AdminUserView) -> dict[str, Any]:
    """A user as ``--json`` prints it: the names and values of GraphQL's ``AdminUser``."""
    user = view.user
    return {
        "id": user.id,
        "email": user.email,
        "emailVerified": user.email_verified,
        "createdAt": _iso(user.created_at),
        "disabledAt": _iso(user.disabled_at),
        "disabledReason": user.disabled_reason,
        "roles": sorted(r.upper() for r in view.roles),
        "mfaEnabled": view.mfa_enabled,
        "lastSignInAt": _iso(user.last_sign_in_at),
        "sessions": [
            {
                "id": s.id,
                "createdAt": _iso(s.created_at),
                "lastUsedAt": _iso(s.last_used_at),
                "expiresAt": _iso(s.expires_at),
                "userAgent": s.user_agent,
                "ipAddress": s.ip_address,
                "aal": s.aal,
            }
            for s in view.sessions
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2))


COLUMNS = ("id", "email", "roles", "mfa", "state", "sessions", "last sign-in")


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    return (
        row["id"],
        row["email"],
        ",".join(row["roles"]) or "-",
        "on" if row["mfaEnabled"] else "off",
        "disabled" if row["disabledAt"] else "enabled",
        str(len(row["sessions"])),
        row["lastSignInAt"] or "never",
    )


def _print_table(rows: list[dict[str, Any]]) -> None:
    table = [COLUMNS, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


def _print_user(row: dict[str, Any]) -> None:
    fields = {
        "id": row["id"],
        "email": row["email"] + ("" if row["emailVerified"] else " (unverified)"),
        "roles": ",".join(row["roles"]) or "-",
        "mfa": "on" if row["mfaEnabled"] else "off",
        "state": (
            f"disabled since {row['disabledAt']}: {row['disabledReason']}"
            if row["disabledAt"]
            else "enabled"
        ),
        "created": row["createdAt"],
        "last sign-in": row["lastSignInAt"] or "never",
        "sessions": str(len(row["sessions"])),
    }
    width = max(map(len, fields))
    for name, value in fields.items():
        print(f"{name.ljust(width)}  {value}")
    for s in row["sessions"]:
        print(f"  {s['id']}  aal{s['aal']}  last used {s['lastUsedAt']}  {s['ipAddress'] or '-'}")
