"""Subscriptions over graphql-transport-ws against real servers, and revocation reaching them.

The client is the ``websockets`` package speaking the protocol by hand. The cross-instance
case runs two ``authgraph serve`` processes on one database: the logout goes to one, the
subscription lives on the other (on PostgreSQL, LISTEN/NOTIFY carries it; on SQLite with
Redis as RATE_LIMIT_STORAGE, Redis pub/sub). Every other ending of a session (revokeSession,
refresh-token reuse, changePassword, resetPassword, deleteAccount, adminDisableUser,
adminRevokeSessions) runs on one pair of PostgreSQL servers started for its class. No test
asserts a timing: each waits at most a generous bound for what must happen.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.admin import DISABLE, REVOKE_SESSIONS
from tests.aio import run_coroutine
from tests.conftest import empty_postgres, skip_or_fail
from tests.factories import (
    CHANGE_PASSWORD,
    DEFAULT_PASSWORD,
    DELETE_ACCOUNT,
    LOGOUT,
    REFRESH,
    REQUEST_PASSWORD_RESET,
    RESET_PASSWORD,
    REVOKE,
    SESSIONS,
    gql,
    login,
    mutate,
    refresh,
    signup,
    unique_email,
)
from tests.mailbox import token_from
from tests.servers import RELAXED_LIMITS, authgraph_env, run_cli, serve

SECRET = "live-revocation-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
KEK = "live-revocation-kek-0123456789-abcdefghijklmnopqrstuvwxyz-0123"
BOUND = 20.0  # seconds: generous, not a measured figure
PROTOCOL = Subprotocol("graphql-transport-ws")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")

APP_ORIGIN = "https://app.example.com"
SESSION_EVENTS = "subscription { viewerSessionEvents { kind sessionId } }"
SECURITY_EVENTS = "subscription { viewerSecurityEvents { kind detail current } }"


@pytest.fixture(params=["postgresql", "sqlite+redis"])
def backend(request: pytest.FixtureRequest) -> str:
    """PostgreSQL (LISTEN/NOTIFY), and SQLite with Redis pub/sub."""
    param: str = request.param
    return param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if backend == "postgresql":
        yield from empty_postgres(request)
    else:
        yield f"sqlite:///{tmp_path / 'live.db'}"


def server_env(database_url: str, backend: str, tmp_path: Path, **settings: str) -> dict[str, str]:
    """The servers' environment (also for ``authgraph`` CLI commands on their database)."""
    extra: dict[str, str] = dict(settings)
    if backend == "sqlite+redis":
        try:
            import redis

            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except Exception as exc:
            skip_or_fail(f"Redis is not reachable at {REDIS_URL}: {type(exc).__name__}")
        extra["RATE_LIMIT_STORAGE"] = REDIS_URL
        extra["RATE_LIMIT_KEY_PREFIX"] = f"live-{os.getpid()}"
    return authgraph_env(
        DATABASE_URL=database_url,
        JWT_SECRET=SECRET,
        KEY_ENCRYPTION_KEY=KEK,
        MAIL_DIR=str(tmp_path / "mail"),
        CORS_ORIGINS="https://app.example.com",
        **RELAXED_LIMITS,
        **extra,
    )


@contextmanager
def servers(
    database_url: str, backend: str, tmp_path: Path, count: int, **settings: str
) -> Iterator[list[str]]:
    env = server_env(database_url, backend, tmp_path, **settings)
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with ExitStack() as stack:
        yield [stack.enter_context(serve(env, tmp_path)) for _ in range(count)]


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/graphql"


async def connect(base: str, token: str | None, **headers: str) -> Any:
    """A connection that sent connection_init (with ``token``, if any)."""
    socket = await websockets.connect(
        ws_url(base), subprotocols=[PROTOCOL], additional_headers=headers or None
    )
    payload = {"Authorization": f"Bearer {token}"} if token else {}
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    return socket


async def connect_with_payload(base: str, payload: dict[str, str]) -> Any:
    """A connection that sent connection_init with exactly ``payload``."""
    socket = await websockets.connect(ws_url(base), subprotocols=[PROTOCOL])
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    return socket


