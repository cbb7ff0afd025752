"""Each ID token check, over HTTP, with tokens signed by a key the test holds.

A small local OpenID provider imitation (discovery, JWKS, token endpoint) answers the code
with whatever ID token the test forged: a correct one is accepted (so each refusal below is
the check's doing), and a wrong ``aud``, ``iss``, ``nonce``, an expired token, ``alg: none``,
an HMAC signed with the client secret and another key under the same ``kid`` are each refused
as ``OAuthProviderError``. The real provider's tests (test_oauth.py) cover the rest.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from auth.config import Secret
from auth.settings import OAuthProviderSettings
from tests.conftest import MakeClient
from tests.oauth import complete, start
from tests.oidc import REDIRECT_URI

CLIENT_ID = "forge-client"
CLIENT_SECRET = "forge-client-secret-0123456789-abcdefghij"
KID = "key-1"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

Forge = Callable[[str, str], str]  # (issuer, nonce) -> id_token


class Imitation:
    def __init__(self) -> None:
        self.forge: Forge = lambda issuer, nonce: ""
        self.nonce = ""
        self.issued: list[str] = []
        imitation = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, value: object) -> None:
                body = json.dumps(value).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                issuer = imitation.issuer
                if self.path == "/.well-known/openid-configuration":
                    self._json(
                        {
                            "issuer": issuer,
                            "authorization_endpoint": f"{issuer}/auth",
                            "token_endpoint": f"{issuer}/token",
                            "jwks_uri": f"{issuer}/jwks",
                            "id_token_signing_alg_values_supported": ["RS256", "none", "HS256"],
                        }
                    )
                elif self.path == "/jwks":
                    jwk = json.loads(RSAAlgorithm.to_jwk(KEY.public_key()))
                    self._json({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                token = imitation.forge(imitation.issuer, imitation.nonce)
                imitation.issued.append(token)
                self._json({"access_token": "at", "token_type": "Bearer", "id_token": token})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def imitation() -> Iterator[Imitation]:
    served = Imitation()
    yield served
    served.server.shutdown()
    served.server.server_close()


@pytest.fixture
def client(make_client: MakeClient, imitation: Imitation) -> TestClient:
    provider = OAuthProviderSettings(
        id="forge",
        kind="oidc",
        issuer=imitation.issuer,
        client_id=CLIENT_ID,
        client_secret=Secret(CLIENT_SECRET),
    )
    return make_client(oauth_providers=(provider,), oauth_redirect_uris=(REDIRECT_URI,))


def _claims(issuer: str, attempt_nonce: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": "forged-subject",
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": attempt_nonce,
        "email": "forged@example.com",
        "email_verified": True,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _rs256(**changes: Any) -> Forge:
    return lambda issuer, nonce: jwt.encode(
        _claims(issuer, nonce, **changes), KEY, algorithm="RS256", headers={"kid": KID}
    )


FORGERIES: dict[str, Forge] = {
    "wrong aud": _rs256(aud="someone-else"),
    "no aud": _rs256(aud=None),
    "wrong iss": _rs256(iss="https://evil.example"),
    "expired": _rs256(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
    "wrong nonce": _rs256(nonce="another-attempts-nonce"),
    "no nonce": _rs256(nonce=None),
    "alg none": lambda issuer, nonce: jwt.encode(
        _claims(issuer, nonce), "", algorithm="none", headers={"kid": KID}
    ),
    "HS256 with the client secret": lambda issuer, nonce: jwt.encode(
        _claims(issuer, nonce), CLIENT_SECRET, algorithm="HS256", headers={"kid": KID}
    ),
    "another key, same kid": lambda issuer, nonce: jwt.encode(
        _claims(issuer, nonce), OTHER_KEY, algorithm="RS256", headers={"kid": KID}
    ),
}


def _complete_with(client: TestClient, imitation: Imitation, forge: Forge) -> dict[str, Any]:
    started = start(client, provider="forge")
    query = {k: v[0] for k, v in parse_qs(urlsplit(started["authorizationUrl"]).query).items()}
    imitation.nonce = query["nonce"]
    imitation.forge = forge
    imitation.issued.clear()
    answer = complete(client, {"code": "any", "state": query["state"]}, provider="forge")
    # The imitation did hand out the forged token (the refusal is not a failed request).
    (token,) = imitation.issued
    assert token.count(".") == 2
    return answer


def test_a_correct_id_token_signs_in(client: TestClient, imitation: Imitation) -> None:
    answer = _complete_with(client, imitation, _rs256())
    assert answer["__typename"] == "AuthPayload", answer
    assert answer["user"]["email"] == "forged@example.com"


@pytest.mark.parametrize("case", sorted(FORGERIES))
def test_a_forged_id_token_is_refused(client: TestClient, imitation: Imitation, case: str) -> None:
    answer = _complete_with(client, imitation, FORGERIES[case])
    assert answer["__typename"] == "OAuthProviderError", (case, answer)
