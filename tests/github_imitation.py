"""A small local imitation of GitHub's OAuth 2 endpoints, for the ``github`` preset's tests.

GitHub is no OpenID provider, so oidc-provider cannot stand in for it. This imitates what
authgraph uses, as GitHub documents it: ``/login/oauth/authorize`` (here it signs in at once
as the user the test chose, with no page), ``/login/oauth/access_token`` (JSON with
``Accept: application/json``; a bad code is HTTP 200 with ``error: bad_verification_code``;
the PKCE verifier checked against the S256 challenge), and the REST API's ``/user`` and
``/user/emails``. It is an imitation, not GitHub: the README says so.

A test may switch a fault on for one path (``faults``: a 500, a body that is not JSON, JSON of
the wrong shape, an answer held past any timeout, a redirect to ``elsewhere``); each fault's
body carries ``marker``, which must never reach authgraph's client.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "github-test-client"
CLIENT_SECRET = "github-test-client-secret-0123456789abcdef"
# How long a "hang" fault holds its answer at most (released when the imitation stops).
HANG_SECONDS = 30.0


@dataclass
class GitHubUser:
    id: int
    login: str
    # (email, primary, verified)
    emails: list[tuple[str, bool, bool]]


@dataclass
class GitHubImitation:
    port: int = 0
    users: dict[str, GitHubUser] = field(default_factory=dict)
    signed_in: str = ""
    codes: dict[str, tuple[str, str, str]] = field(
        default_factory=dict
    )  # code: user, challenge, uri
    tokens: dict[str, str] = field(default_factory=dict)
    # path -> "error", "garbage", "wrong-shape", "hang" or "redirect"
    faults: dict[str, str] = field(default_factory=dict)
    marker: str = field(default_factory=lambda: "github-said-" + secrets.token_hex(8))
    # Where a redirecting fault points (a test's bystander).
    elsewhere: str = "http://127.0.0.1:9"
    requests: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


@contextmanager
def github_imitation() -> Iterator[GitHubImitation]:
    imitation = GitHubImitation()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _json(self, status: int, value: object) -> None:
            body = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # The client may have hung up first (a timeout test): nobody to answer then.
            with contextlib.suppress(OSError):
                self.wfile.write(body)

        def _fault(self, path: str) -> bool:
            """Do the fault switched on for ``path``; whether the answer is given."""
            kind, marker = imitation.faults.get(path), imitation.marker
            if kind is None:
                return False
            if kind == "hang":
                imitation.release.wait(HANG_SECONDS)
                return False
            if kind == "error":
                self._json(500, {"message": marker})
            elif kind == "garbage":
                body = f"<html>{marker}".encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif kind == "wrong-shape":
                self._json(200, {"id": marker, "email": marker} if path == "/user" else {})
            elif kind == "redirect":
                self.send_response(307)
                self.send_header("Location", f"{imitation.elsewhere}{path}")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                raise AssertionError(kind)
            return True

        def do_GET(self) -> None:
            imitation.requests.append(f"GET {self.path}")
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/login/oauth/authorize":
                if (
                    query.get("client_id") != CLIENT_ID
                    or query.get("code_challenge_method") != "S256"
                ):
                    self._json(400, {"error": "invalid_request"})
                    return
                code = secrets.token_hex(10)
                imitation.codes[code] = (
                    imitation.signed_in,
                    query["code_challenge"],
                    query["redirect_uri"],
                )
                back = urlencode({"code": code, "state": query["state"]})
                self.send_response(302)
                self.send_header("Location", f"{query['redirect_uri']}?{back}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            auth = self.headers.get("Authorization", "")
            login = imitation.tokens.get(auth.removeprefix("Bearer "))
            if login is None:
                self._json(401, {"message": "Bad credentials"})
                return
            if self._fault(parts.path):
                return
            user = imitation.users[login]
            if parts.path == "/user":
                self._json(200, {"id": user.id, "login": user.login})
            elif parts.path == "/user/emails":
                self._json(
                    200,
                    [{"email": e, "primary": p, "verified": v} for e, p, v in user.emails],
                )
            else:
                self._json(404, {"message": "Not Found"})

        def do_POST(self) -> None:
            imitation.requests.append(f"POST {self.path}")
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if self._fault(urlsplit(self.path).path):
                return
            basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if urlsplit(self.path).path != "/login/oauth/access_token":
                self._json(404, {"message": "Not Found"})
                return
            if self.headers.get("Authorization") != f"Basic {basic}":
                self._json(200, {"error": "incorrect_client_credentials"})
                return
            grant = imitation.codes.pop(form.get("code", ""), None)
            if (
                grant is None
                or grant[2] != form.get("redirect_uri")
                or _s256(form.get("code_verifier", "")) != grant[1]
            ):
                self._json(200, {"error": "bad_verification_code"})
                return
            token = "gho_" + secrets.token_hex(16)
            imitation.tokens[token] = grant[0]
            self._json(200, {"access_token": token, "token_type": "bearer", "scope": "user:email"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    imitation.port = server.server_address[1]
    # A short poll: each test starts and stops its own imitation.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield imitation
    finally:
        imitation.release.set()
        server.shutdown()
        server.server_close()
