"""``authgraph mfa``: re-encrypt the stored TOTP secrets after a key rotation (see auth.mfa)."""

from __future__ import annotations

import argparse
import sys

from auth.errors import ConfigurationError
from graph.root import build_state, reencrypt_mfa_secrets
from graph.settings import Settings


def run_mfa_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``mfa`` subcommand; 0 on success, 1 when it is refused."""
    state = build_state(settings, serving=False)
    try:
        assert args.mfa_command == "reencrypt"
        done = reencrypt_mfa_secrets(state)
        print(
            f"authgraph: rewrote {done.rewritten} TOTP secret(s) under MFA_ENCRYPTION_KEY, "
            f"{done.current} already current"
        )
        return 0
    except ConfigurationError as exc:
        print(f"authgraph: {exc}", file=sys.stderr)
        return 1
    finally:
        state.close()
