"""Webhooks: every security event POSTed to a real HTTP receiver, signed per Standard Webhooks.

The receiver is an HTTP server on a loopback port, down at first (nothing listens), then up;
its deliveries are verified with the ``standardwebhooks`` package, an implementation of the
specification independent of ours. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from auth.config import Secret
from auth.errors import ConfigurationError
from auth.settings import AuthSettings
from db.engine import normalize_database_url
from tests.conftest import MakeClient
from tests.factories import (
    CHANGE_PASSWORD,
    DEFAULT_PASSWORD,
    LOGOUT,
    login,
    mutate,
    refresh,
    signup,
    unique_email,
)
from tests.graph.test_security_events import events
from tests.servers import free_port

WAIT_SECONDS = 30
RETRY_FAST = {
    "outbox_poll_interval_seconds": 0.1,
    "outbox_retry_base_seconds": 0.05,
    "outbox_retry_max_seconds": 0.3,
}


def new_secret(size: int = 32) -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(size)).decode()


class Receiver:
    """What the receiver got: each request's headers and body, in arrival order."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        # Statuses to answer first (then 200), each with its Retry-After header, if any.
        self.refusals: list[tuple[int, str | None]] = []
        self.changed = threading.Condition()

    def ids(self) -> list[str]:
        with self.changed:
            return [h["webhook-id"] for h, _ in self.requests]

    def wait_for_ids(self, wanted: set[str]) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        with self.changed:
            while not wanted <= {h["webhook-id"] for h, _ in self.requests}:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"delivered {self.ids()}, wanted {sorted(wanted)}"
                self.changed.wait(remaining)


@contextmanager
def receiver_on(port: int, receiver: Receiver) -> Iterator[None]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            with receiver.changed:
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                refusal = receiver.refusals.pop(0) if receiver.refusals else None
                receiver.changed.notify_all()
            status, retry_after = refusal or (200, None)
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def failed_attempts(database_url: str) -> int:
    engine = create_engine(normalize_database_url(database_url))
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT count(*) FROM outbox WHERE channel = 'webhook' "
                        "AND last_error IS NOT NULL"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def trail_ids(client: Any, token: str) -> set[str]:
    return {e["node"]["id"] for e in events(client, token)["edges"]}


