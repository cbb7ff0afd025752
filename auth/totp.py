"""Second-factor primitives: TOTP codes, their secrets' encryption, recovery codes.

No state and no database here: :mod:`auth.mfa` holds the use cases. TOTP is RFC 6238 with
its defaults (HMAC-SHA1, 6 digits, 30-second steps), one step either side accepted for
clock drift. The matched *time step* is returned so the caller can claim it by
compare-and-set: a code is accepted once (RFC 6238 section 5.2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
from collections.abc import Sequence
from datetime import datetime

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
# 24 characters of 31 without look-alikes (no 0/o, 1/l/i): about 119 bits a code, past the
# 112 bits at which ASVS 5.0 6.5.2 allows a plain hash instead of a password hash.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_LENGTH = 24
_RECOVERY_GROUP = 6
_CIPHER_VERSION = "v1"


class SecretBox:
    """Encrypts TOTP secrets at rest with AES-256-GCM under a key of their own.

    The key is derived by HKDF-SHA256 from ``MFA_ENCRYPTION_KEY``; each secret gets a fresh
    96-bit nonce, and the owning user's id is authenticated data, so a ciphertext copied to
    another user's row does not decrypt. A database dump alone yields no usable secret.
    Opening tries ``MFA_ENCRYPTION_KEY``, then each of ``MFA_ENCRYPTION_PREVIOUS_KEYS`` (a
    rotation in progress); sealing always uses ``MFA_ENCRYPTION_KEY``.
    """

    def __init__(self, key_material: str, previous: Sequence[str] = ()) -> None:
        self._aead = _derive(key_material)
        self._previous = tuple(_derive(key) for key in previous)

    def seal(self, secret: str, *, user_id: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), user_id.encode())
        return f"{_CIPHER_VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str, *, user_id: str) -> str | None:
        """The secret, or ``None`` if it was sealed under no configured key or for another
        user."""
        for aead in (self._aead, *self._previous):
            opened = _open(aead, stored, user_id)
            if opened is not None:
                return opened
        return None

    def is_current(self, stored: str, *, user_id: str) -> bool:
        """Whether ``stored`` is sealed under ``MFA_ENCRYPTION_KEY`` itself."""
        return _open(self._aead, stored, user_id) is not None


def _derive(key_material: str) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"authgraph-mfa-secret-v1"
    ).derive(key_material.encode())
    return AESGCM(key)


def _open(aead: AESGCM, stored: str, user_id: str) -> str | None:
    version, _, body = stored.partition(":")
    if version != _CIPHER_VERSION:
        return None
    try:
        raw = base64.urlsafe_b64decode(body.encode())
        return aead.decrypt(raw[:12], raw[12:], user_id.encode()).decode()
    except (InvalidTag, ValueError):
        return None


def new_totp_secret() -> str:
    """160 random bits in base32, the length RFC 4226 recommends for HMAC-SHA1."""
    return pyotp.random_base32(32)


def time_step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code ``code`` is (now, or one step either side), or ``None``.

    The latest match wins, so a claim on it also refuses every older code. Every window is
    compared in constant time, whatever matched.
    """
    candidate = "".join(code.split())
    # isascii: str.isdigit() accepts other scripts' digits, which compare_digest refuses.
    if len(candidate) != DIGITS or not (candidate.isascii() and candidate.isdigit()):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = time_step(now)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), candidate):
            found = step
    return found


def otpauth_uri(secret: str, *, account: str, issuer: str) -> str:
    """The Key URI Format URI an authenticator app reads (issuer in the label and parameter)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_code_svg(uri: str) -> str:
    """The URI as a QR code, an SVG document (no image stack needed)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, xmldecl=False, svgns=True)
    return out.getvalue().decode()


def new_recovery_codes() -> list[str]:
    """Ten fresh codes from the CSPRNG, shown once, as ``xxxxxx-xxxxxx-xxxxxx-xxxxxx``."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        groups = [raw[i : i + _RECOVERY_GROUP] for i in range(0, _RECOVERY_LENGTH, _RECOVERY_GROUP)]
        codes.append("-".join(groups))
    return codes


def hash_recovery_code(code: str) -> str:
    """The stored form of a recovery code: SHA-256 of its normalised letters.

    A fast hash suffices: each code carries about 119 random bits (ASVS 5.0 6.5.2 asks a
    password hash only below 112), so no dump can be searched for one, unlike a password.
    """
    normalised = "".join(ch for ch in code.casefold() if ch.isalnum())
    return hashlib.sha256(b"authgraph-recovery:" + normalised.encode()).hexdigest()