async def connect_with_cookies(
    base: str, cookies: dict[str, str], payload: dict[str, str], origin: str | None = APP_ORIGIN
) -> Any:
    """A cookie-mode connection: the browser's cookies on the handshake, ``payload`` in init."""
    headers = {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}
    if origin is not None:
        headers["Origin"] = origin
    socket = await websockets.connect(
        ws_url(base), subprotocols=[PROTOCOL], additional_headers=headers
    )
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    return socket


async def next_message(socket: Any, bound: float = BOUND) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), bound))
        if message["type"] != "ping":
            return message


async def closed_code(socket: Any) -> int:
    """Read until the server closes; its close code."""
    try:
        while True:
            await asyncio.wait_for(socket.recv(), BOUND)
    except ConnectionClosed as exc:
        received = exc.rcvd
    return -1 if received is None else int(received.code)


async def subscribe(socket: Any, op_id: str, query: str) -> None:
    await socket.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query}}))


def test_logout_on_one_instance_closes_the_subscription_on_another(
    database_url: str, backend: str, tmp_path: Path
) -> None:
    with servers(database_url, backend, tmp_path, 2) as (first, second):
        with httpx.Client(base_url=first, timeout=30) as client:
            email = unique_email("live")
            watched = signup(client, email=email)
            other = login(client, email)

        async def scenario() -> tuple[list[dict[str, Any]], int]:
            socket = await connect(second, watched["accessToken"])
            assert (await next_message(socket))["type"] == "connection_ack"
            await subscribe(socket, "s", SESSION_EVENTS)
            await subscribe(socket, "e", SECURITY_EVENTS)
            # Another session's logout is news, and the connection stays.
            await asyncio.to_thread(
                lambda: mutate(
                    httpx.Client(base_url=first, timeout=30),
                    LOGOUT,
                    {"scope": "CURRENT"},
                    token=other["accessToken"],
                )
            )
            seen = [await next_message(socket), await next_message(socket)]
            # This session's end: told, then closed with 4403.
            await asyncio.to_thread(
                lambda: mutate(
                    httpx.Client(base_url=first, timeout=30),
                    LOGOUT,
                    {"scope": "CURRENT"},
                    token=watched["accessToken"],
                )
            )
            seen += [await next_message(socket), await next_message(socket)]
            return seen, await closed_code(socket)

        seen, code = run_coroutine(scenario())
    payloads = {(m["id"], json.dumps(m["payload"]["data"], sort_keys=True)) for m in seen}
    assert (
        "e",
        json.dumps(
            {"viewerSecurityEvents": {"current": False, "detail": "current", "kind": "SIGNED_OUT"}},
            sort_keys=True,
        ),
    ) in payloads
    kinds = [m["payload"]["data"]["viewerSessionEvents"]["kind"] for m in seen if m["id"] == "s"]
    assert kinds == ["OTHER_SESSION_REVOKED", "SESSION_REVOKED"]
    assert code == 4403


def test_a_bad_token_or_a_foreign_origin_is_refused(
    database_url: str, backend: str, tmp_path: Path
) -> None:
    with servers(database_url, backend, tmp_path, 1) as (base,):
        with httpx.Client(base_url=base, timeout=30) as client:
            session = signup(client)
            assert gql(client, "{ viewer { id } }", token=session["accessToken"])["data"]

        async def scenario() -> list[int]:
            codes = []
            for token, headers in (
                (None, {}),
                ("not-a-token", {}),
                (session["accessToken"], {"Origin": "https://evil.example.com"}),
            ):
                socket = await connect(base, token, **headers)
                codes.append(await closed_code(socket))
            # An allowed origin and a good token: acknowledged.
            socket = await connect(base, session["accessToken"], Origin="https://app.example.com")
            ack = await next_message(socket)
            await socket.close()
            codes.append(0 if ack["type"] == "connection_ack" else -1)
            return codes

        assert run_coroutine(scenario()) == [4401, 4401, 4403, 0]


def session_kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [m["payload"]["data"]["viewerSessionEvents"]["kind"] for m in messages]


