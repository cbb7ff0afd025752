"""The public keys and the server's metadata: ``/.well-known/jwks.json`` and discovery.

Both are answered from the process's cached key set (:class:`auth.keys.KeyRing`), never by
reading the database per request.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from fastapi import APIRouter, Request, Response

from auth.keys import ASYMMETRIC_ALGORITHMS
from graph.root import AppState

router = APIRouter()
JWKS_PATH = "/.well-known/jwks.json"
TOKEN_PATH = "/token"
INTROSPECTION_PATH = "/introspect"
# Discovery changes only with a deployment: let clients keep it a while.
METADATA_MAX_AGE_SECONDS = 3600


@router.get(JWKS_PATH, summary="The public keys that verify access tokens (RFC 7517).")
async def jwks(request: Request) -> Response:
    state: AppState = request.app.state.authgraph
    keys = state.toolkit.keys
    body = json.dumps(keys.key_set.jwks(time.time()), sort_keys=True).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    # A verifier may keep the set as long as a server keeps its own; on an unknown kid it
    # fetches again anyway (PyJWKClient does).
    headers = {
        "Cache-Control": f"public, max-age={int(keys.config.refresh_seconds)}",
        "ETag": etag,
    }
    if etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/jwk-set+json", headers=headers)


def _etags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}


def server_metadata(state: AppState, request: Request) -> dict[str, Any]:
    """RFC 8414 metadata: the fields that apply to a password-grant, JWT-issuing server."""
    issuer = state.settings.auth.jwt_issuer
    # The issuer is the base of the endpoints when it is a URL (it should be, RFC 8414 §2);
    # otherwise the URL this request reached.
    base = issuer if issuer.startswith(("https://", "http://")) else str(request.base_url)
    base = base.rstrip("/")
    algorithm = state.settings.auth.jwt_algorithm
    metadata: dict[str, Any] = {
        "issuer": issuer,
        "jwks_uri": base + JWKS_PATH,
        "token_endpoint": base + TOKEN_PATH,
        "introspection_endpoint": base + INTROSPECTION_PATH,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "grant_types_supported": ["password"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        # Not a registered name: access tokens are JWTs (RFC 9068) signed with these.
        "access_token_signing_alg_values_supported": (
            [algorithm] if algorithm in ASYMMETRIC_ALGORITHMS else []
        ),
    }
    return metadata


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="Authorization server metadata (RFC 8414).",
)
async def oauth_metadata(request: Request) -> Response:
    state: AppState = request.app.state.authgraph
    return _metadata_response(server_metadata(state, request))


@router.get(
    "/.well-known/openid-configuration",
    summary="The same metadata, where OpenID Connect clients look for it.",
)
async def openid_configuration(request: Request) -> Response:
    state: AppState = request.app.state.authgraph
    return _metadata_response(server_metadata(state, request))


def _metadata_response(metadata: dict[str, Any]) -> Response:
    return Response(
        json.dumps(metadata),
        media_type="application/json",
        headers={"Cache-Control": f"public, max-age={METADATA_MAX_AGE_SECONDS}"},
    )
