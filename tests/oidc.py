"""A real OpenID provider for the social sign-in tests, and a user agent for its pages.

:func:`start_provider` runs ``tests/oidc_provider/provider.mjs`` (oidc-provider from npm, an
OpenID-certified implementation) on a free loopback port, behind :class:`FaultProxy`: a
small pass-through proxy whose address is the provider's issuer. Untouched, it forwards every
byte both ways; a test may switch one fault on to see how authgraph takes a provider that is
down, slow, answers garbage or hands out a tampered ID token.

:func:`sign_in_at_provider` is the user at the provider: it follows the authorization URL
through the provider's own login and consent pages (its development interactions) and
returns what the provider sends back to the redirect URI.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from auth.config import Secret
from auth.settings import OAuthProviderSettings

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID = "authgraph-test"
CLIENT_SECRET = "authgraph-test-client-secret-0123456789"
# Where the SPA would be; the user agent below stops at the redirect to it.
REDIRECT_URI = "http://localhost:5173/oauth/callback"
OTHER_REDIRECT_URI = "http://localhost:5173/other-callback"
# The provider's accounts: logins, with verified and unverified emails.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"email": "alice@example.com", "email_verified": True},
    "bob": {"email": "bob@example.com", "email_verified": True},
    "carol": {"email": "carol@example.com", "email_verified": False},
    "dave": {"email": "dave@example.com", "email_verified": True},
    "erin": {"email": "erin@example.com", "email_verified": True},
    "frank": {"email": "frank@example.com", "email_verified": False},
    "grace": {"email": "grace@example.com", "email_verified": True},
    "heidi": {"email": "heidi@example.com", "email_verified": True},
    "ivan": {"email": "ivan@example.com", "email_verified": True},
    "judy": {"email": "judy@example.com", "email_verified": True},
}
STARTUP_SECONDS = 20


def node_available() -> bool:
    return shutil.which("node") is not None and (PROVIDER_DIR / "node_modules").is_dir()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Fault:
    """What the proxy does to requests whose path starts with ``path`` (all if empty)."""

    kind: str = "none"  # none, down, slow, garbage, tamper
    path: str = ""
    delay: float = 0.0


class FaultProxy:
    """A loopback pass-through proxy in front of the provider, with one switchable fault."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.upstream_port = 0
        self.fault = Fault()
        self.requests: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy.forward(self)

            def do_POST(self) -> None:
                proxy.forward(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def forward(self, request: BaseHTTPRequestHandler) -> None:
        self.requests.append(f"{request.command} {request.path}")
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length) if length else b""
        fault = self.fault
        hit = fault.kind != "none" and request.path.startswith(fault.path)
        if hit and fault.kind == "down":
            # As a dead peer: the connection drops with no answer at all.
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        if hit and fault.kind == "slow":
            time.sleep(fault.delay)
        if hit and fault.kind == "garbage":
            self._answer(request, 200, [("Content-Type", "text/html")], b"<html>oops</html>")
            return
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "connection"}
        upstream.request(request.command, request.path, body=body, headers=headers)
        response = upstream.getresponse()
        content = response.read()
        # Every header (Set-Cookie may come several times) but the hop-by-hop ones.
        passed = [
            (k, v)
            for k, v in response.getheaders()
            if k.lower() not in ("transfer-encoding", "connection", "content-length")
        ]
        upstream.close()
        if hit and fault.kind == "tamper":
            content = tamper_id_token(content)
        self._answer(request, response.status, passed, content)

    @staticmethod
    def _answer(
        request: BaseHTTPRequestHandler,
        status: int,
        headers: list[tuple[str, str]],
        content: bytes,
    ) -> None:
        request.send_response(status)
        for key, value in headers:
            request.send_header(key, value)
        request.send_header("Content-Length", str(len(content)))
        request.send_header("Connection", "close")
        request.end_headers()
        request.wfile.write(content)
        request.close_connection = True


def tamper_id_token(content: bytes) -> bytes:
    """The token response with its ID token's payload changed (another subject), signature kept."""
    answer = json.loads(content)
    header, payload, signature = answer["id_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    claims["email"] = "victim@example.com"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    answer["id_token"] = f"{header}.{forged}.{signature}"
    return json.dumps(answer).encode()


@dataclass
class OidcProvider:
    """The running provider: its issuer (the proxy), the proxy, and the Node process."""

    proxy: FaultProxy
    process: subprocess.Popen[str]
    redirect_uris: tuple[str, ...]
    log: list[str] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.proxy.url

    def settings(self, provider_id: str = "acme", **overrides: Any) -> OAuthProviderSettings:
        """authgraph's settings for this provider (kind oidc, by discovery)."""
        values: dict[str, Any] = {
            "id": provider_id,
            "kind": "oidc",
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": Secret(CLIENT_SECRET),
            "name": "Acme ID",
        }
        values.update(overrides)
        return OAuthProviderSettings(**values)


@contextmanager
def start_provider(redirect_uris: tuple[str, ...] = (REDIRECT_URI,)) -> Iterator[OidcProvider]:
    """Run the provider behind its proxy until the block ends."""
    proxy = FaultProxy(free_port())
    env = {
        **os.environ,
        "OIDC_ISSUER": proxy.url,
        "OIDC_REDIRECT_URIS": ",".join(redirect_uris),
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_ACCOUNTS": json.dumps(ACCOUNTS),
        "OIDC_PORT": "0",
    }
    process = subprocess.Popen(
        ["node", str(PROVIDER_DIR / "provider.mjs")],
        cwd=PROVIDER_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = _first_line(process, STARTUP_SECONDS)
        proxy.upstream_port = int(json.loads(line)["port"])
        proxy.start()
        yield OidcProvider(proxy=proxy, process=process, redirect_uris=redirect_uris)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
        if proxy.thread.is_alive():
            proxy.stop()


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    found: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: found.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not found or not found[0].strip():
        raise RuntimeError(f"the OpenID provider did not start (exit {process.poll()})")
    return found[0]


# -- the user at the provider ---------------------------------------------------------------

_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


def sign_in_at_provider(
    authorization_url: str, login: str, *, consent: bool = True
) -> dict[str, str]:
    """Log in as ``login`` on the provider's page, consent, and answer the redirect's query
    (``code``, ``state``; or ``error``) as the provider sends it to the redirect URI."""
    provider_origin = _origin(authorization_url)
    with httpx.Client(follow_redirects=False, timeout=10, trust_env=False) as browser:
        response = browser.get(authorization_url)
        for _ in range(20):
            if response.is_redirect:
                target = urljoin(str(response.url), response.headers["location"])
                if _origin(target) != provider_origin:
                    return {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
                response = browser.get(target)
                continue
            page = response.text
            action = _ACTION.search(page)
            if response.status_code != 200 or action is None:
                raise AssertionError(
                    f"unexpected provider page ({response.status_code}): {page[:300]}"
                )
            submit = urljoin(str(response.url), action.group(1).replace("&amp;", "&"))
            if 'name="login"' in page:
                form = {"prompt": "login", "login": login, "password": "any"}
            elif 'value="consent"' in page and consent:
                form = {"prompt": "consent"}
            else:
                raise AssertionError(f"unexpected provider page: {page[:300]}")
            response = browser.post(submit, data=form)
    raise AssertionError("the provider never sent the browser back")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