def test_cookie_mode_init_authenticates_with_the_refresh_cookie_and_csrf_proof(
    database_url: str, backend: str, tmp_path: Path
) -> None:
    # No grace: had the handshake spent the refresh token, the HTTP refresh below would be reuse.
    with servers(
        database_url,
        backend,
        tmp_path,
        1,
        REFRESH_TOKEN_TRANSPORT="cookie",
        REFRESH_REUSE_GRACE_SECONDS="0",
    ) as (base,):
        with httpx.Client(base_url=base, timeout=30) as client:
            session = signup(client)
            cookies = {
                "authgraph_refresh": client.cookies["authgraph_refresh"],
                "authgraph_csrf": client.cookies["authgraph_csrf"],
            }
        csrf = cookies["authgraph_csrf"]
        assert session["csrfToken"] == csrf
        assert session["refreshToken"] is None

        async def scenario() -> tuple[list[str], list[int], list[str], int, int]:
            # The key is matched without regard to case; two inits with one cookie both pass.
            first = await connect_with_cookies(base, cookies, {"x-csrf-token": csrf})
            second = await connect_with_cookies(base, cookies, {"X-CSRF-Token": csrf})
            acks = [(await next_message(first))["type"], (await next_message(second))["type"]]
            await second.close()
            await subscribe(first, "s", SESSION_EVENTS)
            refusals = []
            for jar, payload, origin in (
                (cookies, {}, APP_ORIGIN),  # no proof
                (cookies, {"X-CSRF-Token": "wrong"}, APP_ORIGIN),  # proof differs from cookie
                # Proof equal to a forged CSRF cookie, but not the session's token.
                ({**cookies, "authgraph_csrf": "forged"}, {"X-CSRF-Token": "forged"}, APP_ORIGIN),
                ({**cookies, "authgraph_refresh": "unknown"}, {"X-CSRF-Token": csrf}, APP_ORIGIN),
                ({"authgraph_csrf": csrf}, {"X-CSRF-Token": csrf}, APP_ORIGIN),  # no refresh cookie
                (cookies, {"X-CSRF-Token": csrf}, "https://evil.example.com"),
            ):
                socket = await connect_with_cookies(base, jar, payload, origin)
                refusals.append(await closed_code(socket))

            def refresh_then_logout() -> None:
                # The refresh token is unspent: an HTTP refresh with it still works.
                with httpx.Client(base_url=base, timeout=30, cookies=cookies) as http:
                    body = gql(http, REFRESH, headers={"X-CSRF-Token": csrf, "Origin": APP_ORIGIN})
                    payload = body["data"]["refreshToken"]
                    assert payload["__typename"] == "AuthPayload", body
                    mutate(http, LOGOUT, {"scope": "CURRENT"}, token=payload["accessToken"])

            # Now spent (rotated by that refresh): the old cookie no longer authenticates.
            await asyncio.to_thread(refresh_then_logout)
            told = [await next_message(first)]
            code = await closed_code(first)
            stale = await connect_with_cookies(base, cookies, {"X-CSRF-Token": csrf})
            return acks, refusals, session_kinds(told), code, await closed_code(stale)

        acks, refusals, told, code, stale = run_coroutine(scenario())
    assert acks == ["connection_ack", "connection_ack"]
    assert refusals == [4401, 4401, 4401, 4401, 4401, 4403]
    # Its session ended (logout with the rotated token's access token): told, then closed.
    assert told == ["SESSION_REVOKED"]
    assert code == 4403
    assert stale == 4401


