"""``authgraph keys``: list, generate, activate, retire and re-encrypt signing keys (see
auth.keys)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from auth.errors import ConfigurationError
from auth.keys import KeyRuleError, is_published
from graph.root import build_state, key_admin
from graph.settings import Settings


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def run_keys_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``keys`` subcommand; 0 on success, 1 when the rules refuse it."""
    state = build_state(settings, serving=False)
    try:
        keys = key_admin(state)
        now = state.toolkit.clock()
        command = args.keys_command
        if command == "list":
            records = keys.store.all()
            rows = [
                {
                    "kid": r.kid,
                    "algorithm": r.algorithm,
                    "state": r.state,
                    "createdAt": _iso(r.created_at),
                    "activatedAt": _iso(r.activated_at),
                    "retiredAt": _iso(r.retired_at),
                    "publishedUntil": _iso(r.published_until),
                    "published": is_published(r, now),
                }
                for r in records
            ]
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                for row in rows:
                    shown = "published" if row["published"] else "unpublished"
                    print(
                        f"{row['kid']}  {row['algorithm']}  {row['state']:<8}  "
                        f"created {row['createdAt']}  {shown}"
                    )
            return 0
        if command == "generate":
            kid = keys.generate(now)
            print("Generated a standby key; it is published now. Activate it with")
            print(f"  authgraph keys activate {kid}")
            print("once every verifier has had time to fetch it (KEY_REFRESH_SECONDS, caches).")
            print(kid)
            return 0
        if command == "activate":
            keys.activate(args.kid, now)
            print(
                f"{args.kid} is current; the previous key stays published until its tokens expire"
            )
            return 0
        if command == "reencrypt":
            done = keys.reencrypt()
            print(
                f"authgraph: rewrote {done.rewritten} private key(s) under KEY_ENCRYPTION_KEY, "
                f"{done.current} already current"
            )
            return 0
        assert command == "retire"
        keys.retire(args.kid, now)
        print(f"{args.kid} is retired and unpublished; tokens it signed are rejected")
        return 0
    except (KeyRuleError, ConfigurationError) as exc:
        print(f"authgraph: {exc}", file=sys.stderr)
        return 1
    finally:
        state.close()
