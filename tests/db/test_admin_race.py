"""Last-admin protection under a race, on SQLite and PostgreSQL: two administrators taking
the role from each other at once leave exactly one (the use case on real connections)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import text

from auth.admin import ADMIN, AdminService, LastAdmin
from tests.admin import CLI_ACTOR, account, grant_admin

ROUNDS = 5


def _concurrently(*calls: Callable[[], object]) -> list[str]:
    """Run ``calls`` in threads released together; what each ended with."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = ["unfinished"] * len(calls)

    def run(i: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
            outcomes[i] = "done"
        except LastAdmin:
            outcomes[i] = "last-admin"

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_two_admins_removing_each_other_leave_one(client: TestClient) -> None:
    state = client.app.state.authgraph  # type: ignore[attr-defined]

    def revoke(user_id: str, action: str) -> Callable[[], object]:
        def call() -> object:
            with state.database() as database:
                admin = state.service(AdminService, database)
                if action == "disable":
                    return admin.disable(CLI_ACTOR, user_id, "race")
                return admin.revoke_role(CLI_ACTOR, user_id, ADMIN)

        return call

    for round_ in range(ROUNDS):
        first, second = account(client, "racer"), account(client, "racer")
        grant_admin(client, first.id)
        grant_admin(client, second.id)
        # One round in two mixes the ways of removing an admin: the role and a disable.
        other = "disable" if round_ % 2 else "revoke"
        outcomes = _concurrently(revoke(first.id, "revoke"), revoke(second.id, other))
        assert sorted(outcomes) == ["done", "last-admin"], outcomes
        with state.database() as database:
            admin = state.service(AdminService, database)
            views = [admin.user(CLI_ACTOR, u.id) for u in (first, second)]
        active = [v for v in views if ADMIN in v.roles and v.user.disabled_at is None]
        assert len(active) == 1
        # The next round starts with no administrator again (test set-up, not an API).
        with state.engine.begin() as connection:
            connection.execute(text("DELETE FROM user_roles"))