def test_connections_per_user_and_subscriptions_per_connection_close_with_4429(
    database_url: str, backend: str, tmp_path: Path
) -> None:
    with servers(
        database_url,
        backend,
        tmp_path,
        1,
        SUBSCRIPTION_CONNECTIONS_PER_USER="2",
        SUBSCRIPTIONS_PER_CONNECTION="2",
    ) as (base,):
        with httpx.Client(base_url=base, timeout=30) as client:
            token = signup(client)["accessToken"]
            other = signup(client)["accessToken"]

        async def scenario() -> tuple[list[str], int, str, str, list[str], int]:
            first, second = await connect(base, token), await connect(base, token)
            acks = [(await next_message(first))["type"], (await next_message(second))["type"]]
            third = await connect(base, token)
            over = await closed_code(third)
            # Another user's connections are counted apart.
            stranger = await connect(base, other)
            stranger_ack = (await next_message(stranger))["type"]
            await stranger.close()
            # Once one closes, the user may connect again.
            await second.close()
            again = await connect(base, token)
            again_ack = (await next_message(again))["type"]
            await again.close()
            await subscribe(first, "a", SESSION_EVENTS)
            await subscribe(first, "b", SECURITY_EVENTS)
            # Both run: a ping round trip shows the connection is still open after two.
            await first.send(json.dumps({"type": "ping"}))
            pong = [json.loads(await asyncio.wait_for(first.recv(), BOUND))["type"]]
            await subscribe(first, "c", SESSION_EVENTS)
            return acks, over, stranger_ack, again_ack, pong, await closed_code(first)

        acks, over, stranger_ack, again_ack, pong, code = run_coroutine(scenario())
    assert acks == ["connection_ack", "connection_ack"]
    assert over == 4429
    assert stranger_ack == "connection_ack"
    assert again_ack == "connection_ack"
    assert pong == ["pong"]
    assert code == 4429


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_access_token_expiry_is_told_then_closes_the_connection(
    database_url: str, backend: str, tmp_path: Path
) -> None:
    # The notice comes 30 s before expiry: a 34 s token is told after about 4 s, ends at 34 s.
    # The expiry is the connection's own timer, the same whatever broadcasts revocations: one
    # backend is enough, and saves the suite a 35 s wait.
    ttl = 34
    with servers(database_url, backend, tmp_path, 1, ACCESS_TOKEN_TTL_SECONDS=str(ttl)) as (base,):
        with httpx.Client(base_url=base, timeout=30) as client:
            session = signup(client)

        async def scenario() -> tuple[list[dict[str, Any]], int]:
            socket = await connect(base, session["accessToken"])
            assert (await next_message(socket))["type"] == "connection_ack"
            await subscribe(socket, "s", SESSION_EVENTS)
            told = [
                await next_message(socket, ttl + BOUND),
                await next_message(socket, ttl + BOUND),
            ]
            return told, await closed_code(socket)

        told, code = run_coroutine(scenario())
    events = [m["payload"]["data"]["viewerSessionEvents"] for m in told]
    assert [e["kind"] for e in events] == ["ACCESS_TOKEN_EXPIRING", "ACCESS_TOKEN_EXPIRED"]
    assert code == 4403


# -- every ending of a session, across instances ---------------------------------------------


@dataclass
class Pair:
    """Two servers on one PostgreSQL database, their environment (for the CLI) and folder."""

    first: str
    second: str
    env: dict[str, str]
    cwd: Path

    @property
    def mail_dir(self) -> Path:
        return self.cwd / "mail"


@pytest.fixture(scope="class")
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """Started once for the class. PostgreSQL only: which ending it is does not change how the
    event crosses instances (the logout test above runs on both broadcasts).

    ``ADMIN_REQUIRE_MFA=false`` lets the administrator act from a password-only session (the
    MFA requirement has its own tests in tests/graph/test_admin.py); no grace for a reused
    refresh token, so the second spend is reuse at once.
    """
    cwd = tmp_path_factory.mktemp("live-endings")
    settings = {"ADMIN_REQUIRE_MFA": "false", "REFRESH_REUSE_GRACE_SECONDS": "0"}
    for url in empty_postgres(request):
        env = server_env(url, "postgresql", cwd, **settings)
        with servers(url, "postgresql", cwd, 2, **settings) as (first, second):
            yield Pair(first, second, env, cwd)


def mail_to(folder: Path, recipient: str, subject: str) -> EmailMessage:
    """The message to ``recipient`` whose subject has ``subject``, once a server wrote it to
    MAIL_DIR (waiting a bounded time)."""
    deadline = time.monotonic() + BOUND
    while True:
        for path in sorted(folder.glob("*.eml")):
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            assert isinstance(message, EmailMessage)
            if message["To"] == recipient and subject in str(message["Subject"]).lower():
                return message
        assert time.monotonic() < deadline, f"no {subject!r} mail for {recipient} in {folder}"
        time.sleep(0.2)


