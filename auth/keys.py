"""Signing keys: the key ring that signs and verifies access tokens, and its rotation rules.

Asymmetric keys (ES256) live in the database behind :class:`auth.ports.SigningKeyStore`:
a public JWK in clear, the private key encrypted with a key derived from
``KEY_ENCRYPTION_KEY`` (AES-GCM, the ``kid`` as associated data), and a state:

- ``standby``: generated, published in the JWKS, not yet signing;
- ``current``: the one key that signs (the store allows exactly one);
- ``retired``: no longer signing; published (and its tokens accepted) until
  ``published_until``: the longest a token it signed can live after a normal rotation, or at
  once after an emergency ``retire``.

Each process keeps the key set in memory (:class:`KeyRing`): it is read from the store at
start, every ``KEY_REFRESH_SECONDS``, and at once when a token names a ``kid`` the set does not
know, at most once per :data:`UNKNOWN_KID_REFETCH_SECONDS` so forged kids cannot hammer the
database. A request never reads keys itself.

``HS256`` keys (``JWT_SECRET`` and ``JWT_PREVIOUS_SECRETS``) come from the settings and are
never published. With ``JWT_ALGORITHM=HS256`` they sign and verify as before. With an
asymmetric algorithm they verify only tokens issued before the first asymmetric key became
current (an installation upgraded from HS256 keeps its sessions until their access tokens
expire), and only tokens no longer-lived than ``ACCESS_TOKEN_TTL_SECONDS``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jose import jwk
from jose.backends.base import Key

from auth.errors import ConfigurationError
from auth.ports import NewKey, SigningKeyRecord, SigningKeyStore

log = logging.getLogger("authgraph.keys")

KeyState = Literal["standby", "current", "retired"]
ASYMMETRIC_ALGORITHMS = ("ES256",)
SYMMETRIC_ALGORITHM = "HS256"
ALGORITHMS = (*ASYMMETRIC_ALGORITHMS, SYMMETRIC_ALGORITHM)
# The fastest a process re-reads the store for a kid it does not know.
UNKNOWN_KID_REFETCH_SECONDS = 1.0
_ENCRYPTION_INFO = b"authgraph signing-key encryption v1"
_ENCRYPTED_PREFIX = "v1."


class KeyRuleError(Exception):
    """A key command the rotation rules refuse; the message says why."""


def legacy_key_id(secret: str) -> str:
    """The ``kid`` of an HS256 secret: short, not reversible, stable across versions."""
    return hashlib.sha256(b"authgraph-kid:" + secret.encode()).hexdigest()[:16]


# -- private keys at rest ----------------------------------------------------------------------


class KeyEncryption:
    """Encrypts private keys with AES-256-GCM under a key derived from ``KEY_ENCRYPTION_KEY``.

    The ``kid`` is the associated data: a ciphertext moved to another row does not decrypt.
    Decryption tries ``KEY_ENCRYPTION_KEY``, then each of ``KEY_ENCRYPTION_PREVIOUS_KEYS``
    (a rotation in progress); encryption always uses ``KEY_ENCRYPTION_KEY``.
    """

    def __init__(self, key_encryption_key: str, previous: Sequence[str] = ()) -> None:
        self._aead = _derive(key_encryption_key)
        self._previous = tuple(_derive(key) for key in previous)

    def encrypt(self, kid: str, plaintext: bytes) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext, kid.encode())
        return _ENCRYPTED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, kid: str, stored: str) -> bytes:
        """The private key, or :class:`ConfigurationError` if no configured key opens it."""
        for aead in (self._aead, *self._previous):
            opened = _open(aead, kid, stored)
            if opened is not None:
                return opened
        if self._previous:
            raise ConfigurationError(
                f"neither KEY_ENCRYPTION_KEY nor KEY_ENCRYPTION_PREVIOUS_KEYS can decrypt the "
                f"private key of signing key {kid}: add the key it was encrypted with to "
                "KEY_ENCRYPTION_PREVIOUS_KEYS."
            )
        raise ConfigurationError(
            f"KEY_ENCRYPTION_KEY cannot decrypt the private key of signing key {kid}: "
            "it is not the key these were encrypted with (during a rotation, the old one "
            "goes in KEY_ENCRYPTION_PREVIOUS_KEYS)."
        )

    def is_current(self, kid: str, stored: str) -> bool:
        """Whether ``stored`` is encrypted under ``KEY_ENCRYPTION_KEY`` itself."""
        return _open(self._aead, kid, stored) is not None


def _derive(key_encryption_key: str) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_ENCRYPTION_INFO).derive(
        key_encryption_key.encode()
    )
    return AESGCM(derived)


def _open(aead: AESGCM, kid: str, stored: str) -> bytes | None:
    if not stored.startswith(_ENCRYPTED_PREFIX):
        return None
    try:
        raw = base64.urlsafe_b64decode(stored[len(_ENCRYPTED_PREFIX) :])
        return aead.decrypt(raw[:12], raw[12:], kid.encode())
    except (InvalidTag, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Reencrypted:
    """What a re-encryption did: rows rewritten to the current key, rows already under it."""

    rewritten: int
    current: int


# How often one row is retried when other writers keep changing it under the command.
REENCRYPT_ATTEMPTS = 5


def generate_key(algorithm: str, encryption: KeyEncryption) -> NewKey:
    """A new P-256 key pair with a random ``kid``; the private half encrypted."""
    if algorithm != "ES256":
        raise KeyRuleError(f"cannot generate a key for {algorithm}")
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Hex: a kid never starts with "-", which a command line would read as an option.
    kid = secrets.token_hex(10)
    public = jwk.construct(pem.decode(), algorithm).public_key().to_dict()
    public_jwk = {**public, "kid": kid, "use": "sig", "alg": algorithm}
    return NewKey(
        kid=kid,
        algorithm=algorithm,
        public_jwk=json.dumps(public_jwk, sort_keys=True),
        private_key=encryption.encrypt(kid, pem),
    )


# -- the cached key set ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A key a token may name by ``kid``, pinned to one algorithm."""

    kid: str
    algorithm: str
    key: Key | str
    # Epoch seconds after which the key verifies nothing (None: no end yet).
    not_after: float | None = None
    # Legacy HS256 under an asymmetric algorithm: only tokens issued up to this instant.
    issued_before: float | None = None

    def accepts_at(self, now: float) -> bool:
        return self.not_after is None or now < self.not_after