def test_a_receiver_that_was_down_gets_every_event_signed(
    make_client: MakeClient, database_url: str
) -> None:
    port = free_port()
    secret = new_secret()
    client = make_client(
        webhook_url=f"http://127.0.0.1:{port}/hooks", webhook_secret=Secret(secret), **RETRY_FAST
    )
    email = unique_email("hooked")
    session = signup(client, email=email)
    assert login(client, email, "a wrong password here")["__typename"] == "InvalidCredentials"
    other = login(client, email)
    mutate(client, LOGOUT, {"scope": "CURRENT"}, token=other["accessToken"])
    # Down: nothing listens, and attempts fail (and are kept for retry).
    deadline = time.monotonic() + WAIT_SECONDS
    while failed_attempts(database_url) < 4:
        assert time.monotonic() < deadline, "no delivery was attempted"
        time.sleep(0.05)
    wanted = trail_ids(client, session["accessToken"])
    assert len(wanted) == 4

    receiver = Receiver()
    with receiver_on(port, receiver):
        receiver.wait_for_ids(wanted)
    verifier = Webhook(secret)
    delivered: dict[str, Any] = {}
    for headers, body in receiver.requests:
        payload = verifier.verify(body, headers)
        assert payload["data"]["id"] == headers["webhook-id"]
        assert headers["content-type"] == "application/json"
        delivered[headers["webhook-id"]] = payload
    assert set(delivered) == wanted
    kinds = sorted(p["data"]["kind"] for p in delivered.values())
    assert kinds == ["SIGNED_IN", "SIGNED_IN", "SIGNED_OUT", "SIGN_IN_FAILED"]
    assert {p["type"] for p in delivered.values()} == {
        "security_event.signed_in",
        "security_event.signed_out",
        "security_event.sign_in_failed",
    }
    assert {p["data"]["userId"] for p in delivered.values()} == {session["user"]["id"]}
    # A signature under another key is refused by the verifier: the check is real.
    headers, body = receiver.requests[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_retry_after_is_honoured_and_the_id_is_kept(make_client: MakeClient) -> None:
    port = free_port()
    secret = new_secret()
    receiver = Receiver()
    receiver.refusals = [(503, "1"), (429, "0")]
    with receiver_on(port, receiver):
        client = make_client(
            webhook_url=f"http://127.0.0.1:{port}/", webhook_secret=Secret(secret), **RETRY_FAST
        )
        session = signup(client)
        (wanted,) = trail_ids(client, session["accessToken"])
        deadline = time.monotonic() + WAIT_SECONDS
        while len(receiver.ids()) < 3:
            assert time.monotonic() < deadline, receiver.ids()
            time.sleep(0.05)
    # Refused twice, then accepted: three attempts, one webhook-id, three valid signatures.
    assert receiver.ids()[:3] == [wanted, wanted, wanted]
    verifier = Webhook(secret)
    for headers, body in receiver.requests[:3]:
        verifier.verify(body, headers)
    stamps = [int(h["webhook-timestamp"]) for h, _ in receiver.requests[:3]]
    # The 503 asked for a second: the retry's timestamp is at least that much later.
    assert stamps[1] >= stamps[0] + 1


def test_no_secret_reaches_events_or_webhook_payloads(make_client: MakeClient) -> None:
    port = free_port()
    receiver = Receiver()
    with receiver_on(port, receiver):
        client = make_client(
            webhook_url=f"http://127.0.0.1:{port}/",
            webhook_secret=Secret(new_secret()),
            refresh_reuse_grace_seconds=0,
            **RETRY_FAST,
        )
        email = unique_email("greppable")
        session = signup(client, email=email)
        leaks = [DEFAULT_PASSWORD, email, session["accessToken"], session["refreshToken"]]
        rotated = refresh(client, session["refreshToken"])
        leaks += [rotated["accessToken"], rotated["refreshToken"]]
        time.sleep(0.01)
        changed = mutate(
            client,
            CHANGE_PASSWORD,
            {"current": DEFAULT_PASSWORD, "new": "the second password 99"},
            token=rotated["accessToken"],
        )
        leaks += ["the second password 99", changed["accessToken"], changed["refreshToken"]]
        login(client, email, "a guess that is wrong")
        leaks.append("a guess that is wrong")
        wanted = trail_ids(client, changed["accessToken"])
        receiver.wait_for_ids(wanted)
        trail = json.dumps(events(client, changed["accessToken"]))
    bodies = " ".join(body.decode() for _, body in receiver.requests)
    headers = json.dumps([h for h, _ in receiver.requests])
    for leak in leaks:
        assert leak not in trail
        assert leak not in bodies
        assert leak not in headers


def test_webhook_secret_format_and_strength_are_checked() -> None:
    from auth.config import Source

    production = Source(environ={}, production=True)
    development = Source(environ={}, production=False)
    parse = _parser("WEBHOOK_SECRET")
    with pytest.raises(ConfigurationError, match="whsec_"):
        parse("not-the-format", development)
    with pytest.raises(ConfigurationError, match="base64"):
        parse("whsec_!!!", development)
    with pytest.raises(ConfigurationError, match="32 bytes"):
        parse(new_secret(16), production)
    assert parse(new_secret(16), development).reveal().startswith("whsec_")
    assert parse(new_secret(32), production).reveal().startswith("whsec_")
    url = _parser("WEBHOOK_URL")
    with pytest.raises(ConfigurationError, match="https"):
        url("http://hooks.example.com/", production)
    assert url("https://hooks.example.com/in", production) == "https://hooks.example.com/in"


def _parser(name: str) -> Any:
    from auth.config import declarations

    for _, declared in declarations(AuthSettings):
        if declared.env == name:
            return declared.parse
    raise AssertionError(name)