def make_admin(pair: Pair, client: httpx.Client) -> str:
    """A new administrator, made with ``authgraph users grant-admin``; their access token."""
    email = unique_email("live-admin")
    token: str = signup(client, email=email)["accessToken"]
    granted = run_cli("users", "grant-admin", email, env=pair.env, cwd=pair.cwd)
    assert granted.returncode == 0, granted.stderr
    return token


def end_session(pair: Pair, ending: str, watched: dict[str, Any], other: dict[str, Any]) -> None:
    """End ``watched``'s session the way ``ending`` names, through the first server.

    ``other`` is a second session of the same user, for the endings done from another one.
    """
    email = watched["user"]["email"]
    with httpx.Client(base_url=pair.first, timeout=30) as client:
        if ending == "revokeSession":
            sessions = gql(client, SESSIONS, token=other["accessToken"])["data"]["viewer"]
            (target,) = [s["id"] for s in sessions["sessions"] if not s["current"]]
            done = mutate(client, REVOKE, {"id": target}, token=other["accessToken"])
            assert done == {"__typename": "RevokeSessionPayload", "revokedSessionId": target}
        elif ending == "refresh-token reuse":
            assert refresh(client, watched["refreshToken"])["__typename"] == "AuthPayload"
            again = refresh(client, watched["refreshToken"])
            assert again["__typename"] == "InvalidRefreshToken"
        elif ending == "changePassword":
            variables = {"current": DEFAULT_PASSWORD, "new": "another long passphrase"}
            done = mutate(client, CHANGE_PASSWORD, variables, token=other["accessToken"])
            assert done["__typename"] == "AuthPayload", done
        elif ending == "resetPassword":
            asked = mutate(client, REQUEST_PASSWORD_RESET, {"email": email})
            assert asked["__typename"] == "PasswordResetRequested"
            token = token_from(mail_to(pair.mail_dir, email, "reset"))
            variables = {"token": token, "password": "a brand new passphrase"}
            assert mutate(client, RESET_PASSWORD, variables)["__typename"] == "PasswordResetDone"
        elif ending == "deleteAccount":
            variables = {"password": DEFAULT_PASSWORD}
            done = mutate(client, DELETE_ACCOUNT, variables, token=other["accessToken"])
            assert done == {"__typename": "AccountDeleted", "deletedUserId": watched["user"]["id"]}
        elif ending == "adminDisableUser":
            admin = make_admin(pair, client)
            variables = {"id": watched["user"]["id"], "reason": "live revocation test"}
            done = mutate(client, DISABLE, variables, token=admin)
            assert done["__typename"] == "AdminUserPayload", done
        elif ending == "adminRevokeSessions":
            admin = make_admin(pair, client)
            done = mutate(client, REVOKE_SESSIONS, {"id": watched["user"]["id"]}, token=admin)
            assert done["__typename"] == "AdminUserPayload", done
        else:
            raise AssertionError(ending)


# Each ending, and the security event that carries it (kind, detail).
ENDINGS = {
    "revokeSession": ("SESSION_REVOKED", None),
    "refresh-token reuse": ("REFRESH_TOKEN_REUSED", None),
    "changePassword": ("PASSWORD_CHANGED", None),
    "resetPassword": ("PASSWORD_RESET", None),
    "deleteAccount": ("ACCOUNT_DELETED", None),
    "adminDisableUser": ("ADMIN_ACTION", "disable_user"),
    "adminRevokeSessions": ("ADMIN_ACTION", "revoke_sessions"),
}