@dataclass(frozen=True, slots=True)
class Signer:
    """What signs new tokens: the ``kid``, the algorithm and the private key (or secret)."""

    kid: str
    algorithm: str
    key: Key | str


@dataclass(frozen=True)
class KeySet:
    """One snapshot of the keys: what verifies, what signs, what is published."""

    verification: Mapping[str, VerificationKey]
    signer: Signer | None
    # The stored key that signs (asymmetric algorithms); its private half opens on use.
    current: SigningKeyRecord | None = None
    # (not_after or None, public JWK) of every asymmetric key that may be published.
    published: tuple[tuple[float | None, Mapping[str, Any]], ...] = ()

    def jwks(self, now: float) -> dict[str, Any]:
        """The JSON Web Key Set of the public keys still published at ``now``."""
        return {"keys": [dict(k) for until, k in self.published if until is None or now < until]}


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def is_published(record: SigningKeyRecord, now: datetime) -> bool:
    """Whether a stored key is in the JWKS (and verifies tokens) at ``now``."""
    if record.state != "retired":
        return True
    return record.published_until is not None and now < record.published_until


@dataclass(frozen=True)
class KeyRingConfig:
    """What the key ring needs from the settings."""

    algorithm: str
    secret: str
    previous_secrets: tuple[str, ...] = ()
    key_encryption_key: str | None = None
    previous_key_encryption_keys: tuple[str, ...] = ()
    ttl_seconds: int = 900
    leeway_seconds: int = 30
    refresh_seconds: float = 60.0

    @property
    def asymmetric(self) -> bool:
        return self.algorithm in ASYMMETRIC_ALGORITHMS

    @property
    def retirement_seconds(self) -> int:
        """How long a key stays published after it stops signing: every token it made expires."""
        return self.ttl_seconds + self.leeway_seconds


