"""In-memory adapters: an :class:`EventStore` and a :class:`SegmentStore`, for tests and as the
reference behaviour."""

from __future__ import annotations

import bisect
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote, urlsplit

from stratasync.storage.base import (
    AppendOutcome,
    ArchiveGap,
    EventBatch,
    EventStore,
    HeadMismatchError,
    SegmentInfo,
    SegmentNotFoundError,
    StorageError,
    StoredBatch,
    StoredEvent,
)
from stratasync.storage.segments import PresignedUrlRefusedError, SegmentStore


@dataclass
class _StoreState:
    backend_id: str
    #: The hot batches (a suffix of the chain: archived ones leave from the front).
    batches: list[EventBatch] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    head: int = 0
    #: Segment index by parent seqNum.
    segments: dict[int, SegmentInfo] = field(default_factory=dict)


def _stored(batch: EventBatch) -> StoredBatch:
    return StoredBatch(
        parent_seq_num=batch.parent_seq_num,
        last_seq_num=batch.last_seq_num,
        created_at=batch.created_at,
        events=[StoredEvent(seq_num, event_json, batch.created_at) for seq_num, event_json in batch.events],
    )


class InMemoryEventStore(EventStore):
    """Keeps every store in a dict guarded by one lock."""

    def __init__(self) -> None:
        self._stores: dict[str, _StoreState] = {}
        self._lock = threading.Lock()

    def _state(self, store_id: str) -> _StoreState:
        with self._lock:
            state = self._stores.get(store_id)
            if state is None:
                state = self._stores[store_id] = _StoreState(backend_id=uuid.uuid4().hex)
            return state

    def backend_id(self, store_id: str) -> str:
        return self._state(store_id).backend_id

    def head(self, store_id: str) -> int:
        state = self._state(store_id)
        with self._lock:
            return state.head

    def append(self, store_id: str, batch: EventBatch) -> AppendOutcome:
        state = self._state(store_id)
        with self._lock:
            parent = batch.parent_seq_num
            if parent == state.head:
                state.batches.append(batch)
                state.parents.append(parent)
                state.head = batch.last_seq_num
                return AppendOutcome.COMMITTED
            index = bisect.bisect_left(state.parents, parent)
            found = index < len(state.parents) and state.parents[index] == parent
            if found and state.batches[index].digest == batch.digest:
                return AppendOutcome.ALREADY_COMMITTED
            raise HeadMismatchError(head=state.head, parent=parent)

    def read_hot(self, store_id: str, after: int) -> Iterator[StoredBatch | ArchiveGap]:
        state = self._state(store_id)
        with self._lock:
            # Batches whose last event is after the cursor; the first may start before it.
            start = max(bisect.bisect_right(state.parents, after) - 1, 0)
            batches = state.batches[start:]
        expected = after
        for batch in batches:
            if batch.last_seq_num <= expected:
                continue
            if batch.parent_seq_num > expected:
                yield ArchiveGap(batch.parent_seq_num)
                return
            yield _stored(batch)
            expected = batch.last_seq_num

    def hot_batches(self, store_id: str, from_parent: int) -> Iterator[StoredBatch]:
        state = self._state(store_id)
        with self._lock:
            batches = state.batches[bisect.bisect_left(state.parents, from_parent) :]
        for batch in batches:
            yield _stored(batch)

    def drop_archived(self, store_id: str, through: int) -> int:
        state = self._state(store_id)
        dropped = 0
        with self._lock:
            while state.batches and state.batches[0].last_seq_num <= through:
                if len(state.batches) == 1:
                    raise StorageError(f"store {store_id!r}: refusing to archive the newest batch")
                del state.batches[0], state.parents[0]
                dropped += 1
        return dropped

    def put_segment(self, store_id: str, segment: SegmentInfo) -> SegmentInfo:
        state = self._state(store_id)
        with self._lock:
            return state.segments.setdefault(segment.parent_seq_num, segment)

    def segments(self, store_id: str, after: int) -> Iterator[SegmentInfo]:
        state = self._state(store_id)
        with self._lock:
            ordered = sorted(state.segments.values(), key=lambda segment: segment.parent_seq_num)
        for segment in ordered:
            if segment.last_seq_num > after:
                yield segment

    def last_segment(self, store_id: str) -> SegmentInfo | None:
        state = self._state(store_id)
        with self._lock:
            return state.segments[max(state.segments)] if state.segments else None


class InMemorySegmentStore(SegmentStore):
    """Objects in a dict; presigned URLs ``memory://...`` carry an expiry and an HMAC signature,
    and :meth:`open_url` checks both, the way S3 checks a presigned GET."""

    def __init__(self, name: str = "segments") -> None:
        self.name = name
        self._objects: dict[str, tuple[bytes, dict[str, str]]] = {}
        self._lock = threading.Lock()
        self._secret = uuid.uuid4().bytes

    def put(self, key: str, body: bytes, *, sha256: str, metadata: Mapping[str, str]) -> None:
        if hashlib.sha256(body).hexdigest() != sha256:
            raise StorageError(f"segment {key!r}: body does not match its SHA-256 (BadDigest)")
        with self._lock:
            self._objects[key] = (bytes(body), dict(metadata))

    def get(self, key: str) -> bytes:
        with self._lock:
            found = self._objects.get(key)
        if found is None:
            raise SegmentNotFoundError(f"no segment {key!r}")
        return found[0]

    def metadata(self, key: str) -> dict[str, str]:
        with self._lock:
            found = self._objects.get(key)
        if found is None:
            raise SegmentNotFoundError(f"no segment {key!r}")
        return dict(found[1])

    def object_keys(self) -> list[str]:
        with self._lock:
            return sorted(self._objects)

    def presign_get(self, key: str, expires_in: int) -> str:
        expires = int(time.time()) + expires_in
        signature = self._sign(key, expires)
        return f"memory://{self.name}/{quote(key, safe='/')}?expires={expires}&signature={signature}"

    def open_url(self, url: str) -> bytes:
        """The object a presigned URL names; :class:`PresignedUrlRefusedError` if tampered or expired."""
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        key = unquote(parts.path.lstrip("/"))
        try:
            expires = int(query["expires"][0])
            signature = query["signature"][0]
        except (KeyError, ValueError):
            raise PresignedUrlRefusedError("not a presigned URL") from None
        if parts.scheme != "memory" or parts.netloc != self.name:
            raise PresignedUrlRefusedError("URL of another store")
        if not hmac.compare_digest(signature, self._sign(key, expires)):
            raise PresignedUrlRefusedError("signature does not match")
        if time.time() > expires:
            raise PresignedUrlRefusedError("URL expired")
        return self.get(key)

    def _sign(self, key: str, expires: int) -> str:
        return hmac.new(self._secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()
