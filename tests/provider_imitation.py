"""A small local OpenID provider imitation that misbehaves on request, and a bystander.

The real provider (oidc-provider, tests/oidc.py) cannot be made to redirect its token
endpoint, name another issuer or hang on its JWKS; this imitation can. It serves what
authgraph's OIDC client uses: discovery, ``/token`` (any code: an ID token signed by
:data:`KEY`, for the nonce the test read from the authorization URL, without ``email`` so
that userinfo is asked too), ``/jwks`` and ``/userinfo``. A test switches a :data:`FAULTS`
kind on for one path; every body a fault sends carries :attr:`ProviderImitation.marker`,
which must never reach authgraph's client.

:class:`Bystander` is an address that is not the provider's: where redirects point, a
``jku`` or ``x5u`` names, and an HTTP(S)_PROXY variable would send requests. It records
every request it gets (none is the expected number) and serves an attacker's JWKS.
"""

from __future__ import annotations

import functools
import gzip
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from auth.config import Secret
from auth.settings import OAuthProviderSettings

CLIENT_ID = "imitation-client"
CLIENT_SECRET = "imitation-client-secret-0123456789-abcdef"
KID = "imitation-key"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER_KID = "attacker-key"
# 1024 bits: small enough to embed in a JWS header (joserfc refuses headers over 512 bytes).
ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the attacker's, in a test)
SUBJECT = "imitation-subject"
EMAIL = "imitated@example.com"
DISCOVERY = "/.well-known/openid-configuration"
# What a faulty endpoint may do: a 500, a body that is not JSON, JSON of the wrong shape,
# JSON nested deeper than any parser recurses, no answer within any sensible timeout, a
# redirect to the bystander.
FAULTS = ("error", "garbage", "wrong-shape", "deep", "hang", "redirect")
# Compressed faults: "gzip-bomb" is a gzip body of GZIP_BOMB_BYTES of zeros (about 64 KB on
# the wire); "brotli" names an encoding the client did not ask for.
COMPRESSED = ("gzip-bomb", "brotli")
GZIP_BOMB_BYTES = 64 * 1024 * 1024
# Faults that stream a body and note whether the client hung up before its end: "endless"
# offers STREAM_BYTES as fast as it is read (no Content-Length), "drip" one byte every
# DRIP_INTERVAL for DRIP_BYTES (each read well within the timeout, the whole far past it).
STREAMS = ("endless", "drip")
STREAM_BYTES = 64 * 1024 * 1024
DRIP_INTERVAL = 0.05
DRIP_BYTES = 400
# How long "hang" holds the answer at most (the test's fixture releases it sooner).
HANG_SECONDS = 30.0


@functools.cache
def gzip_bomb() -> bytes:
    """GZIP_BOMB_BYTES of zeros, gzip-compressed (made once: a test measuring memory warms it)."""
    return gzip.compress(bytes(GZIP_BOMB_BYTES), compresslevel=9)


Forge = Callable[[str, str], str]  # (issuer, nonce) -> id_token


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


def claims(issuer: str, nonce: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": issuer,
        "sub": SUBJECT,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": nonce,
    }


def signed(issuer: str, nonce: str) -> str:
    """The imitation's own, correct ID token."""
    return jwt.encode(claims(issuer, nonce), KEY, algorithm="RS256", headers={"kid": KID})


def _json(
    handler: BaseHTTPRequestHandler,
    status: int,
    value: object,
    raw: bytes = b"",
    encoding: str | None = None,
) -> None:
    body = raw or json.dumps(value).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    if encoding is not None:
        handler.send_header("Content-Encoding", encoding)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Bystander(_Server):
    """Any address but the provider's: records what it is asked, serves an attacker's JWKS."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        bystander = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                # A proxied request names the whole URL: kept as it came.
                bystander.requests.append(f"{self.command} {self.path}")
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                _json(self, 200, {"keys": [public_jwk(ATTACKER_KEY, ATTACKER_KID)]})

            do_GET = do_POST = _any

        super().__init__(Handler)


@dataclass
class ProviderImitation:
    """The provider's state: its faults, what it was asked, and the nonce to sign for."""

    bystander: Bystander
    url: str = ""
    marker: str = field(default_factory=lambda: "provider-said-" + secrets.token_hex(8))
    # path -> fault kind (one of FAULTS)
    faults: dict[str, str] = field(default_factory=dict)
    # Whether every sound answer is sent gzip-compressed (when the client accepts gzip).
    compress: bool = False
    # The Accept-Encoding of each request, as the client sent it.
    accepted_encodings: list[str] = field(default_factory=list)
    # What discovery says the issuer is (None: the truth), and members it changes.
    announced_issuer: str | None = None
    discovery_changes: dict[str, Any] = field(default_factory=dict)
    forge: Forge = signed
    nonce: str = ""
    requests: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    # For STREAMS: set when the stream ended, whether the client hung up first, bytes sent.
    streamed: threading.Event = field(default_factory=threading.Event)
    cut_off: bool = False
    sent: int = 0

    def settings(self, provider_id: str = "imit") -> OAuthProviderSettings:
        return OAuthProviderSettings(
            id=provider_id,
            kind="oidc",
            issuer=self.url,
            client_id=CLIENT_ID,
            client_secret=Secret(CLIENT_SECRET),
            name="Imitation",
        )

    def reset(self) -> None:
        self.faults.clear()
        self.compress = False
        self.accepted_encodings.clear()
        self.announced_issuer = None
        self.discovery_changes.clear()
        self.forge = signed
        self.requests.clear()
        self.bystander.requests.clear()
        self.streamed = threading.Event()
        self.cut_off, self.sent = False, 0
        # Lets hanging answers go, then arms the next hang.
        self.release.set()
        self.release = threading.Event()

    def paths(self) -> list[str]:
        return [r.split(" ", 1)[1].split("?", 1)[0] for r in self.requests]


