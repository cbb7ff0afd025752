"""Persisted documents: trusted documents from a manifest and Apollo's automatic persisted queries.

A request names its GraphQL document in one of three ways, resolved here to the document's
text before anything parses it:

- ``query``: the text itself (an ad hoc document). With ``TRUSTED_DOCUMENTS_ONLY`` only a
  text that is in the manifest is accepted.
- ``documentId: "sha256:<hex>"`` (or a bare ``<hex>``): a trusted document, from the
  ``TRUSTED_DOCUMENTS`` manifest read at start-up. Unknown: 400 ``PERSISTED_DOCUMENT_NOT_FOUND``.
- ``extensions.persistedQuery {version: 1, sha256Hash}``: Apollo's automatic persisted
  queries. A hash without ``query`` that is not known answers ``PERSISTED_QUERY_NOT_FOUND``;
  the client resends it with the text, whose hash is checked, and the document is kept once
  it validates, in a store bounded in entries, bytes and registrations a minute.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from auth.errors import ConfigurationError
from graph.settings import Settings

SHA256_PREFIX = "sha256:"
_HEX = re.compile(r"[0-9a-f]{64}")
APOLLO_MANIFEST_FORMAT = "apollo-persisted-query-manifest"

DOCUMENT_NOT_FOUND = "PERSISTED_DOCUMENT_NOT_FOUND"
QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
TRUSTED_DOCUMENT_REQUIRED = "TRUSTED_DOCUMENT_REQUIRED"
BAD_REQUEST = "BAD_REQUEST"

K = TypeVar("K")
V = TypeVar("V")


def document_hash(text: str) -> str:
    """The lowercase hex SHA-256 of ``text``'s UTF-8: a persisted document's id."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DocumentRefused(Exception):
    """The request names a document it may not run; ``message`` and ``code`` are public."""

    def __init__(self, message: str, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class Lru(Generic[K, V]):
    """A least-recently-used map bounded in entries and, with ``size``, in total size.

    Not thread-safe: the event loop is its only user.
    """

    def __init__(
        self, max_entries: int, *, max_size: int = 0, size: Callable[[V], int] | None = None
    ) -> None:
        self.max_entries = max_entries
        self.max_size = max_size
        self._size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self.total_size = 0

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> bool:
        """Keep ``value``, evicting the least recently used; ``False`` if it alone is too big."""
        weight = self._size(value) if self._size is not None else 0
        if self.max_size and weight > self.max_size:
            return False
        old = self._entries.pop(key, None)
        if old is not None and self._size is not None:
            self.total_size -= self._size(old)
        self._entries[key] = value
        self.total_size += weight
        while len(self._entries) > self.max_entries or (
            self.max_size and self.total_size > self.max_size
        ):
            _, evicted = self._entries.popitem(last=False)
            if self._size is not None:
                self.total_size -= self._size(evicted)
        return True

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries


def load_manifest(path: str) -> dict[str, str]:
    """The trusted documents of the manifest at ``path``: ``{sha256 hex: text}``.

    Two formats: GraphQL Code Generator's ``persisted-documents.json`` (an object mapping
    each hash to its document) and ``@apollo/generate-persisted-query-manifest``'s
    (``{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body"}]}``).
    Every id must be the SHA-256 of its text: a manifest that says otherwise is refused at
    start-up, naming ``TRUSTED_DOCUMENTS``.
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"TRUSTED_DOCUMENTS {path!r} cannot be read: {exc}") from None
    except ValueError:
        raise ConfigurationError(f"TRUSTED_DOCUMENTS {path!r} is not JSON.") from None
    pairs: list[tuple[Any, Any]]
    if isinstance(raw, dict) and raw.get("format") == APOLLO_MANIFEST_FORMAT:
        operations = raw.get("operations")
        if not isinstance(operations, list) or not all(isinstance(o, dict) for o in operations):
            raise ConfigurationError(f"TRUSTED_DOCUMENTS {path!r}: operations must be a list.")
        pairs = [(o.get("id"), o.get("body")) for o in operations]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        raise ConfigurationError(
            f"TRUSTED_DOCUMENTS {path!r} must be a JSON object of sha256 hashes to documents."
        )
    documents: dict[str, str] = {}
    for key, text in pairs:
        digest = key.removeprefix(SHA256_PREFIX) if isinstance(key, str) else None
        if digest is None or not isinstance(text, str) or not _HEX.fullmatch(digest):
            raise ConfigurationError(
                f"TRUSTED_DOCUMENTS {path!r}: {key!r} is not a sha256 hex id of a document."
            )
        if document_hash(text) != digest:
            raise ConfigurationError(
                f"TRUSTED_DOCUMENTS {path!r}: {digest} is not the SHA-256 of its document."
            )
        documents[digest] = text
    return documents


class RegistrationRate:
    """At most ``per_minute`` registrations in any fixed minute; the clock is injectable."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._window = -1
        self._count = 0

    def allow(self) -> bool:
        window = int(self._clock() // 60)
        if window != self._window:
            self._window, self._count = window, 0
        if self._count >= self.per_minute:
            return False
        self._count += 1
        return True


@dataclass(frozen=True, slots=True)
class Named:
    """The document a request names: its text, and the APQ hash to keep it under, if any."""

    text: str
    kind: str  # "query", "trusted" or "persisted"
    register: str | None = None  # an APQ hash whose text the client just sent


class Documents:
    """The process's trusted documents and automatic persisted queries, and the policy."""

    def __init__(
        self,
        *,
        trusted: Mapping[str, str],
        trusted_only: bool,
        persisted_queries: bool,
        max_documents: int,
        max_bytes: int,
        registrations_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trusted = dict(trusted)
        self.trusted_only = trusted_only
        self.persisted_queries = persisted_queries
        self.persisted: Lru[str, str] = Lru(
            max_documents, max_size=max_bytes, size=lambda text: len(text.encode("utf-8"))
        )
        self.rate = RegistrationRate(registrations_per_minute, clock)

    @classmethod
    def from_settings(cls, settings: Settings) -> Documents:
        http = settings.http
        if http.trusted_documents_only and not http.trusted_documents:
            raise ConfigurationError(
                "TRUSTED_DOCUMENTS_ONLY=true needs TRUSTED_DOCUMENTS (the manifest's path)."
            )
        return cls(
            trusted=load_manifest(http.trusted_documents) if http.trusted_documents else {},
            trusted_only=http.trusted_documents_only,
            persisted_queries=http.persisted_queries,
            max_documents=http.persisted_query_max_documents,
            max_bytes=http.persisted_query_max_bytes,
            registrations_per_minute=http.persisted_query_registrations_per_minute,
        )

    def name(self, params: Mapping[str, Any]) -> Named | None:
        """The document ``params`` (a request's JSON body or query string) name.

        ``None`` when they name none in a way this module handles (no ``query``, or one
        that is not a string): the full pipeline gives its own answer. Raises
        :class:`DocumentRefused` for an unknown, mismatched or (trusted-only) untrusted one.
        """
        query = params.get("query")
        document_id = params.get("documentId")
        extensions = params.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        if document_id is not None:
            return self._trusted(document_id, query)
        if persisted is not None:
            return self._persisted(persisted, query)
        if not isinstance(query, str):
            return None
        if self.trusted_only and document_hash(query) not in self.trusted:
            raise DocumentRefused(
                "This API runs only its trusted documents: send the documentId of one.",
                TRUSTED_DOCUMENT_REQUIRED,
            )
        return Named(query, "query")

    def keep(self, digest: str, text: str) -> bool:
        """Keep an automatic persisted query that validated; ``False`` past the bounds."""
        if digest in self.persisted or not self.rate.allow():
            return False
        return self.persisted.put(digest, text)

    def _trusted(self, document_id: object, query: object) -> Named:
        if query is not None:
            raise DocumentRefused("Send either documentId or query, not both.", BAD_REQUEST)
        if not isinstance(document_id, str):
            raise DocumentRefused("documentId must be a string.", BAD_REQUEST)
        text = self.trusted.get(document_id.removeprefix(SHA256_PREFIX))
        if text is None:
            raise DocumentRefused("No trusted document has this documentId.", DOCUMENT_NOT_FOUND)
        return Named(text, "trusted")

    def _persisted(self, persisted: object, query: object) -> Named:
        if not self.persisted_queries:
            raise DocumentRefused("PersistedQueryNotSupported", QUERY_NOT_SUPPORTED)
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if (
            not isinstance(persisted, dict)
            or persisted.get("version") != 1
            or not isinstance(digest, str)
            or not _HEX.fullmatch(digest)
        ):
            raise DocumentRefused(
                "extensions.persistedQuery must be {version: 1, sha256Hash: <64 hex digits>}.",
                BAD_REQUEST,
            )
        if query is None:
            text = self.trusted.get(digest)
            if text is None and not self.trusted_only:
                text = self.persisted.get(digest)
            if text is None:
                raise DocumentRefused("PersistedQueryNotFound", QUERY_NOT_FOUND)
            return Named(text, "persisted")
        if not isinstance(query, str):
            raise DocumentRefused("query must be a string.", BAD_REQUEST)
        if document_hash(query) != digest:
            raise DocumentRefused("provided sha does not match query", HASH_MISMATCH)
        if digest in self.trusted:
            return Named(query, "trusted")
        if self.trusted_only:
            raise DocumentRefused(
                "This API runs only its trusted documents: send the documentId of one.",
                TRUSTED_DOCUMENT_REQUIRED,
            )
        return Named(query, "persisted", register=digest)