async def read_until(
    socket: Any, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """Messages read until ``done`` says the ones read so far are enough."""
    seen: list[dict[str, Any]] = []
    while not done(seen):
        seen.append(await next_message(socket))
    return seen


async def until_closed(socket: Any) -> tuple[list[dict[str, Any]], int]:
    """The messages that come before the server closes, and its close code."""
    seen: list[dict[str, Any]] = []
    try:
        while True:
            seen.append(await next_message(socket))
    except ConnectionClosed as exc:
        received = exc.rcvd
    return seen, -1 if received is None else int(received.code)


def stream(messages: list[dict[str, Any]], op_id: str, field: str) -> list[dict[str, Any]]:
    return [
        m["payload"]["data"][field]
        for m in messages
        if m.get("id") == op_id and m["type"] == "next"
    ]


class TestTwoInstancesOnPostgres:
    """Tests that share one pair of servers (the ``pair`` fixture)."""

    @pytest.mark.parametrize("ending", list(ENDINGS))
    def test_ending_a_session_on_one_instance_closes_its_subscription_on_another(
        self, pair: Pair, ending: str
    ) -> None:
        with httpx.Client(base_url=pair.first, timeout=30) as client:
            email = unique_email("ending")
            watched = signup(client, email=email)
            other = login(client, email)
            primer = login(client, email)

        def sign_out_primer() -> None:
            with httpx.Client(base_url=pair.first, timeout=30) as client:
                mutate(client, LOGOUT, {"scope": "CURRENT"}, token=primer["accessToken"])

        def primed(seen: list[dict[str, Any]]) -> bool:
            events = stream(seen, "e", "viewerSecurityEvents")
            sessions = stream(seen, "s", "viewerSessionEvents")
            return any(e["kind"] == "SIGNED_OUT" for e in events) and bool(sessions)

        def ended(seen: list[dict[str, Any]]) -> bool:
            return any(
                e["kind"] == "SESSION_REVOKED" for e in stream(seen, "s", "viewerSessionEvents")
            )

        async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
            socket = await connect(pair.second, watched["accessToken"])
            assert (await next_message(socket))["type"] == "connection_ack"
            await subscribe(socket, "s", SESSION_EVENTS)
            await subscribe(socket, "e", SECURITY_EVENTS)
            # Another session's logout shows both streams are running before the ending.
            await asyncio.to_thread(sign_out_primer)
            before = await read_until(socket, primed)
            await asyncio.to_thread(end_session, pair, ending, watched, other)
            after = await read_until(socket, ended)
            rest, code = await until_closed(socket)
            return before, after + rest, code

        before, after, code = run_coroutine(scenario())
        assert [e["kind"] for e in stream(before, "s", "viewerSessionEvents")] == [
            "OTHER_SESSION_REVOKED"
        ]
        kind, detail = ENDINGS[ending]
        events = stream(after, "e", "viewerSecurityEvents")
        assert kind in [e["kind"] for e in events], events
        if detail is not None:
            assert detail in [e["detail"] for e in events if e["kind"] == kind], events
        # Told that its own session ended, once, and nothing after it: then closed with 4403.
        assert [e["kind"] for e in stream(after, "s", "viewerSessionEvents")] == ["SESSION_REVOKED"]
        assert code == 4403

    def test_init_authorization_key_is_matched_without_regard_to_case(self, pair: Pair) -> None:
        with httpx.Client(base_url=pair.first, timeout=30) as client:
            token = signup(client)["accessToken"]

        async def outcome(payload: dict[str, str]) -> str | int:
            """``connection_ack``, or the close code."""
            socket = await connect_with_payload(pair.second, payload)
            try:
                message = await next_message(socket)
            except ConnectionClosed as exc:
                return -1 if exc.rcvd is None else int(exc.rcvd.code)
            await socket.close()
            return str(message["type"])

        async def scenario() -> list[str | int]:
            return [
                await outcome(payload)
                for payload in (
                    {"authorization": f"Bearer {token}"},
                    {"AUTHORIZATION": f"Bearer {token}"},
                    {"Authorization": f"bearer {token}"},  # the scheme, too, in any case
                    {"Authorization": f"Basic {token}"},  # wrong scheme
                    {"Authorization": token},  # no scheme
                    {"Authorization": "Bearer "},  # empty token
                    {"Authorization": ""},
                    {"Authorisation": f"Bearer {token}"},  # not the key
                )
            ]

        assert run_coroutine(scenario()) == [
            "connection_ack",
            "connection_ack",
            "connection_ack",
            4401,
            4401,
            4401,
            4401,
            4401,
        ]
