"""The audit trail over HTTP (``viewer.securityEvents``), on SQLite and PostgreSQL.

Every kind that exists today is produced through the real mutations and read back through
the API; the stored rows are read directly only to prove what is kept after a deletion and
that no secret reached them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from db.engine import normalize_database_url
from graph.root import prune
from tests.factories import (
    CHANGE_PASSWORD,
    CONFIRM_EMAIL_CHANGE,
    DEFAULT_PASSWORD,
    DELETE_ACCOUNT,
    LOGOUT,
    REQUEST_EMAIL_CHANGE,
    REQUEST_PASSWORD_RESET,
    RESET_PASSWORD,
    REVOKE,
    SESSIONS,
    VERIFY_EMAIL,
    error_codes,
    gql,
    login,
    mutate,
    refresh,
    signup,
    unique_email,
)
from tests.mailbox import Mailbox, token_from
from tests.mfa import (
    REGENERATE,
    REMOVE_FACTOR,
    controlled_clock,
    enroll,
    login_mfa,
    next_step,
    verify,
)

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)

EVENTS = """
query Events($first: Int, $after: String) {
  viewer { securityEvents(first: $first, after: $after) {
    edges { cursor node { id kind occurredAt ipAddress device sessionId current detail } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  } }
}
"""


def events(client: TestClient, token: str, first: int = 100, after: str | None = None) -> Any:
    body = gql(client, EVENTS, {"first": first, "after": after}, token=token)
    assert not body.get("errors"), body
    return body["data"]["viewer"]["securityEvents"]


def kinds(client: TestClient, token: str) -> list[tuple[str, str | None]]:
    """The caller's trail as (kind, detail), newest first."""
    return [(e["node"]["kind"], e["node"]["detail"]) for e in events(client, token)["edges"]]


def ua(agent: str) -> dict[str, str]:
    return {"User-Agent": agent}


def rows(database_url: str) -> list[dict[str, Any]]:
    engine = create_engine(normalize_database_url(database_url))
    try:
        with engine.connect() as connection:
            found = connection.execute(text("SELECT * FROM security_events")).mappings().all()
            return [dict(r) for r in found]
    finally:
        engine.dispose()


# -- sign-in and sign-out ------------------------------------------------------------------


def test_sign_ins_and_sign_outs_are_recorded_with_method_ip_and_device(
    client: TestClient,
) -> None:
    email = unique_email("trail")
    first = signup(client, email=email, headers=ua(CHROME_LINUX))
    second = login(client, email, headers=ua(IPHONE))
    assert login(client, email, "a wrong password, surely")["__typename"] == "InvalidCredentials"
    # An unknown address is no account: nobody's trail gets it.
    assert login(client, unique_email("nobody"))["__typename"] == "InvalidCredentials"
    mutate(client, LOGOUT, {"scope": "OTHERS"}, token=second["accessToken"])

    trail = events(client, second["accessToken"])
    nodes = [e["node"] for e in trail["edges"]]
    assert [(n["kind"], n["detail"]) for n in nodes] == [
        ("SIGNED_OUT", "others"),
        ("SIGN_IN_FAILED", "password"),
        ("SIGNED_IN", "password"),
        ("SIGNED_IN", "signup"),
    ]
    sessions = gql(client, SESSIONS, token=second["accessToken"])["data"]["viewer"]["sessions"]
    (current,) = sessions
    signed_out, failed, signed_in, signed_up = nodes
    assert signed_in["sessionId"] == current["id"]
    assert signed_in["current"] is True
    assert signed_out["sessionId"] == current["id"]
    assert signed_out["current"] is True
    assert signed_up["sessionId"] != current["id"]
    assert signed_up["current"] is False
    assert failed["sessionId"] is None
    assert failed["current"] is False
    assert signed_up["device"] == "Chrome 120 on Linux"
    assert signed_in["device"] == "Mobile Safari 17 on iOS 17 (Apple iPhone)"
    # An agent the rules do not know keeps its product token only.
    assert failed["device"] == "testclient"
    assert {n["ipAddress"] for n in nodes} == {"testclient"}
    # The first session was signed out by the second: its token no longer reads anything.
    assert error_codes(gql(client, EVENTS, token=first["accessToken"])) == ["UNAUTHENTICATED"]


def test_logout_scopes_and_revocation_are_recorded(client: TestClient) -> None:
    email = unique_email("scopes")
    first = signup(client, email=email)
    second = login(client, email)
    third = login(client, email)
    third_id = _session_of(client, third["accessToken"])
    mutate(client, REVOKE, {"id": third_id}, token=first["accessToken"])
    mutate(client, LOGOUT, {"scope": "CURRENT"}, token=second["accessToken"])
    fourth = login(client, email)
    mutate(client, LOGOUT, {"scope": "ALL"}, token=fourth["accessToken"])
    fifth = login(client, email)
    trail = [e["node"] for e in events(client, fifth["accessToken"])["edges"]]
    assert [(n["kind"], n["detail"]) for n in trail[:5]] == [
        ("SIGNED_IN", "password"),
        ("SIGNED_OUT", "all"),
        ("SIGNED_IN", "password"),
        ("SIGNED_OUT", "current"),
        ("SESSION_REVOKED", None),
    ]
    # A revocation is about the session it ended, not the one that asked.
    assert trail[4]["sessionId"] == third_id


def _session_of(client: TestClient, token: str) -> str:
    sessions = gql(client, SESSIONS, token=token)["data"]["viewer"]["sessions"]
    return str(next(s["id"] for s in sessions if s["current"]))


def test_refresh_token_reuse_is_recorded_against_its_session(make_client: Any) -> None:
    client = make_client(refresh_reuse_grace_seconds=0)
    clock = controlled_clock(client)
    email = unique_email("reuse")
    first = signup(client, email=email)
    rotated = refresh(client, first["refreshToken"])
    assert rotated["__typename"] == "AuthPayload"
    clock.now += timedelta(seconds=5)
    assert refresh(client, first["refreshToken"])["__typename"] == "InvalidRefreshToken"
    watcher = login(client, email)
    trail = [e["node"] for e in events(client, watcher["accessToken"])["edges"]]
    reuse = next(n for n in trail if n["kind"] == "REFRESH_TOKEN_REUSED")
    signup_event = next(n for n in trail if n["detail"] == "signup")
    assert reuse["sessionId"] == signup_event["sessionId"]


def test_password_change_is_recorded(client: TestClient) -> None:
    session = signup(client)
    changed = mutate(
        client,
        CHANGE_PASSWORD,
        {"current": DEFAULT_PASSWORD, "new": "another fine password 42"},
        token=session["accessToken"],
    )
    assert changed["__typename"] == "AuthPayload"
    assert kinds(client, changed["accessToken"])[0] == ("PASSWORD_CHANGED", None)


# -- the account lifecycle -----------------------------------------------------------------


def test_lifecycle_events_are_recorded(mail_client: TestClient, mailbox: Mailbox) -> None:
    email, new = unique_email("life"), unique_email("moved")
    session = signup(mail_client, email=email)
    (verification,) = mailbox.wait_for(email)
    assert (
        mutate(mail_client, VERIFY_EMAIL, {"token": token_from(verification)})["__typename"]
        == "EmailVerified"
    )
    requested = mutate(
        mail_client,
        REQUEST_EMAIL_CHANGE,
        {"email": new, "password": DEFAULT_PASSWORD},
        token=session["accessToken"],
    )
    assert requested["__typename"] == "EmailChangeRequested"
    (confirmation,) = mailbox.wait_for(new)
    changed = mutate(mail_client, CONFIRM_EMAIL_CHANGE, {"token": token_from(confirmation)})
    assert changed["__typename"] == "EmailChanged"
    mutate(mail_client, REQUEST_PASSWORD_RESET, {"email": new})
    (reset,) = mailbox.wait_for(new, subject="password")
    done = mutate(
        mail_client,
        RESET_PASSWORD,
        {"token": token_from(reset), "password": "a brand new password 7"},
    )
    assert done["__typename"] == "PasswordResetDone"
    after = login(mail_client, new, "a brand new password 7")
    assert kinds(mail_client, after["accessToken"]) == [
        ("SIGNED_IN", "password"),
        ("PASSWORD_RESET", None),
        ("EMAIL_CHANGED", None),
        ("EMAIL_CHANGE_REQUESTED", None),
        ("EMAIL_VERIFIED", None),
        ("SIGNED_IN", "signup"),
    ]


def test_account_deletion_keeps_the_trail_without_personal_data(
    client: TestClient, database_url: str
) -> None:
    email = unique_email("gone")
    session = signup(client, email=email, headers=ua(CHROME_LINUX))
    user_id = session["user"]["id"]
    deleted = mutate(
        client, DELETE_ACCOUNT, {"password": DEFAULT_PASSWORD}, token=session["accessToken"]
    )
    assert deleted["__typename"] == "AccountDeleted"
    kept = sorted(rows(database_url), key=lambda r: r["occurred_at"])
    assert [r["kind"] for r in kept] == ["signed_in", "account_deleted"]
    assert {r["user_id"] for r in kept} == {user_id}
    assert all(r["ip_address"] is None and r["device"] is None for r in kept)
    # The address signs up again with a trail of its own.
    again = signup(client, email=email)
    assert kinds(client, again["accessToken"]) == [("SIGNED_IN", "signup")]


# -- MFA -----------------------------------------------------------------------------------


def test_mfa_events_are_recorded(client: TestClient) -> None:
    clock = controlled_clock(client)

    def then() -> None:
        # The trail orders by time: this clock stands still unless moved.
        clock.now += timedelta(seconds=1)

    email = unique_email("mfa-trail")
    token = signup(client, email=email)["accessToken"]
    then()
    user = enroll(client, email, token, next_step(clock))
    then()
    challenge = login_mfa(client, email)
    assert verify(client, challenge["mfaToken"], "000000")["__typename"] == "InvalidMfaCode"
    then()
    by_code = verify(client, challenge["mfaToken"], user.recovery_codes[0], "RECOVERY_CODE")
    assert by_code["__typename"] == "AuthPayload"
    fresh = by_code["accessToken"]
    then()
    assert mutate(client, REGENERATE, token=fresh)["__typename"] == "RecoveryCodes"
    then()
    removed = mutate(client, REMOVE_FACTOR, {"id": user.factor_id}, token=fresh)
    assert removed["mfaEnabled"] is False
    trail = kinds(client, fresh)
    assert trail[:2] == [("MFA_DISABLED", None), ("RECOVERY_CODES_REGENERATED", None)]
    # One transaction, one instant (the clock stands still): either order.
    assert set(trail[2:4]) == {
        ("SIGNED_IN", "password+recovery_code"),
        ("RECOVERY_CODE_USED", None),
    }
    assert trail[4:] == [
        ("SIGN_IN_FAILED", "totp"),
        ("MFA_ENABLED", "totp"),
        ("SIGNED_IN", "signup"),
    ]


# -- reading the trail ---------------------------------------------------------------------


def test_events_page_forward_with_cursors(client: TestClient) -> None:
    email = unique_email("pages")
    signup(client, email=email)
    for _ in range(4):
        last = login(client, email)
    token = last["accessToken"]
    everything = [e["node"]["id"] for e in events(client, token)["edges"]]
    assert len(everything) == 5
    seen: list[str] = []
    after = None
    while True:
        page = events(client, token, first=2, after=after)
        seen += [e["node"]["id"] for e in page["edges"]]
        info = page["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        assert info["endCursor"] == page["edges"][-1]["cursor"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert seen == everything
    assert len(seen) == len(set(seen))


def test_events_refuse_a_bad_cursor_or_size(client: TestClient) -> None:
    token = signup(client)["accessToken"]
    for variables in ({"after": "not-a-cursor"}, {"first": 0}, {"first": 101}):
        body = gql(client, EVENTS, variables, token=token)
        assert error_codes(body) == ["BAD_USER_INPUT"], body


def test_events_are_only_the_callers_own(client: TestClient) -> None:
    alice = signup(client)
    bob_email = unique_email("bob")
    signup(client, email=bob_email)
    login(client, bob_email, "wrong wrong wrong wrong")
    assert kinds(client, alice["accessToken"]) == [("SIGNED_IN", "signup")]


def test_old_events_are_pruned_after_the_retention(make_client: Any) -> None:
    client = make_client(audit_retention_days=30)
    clock = controlled_clock(client)
    email = unique_email("old")
    signup(client, email=email)
    clock.now += timedelta(days=31)
    recent = login(client, email)
    counts = prune(client.app.state.authgraph)
    assert counts.security_events == 1
    assert kinds(client, recent["accessToken"]) == [("SIGNED_IN", "password")]


# -- what is never stored ------------------------------------------------------------------


def test_no_secret_reaches_the_trail(
    mail_client: TestClient, mailbox: Mailbox, database_url: str
) -> None:
    clock = controlled_clock(mail_client)
    email = unique_email("secret")
    session = signup(mail_client, email=email)
    secrets: list[str] = [DEFAULT_PASSWORD, email, session["accessToken"], session["refreshToken"]]
    (verification,) = mailbox.wait_for(email)
    secrets.append(token_from(verification))
    mutate(mail_client, VERIFY_EMAIL, {"token": secrets[-1]})
    user = enroll(mail_client, email, session["accessToken"], next_step(clock))
    secrets += [user.secret, *user.recovery_codes, user.access_token, user.refresh_token]
    challenge = login_mfa(mail_client, email)
    secrets.append(challenge["mfaToken"])
    verify(mail_client, challenge["mfaToken"], user.recovery_codes[1], "RECOVERY_CODE")
    login(mail_client, email, "my wrong guess of a password")
    secrets.append("my wrong guess of a password")
    stored = rows(database_url)
    assert len(stored) >= 6
    dump = repr(stored) + repr(events(mail_client, user.access_token))
    leaked = [s for s in secrets if s in dump]
    assert leaked == []