def _handler(imitation: ProviderImitation) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _fault(self, path: str) -> bool:
            """Do the fault switched on for ``path``; whether the answer is given."""
            kind = imitation.faults.get(path)
            marker = imitation.marker
            if kind is None:
                return False
            if kind == "hang":
                imitation.release.wait(HANG_SECONDS)
                return False
            if kind == "error":
                _json(self, 500, {"error": "server_error", "error_description": marker})
            elif kind == "garbage":
                _json(self, 200, None, raw=f'{{"{marker}": <html>oops'.encode())
            elif kind == "wrong-shape":
                _json(self, 200, [marker, {"keys": marker, "sub": marker}])
            elif kind == "deep":
                _json(self, 200, None, raw=f'{"[" * 200_000}"{marker}"'.encode())
            elif kind == "gzip-bomb":
                _json(self, 200, None, raw=gzip_bomb(), encoding="gzip")
            elif kind == "brotli":
                _json(self, 200, None, raw=marker.encode(), encoding="br")
            elif kind in STREAMS:
                self._stream(kind)
            elif kind == "redirect":
                body = marker.encode()
                self.send_response(307)
                self.send_header("Location", f"{imitation.bystander.url}{path}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                raise AssertionError(kind)
            return True

        def _stream(self, kind: str) -> None:
            # HTTP/1.0 with no Content-Length: the body ends when the connection closes.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            chunk, total = (b" " * 65536, STREAM_BYTES) if kind == "endless" else (b" ", DRIP_BYTES)
            try:
                self.wfile.write(f'["{imitation.marker}",'.encode())
                while imitation.sent < total and not imitation.release.is_set():
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    imitation.sent += len(chunk)
                    if kind == "drip":
                        time.sleep(DRIP_INTERVAL)
                self.wfile.write(b"1]")
                self.wfile.flush()
            except OSError:
                imitation.cut_off = True
            finally:
                imitation.streamed.set()

        def _ok(self, value: object) -> None:
            """A sound answer: gzip-compressed when the imitation compresses and it is asked."""
            accepted = self.headers.get("Accept-Encoding") or ""
            if imitation.compress and "gzip" in accepted:
                _json(
                    self, 200, None, raw=gzip.compress(json.dumps(value).encode()), encoding="gzip"
                )
            else:
                _json(self, 200, value)

        def do_GET(self) -> None:
            imitation.requests.append(f"GET {self.path}")
            imitation.accepted_encodings.append(self.headers.get("Accept-Encoding") or "")
            path = self.path.split("?", 1)[0]
            if self._fault(path):
                return
            issuer = imitation.url
            if path == DISCOVERY:
                self._ok(
                    {
                        "issuer": imitation.announced_issuer or issuer,
                        "authorization_endpoint": f"{issuer}/auth",
                        "token_endpoint": f"{issuer}/token",
                        "jwks_uri": f"{issuer}/jwks",
                        "userinfo_endpoint": f"{issuer}/userinfo",
                        "id_token_signing_alg_values_supported": ["RS256"],
                        **imitation.discovery_changes,
                    },
                )
            elif path == "/jwks":
                self._ok({"keys": [public_jwk(KEY, KID)]})
            elif path == "/userinfo":
                if self.headers.get("Authorization") != "Bearer imitation-access-token":
                    _json(self, 401, {"error": "invalid_token"})
                    return
                self._ok({"sub": SUBJECT, "email": EMAIL, "email_verified": True})
            else:
                _json(self, 404, {"error": "not_found"})

        def do_POST(self) -> None:
            imitation.requests.append(f"POST {self.path}")
            imitation.accepted_encodings.append(self.headers.get("Accept-Encoding") or "")
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self._fault(self.path):
                return
            if self.path != "/token":
                _json(self, 404, {"error": "not_found"})
                return
            token = imitation.forge(imitation.url, imitation.nonce)
            self._ok(
                {
                    "access_token": "imitation-access-token",
                    "token_type": "Bearer",
                    "id_token": token,
                },
            )

    return Handler


@contextmanager
def provider_imitation() -> Iterator[ProviderImitation]:
    """The imitation and its bystander, on free loopback ports, until the block ends."""
    bystander = Bystander()
    imitation = ProviderImitation(bystander=bystander)
    server = _Server(_handler(imitation))
    imitation.url = server.url
    try:
        yield imitation
    finally:
        imitation.release.set()
        server.stop()
        bystander.stop()