class KeyRing:
    """The process's keys, cached; refreshed on a schedule and on an unknown ``kid``."""

    def __init__(
        self,
        config: KeyRingConfig,
        store: SigningKeyStore,
        *,
        epoch_clock: Callable[[], float] = time.time,
        refetch_seconds: float = UNKNOWN_KID_REFETCH_SECONDS,
    ) -> None:
        self.config = config
        self.store = store
        self._epoch_clock = epoch_clock
        self._refetch_seconds = refetch_seconds
        self._encryption = (
            KeyEncryption(config.key_encryption_key, config.previous_key_encryption_keys)
            if config.key_encryption_key
            else None
        )
        self._lock = threading.Lock()
        self._last_unknown_refetch = -float("inf")
        # Private keys decrypted once per kid (only the current one is ever needed).
        self._private: dict[str, Key] = {}
        self._set = KeySet(verification=self._legacy_keys(None), signer=self._legacy_signer())

    # -- reading -------------------------------------------------------------------------------

    @property
    def key_set(self) -> KeySet:
        return self._set

    def find(self, kid: str) -> VerificationKey | None:
        """The key named ``kid``, refetching the set (rate bounded) when it is unknown."""
        key = self._set.verification.get(kid)
        if key is not None:
            return key
        now = self._epoch_clock()
        with self._lock:
            if now - self._last_unknown_refetch < self._refetch_seconds:
                return None
            self._last_unknown_refetch = now
        try:
            self.refresh()
        except Exception:
            # A database hiccup must not turn a bad token into a 500: the kid stays unknown.
            log.exception("refreshing the signing keys for an unknown kid failed")
            return None
        return self._set.verification.get(kid)

    def signer(self) -> Signer:
        """What signs new tokens; the current key's private half is decrypted on first use
        (a process that only verifies never needs ``KEY_ENCRYPTION_KEY``)."""
        current = self._set.current
        if current is not None:
            return Signer(current.kid, current.algorithm, self._private_key(current))
        signer = self._set.signer
        if signer is None:
            raise ConfigurationError(
                "no current signing key: run `authgraph migrate` (or `authgraph keys generate` "
                "and `authgraph keys activate KID`)"
            )
        return signer

    def refresh(self) -> None:
        """Read every key from the store and swap the cached set in one assignment."""
        records = tuple(self.store.all())
        verification: dict[str, VerificationKey] = {}
        published: list[tuple[float | None, Mapping[str, Any]]] = []
        signer: Signer | None = None
        current: SigningKeyRecord | None = None
        first_activation: float | None = None
        for record in records:
            if record.activated_at is not None:
                activated = record.activated_at.timestamp()
                first_activation = (
                    activated if first_activation is None else min(first_activation, activated)
                )
            if record.state == "retired" and record.published_until is None:
                continue
            public = json.loads(record.public_jwk)
            not_after = _epoch(record.published_until) if record.state == "retired" else None
            verification[record.kid] = VerificationKey(
                kid=record.kid,
                algorithm=record.algorithm,
                key=jwk.construct(public, record.algorithm),
                not_after=not_after,
            )
            published.append((not_after, public))
            if record.state == "current" and self.config.asymmetric:
                current = record
        legacy = self._legacy_keys(first_activation)
        for kid, key in legacy.items():
            verification.setdefault(kid, key)
        if not self.config.asymmetric:
            signer = self._legacy_signer()
        self._set = KeySet(
            verification=verification,
            signer=signer,
            current=current,
            published=tuple(published),
        )

    def _private_key(self, record: SigningKeyRecord) -> Key:
        known = self._private.get(record.kid)
        if known is not None:
            return known
        if self._encryption is None:
            raise ConfigurationError("KEY_ENCRYPTION_KEY is needed to sign with " + record.kid)
        pem = self._encryption.decrypt(record.kid, record.private_key)
        key = jwk.construct(pem.decode(), record.algorithm)
        self._private[record.kid] = key
        return key

    def _legacy_keys(self, first_activation: float | None) -> dict[str, VerificationKey]:
        config = self.config
        if config.asymmetric and first_activation is None:
            # No asymmetric key was ever current: nothing was signed with one yet, and the
            # HS256 tokens still in circulation are those of an installation being upgraded.
            issued_before = None
        elif config.asymmetric:
            issued_before = first_activation
        else:
            issued_before = None
        keys: dict[str, VerificationKey] = {}
        for secret in (*config.previous_secrets, config.secret):
            if not secret:
                continue
            kid = legacy_key_id(secret)
            keys[kid] = VerificationKey(
                kid=kid,
                algorithm=SYMMETRIC_ALGORITHM,
                key=secret,
                issued_before=issued_before,
                # Nothing signed before the switch outlives it by more than a token lifetime.
                not_after=(
                    None if issued_before is None else issued_before + config.retirement_seconds
                ),
            )
        return keys

    def _legacy_signer(self) -> Signer | None:
        if self.config.asymmetric:
            return None
        return Signer(legacy_key_id(self.config.secret), SYMMETRIC_ALGORITHM, self.config.secret)

    # -- rotation ------------------------------------------------------------------------------

    def _require_encryption(self) -> KeyEncryption:
        if self._encryption is None:
            raise ConfigurationError("KEY_ENCRYPTION_KEY is not set.")
        return self._encryption

    def ensure_current(self, now: datetime) -> str | None:
        """Create and activate the first key if no asymmetric key is current; its kid, or None.

        Called by ``authgraph migrate`` and by a development server's first start, never by a
        request. Of two processes racing here, the store lets one key become current.
        """
        if not self.config.asymmetric:
            return None
        if any(r.state == "current" for r in self.store.all()):
            return None
        new = generate_key(self.config.algorithm, self._require_encryption())
        created = self.store.add(new, state="current", now=now)
        self.refresh()
        return new.kid if created else None

    def generate(self, now: datetime) -> str:
        """A new standby key, published at once; its kid."""
        algorithm = self.config.algorithm if self.config.asymmetric else ASYMMETRIC_ALGORITHMS[0]
        new = generate_key(algorithm, self._require_encryption())
        self.store.add(new, state="standby", now=now)
        return new.kid

    def activate(self, kid: str, now: datetime) -> None:
        """Make a standby key current; the current one retires and stays published a while."""
        record = self._record(kid)
        if record.state != "standby":
            raise KeyRuleError(f"key {kid} is {record.state}; only a standby key can be activated")
        # Its private key must open before it may sign anything.
        self._private_key(record)
        until = now + timedelta(seconds=self.config.retirement_seconds)
        if not self.store.activate(kid, now=now, retired_until=until):
            raise KeyRuleError(f"key {kid} changed while it was being activated; try again")

    def retire(self, kid: str, now: datetime) -> None:
        """Emergency brake: the key leaves the JWKS now and its tokens are rejected from now on."""
        record = self._record(kid)
        if record.state == "current":
            raise KeyRuleError(
                f"key {kid} is current: activate another key first, then retire this one"
            )
        if not self.store.retire(kid, now=now):
            raise KeyRuleError(f"key {kid} changed while it was being retired; try again")

    def reencrypt(self) -> Reencrypted:
        """Rewrite every private key still under a previous ``KEY_ENCRYPTION_KEY`` to the
        current one; idempotent.

        Every key must open first (else :class:`ConfigurationError` naming the setting, and
        nothing is rewritten). Each row is replaced by compare-and-set on the ciphertext read:
        a row another process rewrote meanwhile is read again, never overwritten blindly.
        """
        encryption = self._require_encryption()
        records = self.store.all()
        for record in records:
            encryption.decrypt(record.kid, record.private_key)
        rewritten = current = 0
        for record in records:
            kid, stored = record.kid, record.private_key
            for _ in range(REENCRYPT_ATTEMPTS):
                if encryption.is_current(kid, stored):
                    current += 1
                    break
                fresh = encryption.encrypt(kid, encryption.decrypt(kid, stored))
                if self.store.replace_private_key(kid, old=stored, new=fresh):
                    rewritten += 1
                    break
                stored = self._record(kid).private_key
            else:
                raise KeyRuleError(f"key {kid} kept changing while it was re-encrypted; try again")
        return Reencrypted(rewritten=rewritten, current=current)

    def _record(self, kid: str) -> SigningKeyRecord:
        for record in self.store.all():
            if record.kid == kid:
                return record
        raise KeyRuleError(f"no signing key {kid}")


