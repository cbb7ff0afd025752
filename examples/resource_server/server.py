"""A separate service that accepts authgraph access tokens without sharing any secret.

    python examples/resource_server/server.py --port 8100 --api http://127.0.0.1:8000

``GET /protected`` answers 200 with the caller's ``sub`` for a good bearer token, 401
otherwise. Two ways to check a token (``--mode``):

- ``jwks`` (default): offline, with PyJWT's ``PyJWKClient`` against the API's
  ``/.well-known/jwks.json``: ES256 only, ``typ: at+jwt``, ``iss``, ``aud`` and expiry checked;
  an unknown ``kid`` makes it fetch the key set again (a key rotation needs no restart). No
  round trip per request, but a revoked session is seen only when its access token expires
  (and an emergency key retirement once the cached key set is older than
  ``--jwks-cache-seconds``).
- ``introspect``: every request asks the API's ``POST /introspect`` (RFC 7662) with
  ``client_secret_basic``; revocations are seen at once, at the cost of a round trip.

It imports nothing from authgraph: only the standard library and PyJWT.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

ACCESS_TOKEN_TYPE = "at+jwt"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud", "jti"]


class Rejected(Exception):
    """The token is not good; the service answers 401 without saying why."""


@dataclass(frozen=True)
class Options:
    api: str
    issuer: str
    audience: str
    mode: str
    client_id: str
    client_secret: str
    jwks_cache_seconds: int


class JwksVerifier:
    """Offline verification from the JWKS alone."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.keys = jwt.PyJWKClient(
            f"{options.api}/.well-known/jwks.json",
            cache_jwk_set=True,
            lifespan=options.jwks_cache_seconds,
            timeout=5,
        )

    def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ") != ACCESS_TOKEN_TYPE:
                raise Rejected
            # Refetches the key set once when the kid is unknown (a new key was activated).
            key = self.keys.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["ES256"],  # pinned: never the header's choice
                issuer=self.options.issuer,
                audience=self.options.audience,
                options={"require": REQUIRED_CLAIMS},
            )
        except (jwt.PyJWTError, KeyError, ValueError) as exc:
            raise Rejected from exc
        return claims


class IntrospectionVerifier:
    """Online verification: ask the API whether the token is active (RFC 7662)."""

    def __init__(self, options: Options) -> None:
        self.options = options
        pair = f"{urllib.parse.quote_plus(options.client_id)}:"
        pair += urllib.parse.quote_plus(options.client_secret)
        self.authorization = "Basic " + base64.b64encode(pair.encode()).decode()

    def verify(self, token: str) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 (the operator's own API URL)
            f"{self.options.api}/introspect",
            data=urllib.parse.urlencode({"token": token}).encode(),
            headers={"Authorization": self.authorization},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                answer: dict[str, Any] = json.loads(response.read())
        except (urllib.error.URLError, ValueError) as exc:
            raise Rejected from exc
        if answer.get("active") is not True:
            raise Rejected
        return answer


class Handler(BaseHTTPRequestHandler):
    def __init__(self, *args: Any, verifier: JwksVerifier | IntrospectionVerifier, **kw: Any):
        self.verifier = verifier
        super().__init__(*args, **kw)

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/healthz":
            self._answer(200, {"status": "ok"})
            return
        if path != "/protected":
            self._answer(404, {"error": "not_found"})
            return
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self._answer(401, {"error": "invalid_token"})
            return
        try:
            claims = self.verifier.verify(token.strip())
        except Rejected:
            self._answer(401, {"error": "invalid_token"})
            return
        self._answer(200, {"sub": claims["sub"], "checked_by": self.verifier_name})

    @property
    def verifier_name(self) -> str:
        return "jwks" if isinstance(self.verifier, JwksVerifier) else "introspection"

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        # Never log the Authorization header; the request line is enough.
        super().log_message(format, *args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="authgraph's base URL")
    parser.add_argument("--issuer", default="authgraph", help="expected iss (JWT_ISSUER)")
    parser.add_argument("--audience", default="authgraph", help="expected aud (JWT_AUDIENCE)")
    parser.add_argument("--mode", choices=("jwks", "introspect"), default="jwks")
    parser.add_argument("--client-id", default="resource-server", help="introspection client")
    parser.add_argument(
        "--jwks-cache-seconds", type=int, default=60, help="how long the key set is kept"
    )
    args = parser.parse_args()
    options = Options(
        api=args.api.rstrip("/"),
        issuer=args.issuer,
        audience=args.audience,
        mode=args.mode,
        client_id=args.client_id,
        # From the environment, not the command line (which other users can read).
        client_secret=os.environ.get("RESOURCE_SERVER_CLIENT_SECRET", ""),
        jwks_cache_seconds=args.jwks_cache_seconds,
    )
    verifier = JwksVerifier(options) if options.mode == "jwks" else IntrospectionVerifier(options)
    handler = functools.partial(Handler, verifier=verifier)
    server = ThreadingHTTPServer((args.host, args.port), handler)
    print(f"resource server ({options.mode}) on http://{args.host}:{args.port}/protected")
    server.serve_forever()


if __name__ == "__main__":
    main()
