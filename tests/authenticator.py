"""A software WebAuthn authenticator for the HTTP tests, built from `cryptography` keys.

It answers ``navigator.credentials.create``/``get`` options the way a browser with a
platform authenticator would, as the JSON of ``PublicKeyCredential.toJSON()``: a P-256
key (ES256), ``none`` attestation, a signature counter, and flags the test chooses (user
verification, backup). Its origin and RP ID are parameters, so a test can answer as a
phishing page would.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

ORIGIN = "http://localhost:8000"
RP_ID = "localhost"

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


@dataclass
class Credential:
    """One key the authenticator holds: its id, private key, user handle and counter."""

    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    """A platform authenticator in memory; ``counter_step=0`` is one that keeps no counter."""

    user_verification: bool = True
    backed_up: bool = False
    counter_step: int = 1
    credentials: list[Credential] = field(default_factory=list)

    def _flags(self, *, attested: bool = False) -> int:
        flags = UP
        if self.user_verification:
            flags |= UV
        if self.backed_up:
            flags |= BE | BS
        if attested:
            flags |= AT
        return flags

    def create(
        self, options_json: str, *, origin: str = ORIGIN, rp_id: str | None = None
    ) -> tuple[str, Credential]:
        """Answer creation options: the credential JSON, and the key now held."""
        options = json.loads(options_json)
        rp = rp_id or options["rp"]["id"]
        excluded = {c["id"] for c in options.get("excludeCredentials", [])}
        key = ec.generate_private_key(ec.SECP256R1())
        credential = Credential(
            id=secrets.token_bytes(16),
            key=key,
            rp_id=rp,
            user_handle=base64url_to_bytes(options["user"]["id"]),
        )
        assert bytes_to_base64url(credential.id) not in excluded
        numbers = key.public_key().public_numbers()
        cose_key = {
            1: 2,  # kty: EC2
            3: -7,  # alg: ES256
            -1: 1,  # crv: P-256
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }
        attested = (
            bytes(16)  # AAGUID: none
            + struct.pack(">H", len(credential.id))
            + credential.id
            + cbor2.dumps(cose_key)
        )
        auth_data = (
            hashlib.sha256(rp.encode()).digest()
            + bytes([self._flags(attested=True)])
            + struct.pack(">I", 0)
            + attested
        )
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        self.credentials.append(credential)
        return (
            json.dumps(
                {
                    "id": bytes_to_base64url(credential.id),
                    "rawId": bytes_to_base64url(credential.id),
                    "type": "public-key",
                    "authenticatorAttachment": "platform",
                    "clientExtensionResults": {},
                    "response": {
                        "clientDataJSON": bytes_to_base64url(client_data),
                        "attestationObject": bytes_to_base64url(attestation),
                        "transports": ["internal"],
                    },
                }
            ),
            credential,
        )

    def get(
        self,
        options_json: str,
        credential: Credential | None = None,
        *,
        origin: str = ORIGIN,
        rp_id: str | None = None,
        sign_count: int | None = None,
    ) -> str:
        """Answer request options with ``credential`` (by default the one it last created)."""
        options = json.loads(options_json)
        chosen = credential or self.credentials[-1]
        if sign_count is None:
            chosen.sign_count += self.counter_step
            sign_count = chosen.sign_count
        rp = rp_id or options.get("rpId") or chosen.rp_id
        auth_data = (
            hashlib.sha256(rp.encode()).digest()
            + bytes([self._flags()])
            + struct.pack(">I", sign_count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = chosen.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return json.dumps(
            {
                "id": bytes_to_base64url(chosen.id),
                "rawId": bytes_to_base64url(chosen.id),
                "type": "public-key",
                "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": bytes_to_base64url(client_data),
                    "authenticatorData": bytes_to_base64url(auth_data),
                    "signature": bytes_to_base64url(signature),
                    "userHandle": bytes_to_base64url(chosen.user_handle),
                },
            }
        )

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        data: dict[str, Any] = {
            "type": kind,
            "challenge": challenge,
            "origin": origin,
            "crossOrigin": False,
        }
        return json.dumps(data, separators=(",", ":")).encode()