# -- an in-memory store (the domain's tests, and a toolkit built without a database) ----------


@dataclass
class MemorySigningKey:
    kid: str
    algorithm: str
    public_jwk: str
    private_key: str
    state: str
    created_at: datetime
    activated_at: datetime | None = None
    retired_at: datetime | None = None
    published_until: datetime | None = None


class MemorySigningKeyStore:
    """:class:`auth.ports.SigningKeyStore` in a list, with the same one-current rule."""

    def __init__(self) -> None:
        self.keys: list[MemorySigningKey] = []
        self._lock = threading.Lock()

    def all(self) -> Sequence[SigningKeyRecord]:
        with self._lock:
            return [MemorySigningKey(**vars(k)) for k in self.keys]

    def add(self, key: NewKey, *, state: str, now: datetime) -> bool:
        with self._lock:
            if state == "current" and any(k.state == "current" for k in self.keys):
                return False
            self.keys.append(
                MemorySigningKey(
                    kid=key.kid,
                    algorithm=key.algorithm,
                    public_jwk=key.public_jwk,
                    private_key=key.private_key,
                    state=state,
                    created_at=now,
                    activated_at=now if state == "current" else None,
                )
            )
            return True

    def activate(self, kid: str, *, now: datetime, retired_until: datetime) -> bool:
        with self._lock:
            target = [k for k in self.keys if k.kid == kid and k.state == "standby"]
            if not target:
                return False
            for key in self.keys:
                if key.state == "current":
                    key.state, key.retired_at, key.published_until = "retired", now, retired_until
            target[0].state, target[0].activated_at = "current", now
            return True

    def replace_private_key(self, kid: str, *, old: str, new: str) -> bool:
        with self._lock:
            for key in self.keys:
                if key.kid == kid and key.private_key == old:
                    key.private_key = new
                    return True
            return False

    def retire(self, kid: str, *, now: datetime) -> bool:
        with self._lock:
            for key in self.keys:
                if key.kid == kid and key.state != "current":
                    key.state = "retired"
                    key.retired_at = key.retired_at or now
                    key.published_until = None
                    return True
            return False
