"""In-memory adapters: an :class:`EventLogStorage` and a :class:`SegmentStorage`, for tests and as the
reference behaviour."""

from __future__ import annotations

import bisect
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote, urlsplit

from stratasync.storage.base import (
    EMPTY_LOG,
    AppendOutcome,
    ArchiveGap,
    BackendChangedError,
    EventBatch,
    HeadMismatchError,
    HotTierStorage,
    LogHead,
    SegmentInfo,
    SegmentNotFoundError,
    StorageError,
    StoredBatch,
    StoredEvent,
)
from stratasync.storage.segments import PresignedUrlRefusedError, SegmentStorage
from stratasync.storage.subscriptions import (
    Connection,
    Handoff,
    StoreListeners,
    Subscription,
    SubscriptionKey,
    SubscriptionStatus,
    SubscriptionStorage,
)


@dataclass
class _CommitRecord:
    """What the in-memory adapter keeps per committed batch, for good (``events`` None: retired)."""

    parent_seq_num: int
    last_seq_num: int
    last_position: int
    digest: str
    created_at: str
    events: Sequence[tuple[int, str]] | None

    def stored(self) -> StoredBatch:
        assert self.events is not None
        first = self.last_position - len(self.events) + 1
        return StoredBatch(
            parent_seq_num=self.parent_seq_num,
            last_seq_num=self.last_seq_num,
            created_at=self.created_at,
            events=[
                StoredEvent(seq_num, event_json, self.created_at, first + offset)
                for offset, (seq_num, event_json) in enumerate(self.events)
            ],
        )


@dataclass
class _StoreState:
    backend_id: str
    #: Every commit record, by parent seqNum, in commit order (retired ones included).
    records: dict[int, _CommitRecord] = field(default_factory=dict)
    parents: list[int] = field(default_factory=list)
    #: Index into ``parents`` of the oldest live (not retired) batch.
    first_live: int = 0
    head: LogHead = EMPTY_LOG
    #: Segment index by parent seqNum.
    segments: dict[int, SegmentInfo] = field(default_factory=dict)


class InMemoryStorage(HotTierStorage):
    """Keeps every store in a dict guarded by one lock.

    ``on_commit(store_id, parent_seq_num)``: called for every batch committed, under that lock (so
    in commit order, and before the commit can be read): what a DynamoDB stream records of the
    commit records (the dev server's ``--memory`` feeds its fan-out with it). It must not block
    and must not raise.
    """

    def __init__(self, on_commit: Callable[[str, int], None] | None = None) -> None:
        self._stores: dict[str, _StoreState] = {}
        self._lock = threading.Lock()
        self.on_commit = on_commit

    def _state(self, store_id: str) -> _StoreState:
        with self._lock:
            state = self._stores.get(store_id)
            if state is None:
                state = self._stores[store_id] = _StoreState(backend_id=uuid.uuid4().hex)
            return state

    def backend_id(self, store_id: str) -> str:
        return self._state(store_id).backend_id

    def log_head(self, store_id: str) -> LogHead:
        state = self._state(store_id)
        with self._lock:
            return state.head

    def append(self, store_id: str, batch: EventBatch) -> AppendOutcome:
        state = self._state(store_id)
        with self._lock:
            if batch.backend_id is not None and batch.backend_id != state.backend_id:
                raise BackendChangedError(store_id, batch.backend_id, state.backend_id)
            parent = batch.parent_seq_num
            existing = state.records.get(parent)
            if existing is not None:
                if existing.digest == batch.digest:
                    return AppendOutcome.ALREADY_COMMITTED
                raise HeadMismatchError(head=state.head.seq_num, parent=parent)
            if parent != state.head.seq_num:
                raise HeadMismatchError(head=state.head.seq_num, parent=parent)
            position = state.head.events + len(batch.events)
            state.records[parent] = _CommitRecord(
                parent, batch.last_seq_num, position, batch.digest, batch.created_at, list(batch.events)
            )
            state.parents.append(parent)
            state.head = LogHead(batch.last_seq_num, position)
            if self.on_commit is not None:
                self.on_commit(store_id, parent)
            return AppendOutcome.COMMITTED

    def read_hot(self, store_id: str, after: int) -> Iterator[StoredBatch | ArchiveGap]:
        state = self._state(store_id)
        with self._lock:
            # The batch holding the first event after the cursor has the largest parent <= after.
            index = bisect.bisect_right(state.parents, after) - 1
            if index < 0 or state.records[state.parents[index]].last_seq_num <= after:
                return  # an empty store, or the cursor is at (or past) the head
            if index < state.first_live:
                yield ArchiveGap(self._archived_through(store_id, state))
                return
            records = [state.records[parent] for parent in state.parents[index:]]
        for record in records:
            if record.events is None:  # retired while we read
                yield ArchiveGap(self._archived_through(store_id, state))
                return
            yield record.stored()

    def _archived_through(self, store_id: str, state: _StoreState) -> int:
        if not state.segments:
            raise StorageError(f"store {store_id!r}: a batch is retired but no segment is indexed")
        return state.segments[max(state.segments)].last_seq_num

    def hot_batches(self, store_id: str, from_parent: int) -> Iterator[StoredBatch]:
        state = self._state(store_id)
        with self._lock:
            start = max(bisect.bisect_left(state.parents, from_parent), state.first_live)
            records = [state.records[parent] for parent in state.parents[start:]]
        for record in records:
            if record.events is None:
                return
            yield record.stored()

    def retire_archived(self, store_id: str, segment: SegmentInfo) -> int:
        state = self._state(store_id)
        retired = 0
        with self._lock:
            while state.first_live < len(state.parents):
                record = state.records[state.parents[state.first_live]]
                if record.last_seq_num > segment.last_seq_num:
                    break
                if state.first_live == len(state.parents) - 1:
                    raise StorageError(f"store {store_id!r}: refusing to archive the newest batch")
                record.events = None
                state.first_live += 1
                retired += 1
        return retired

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

    @contextmanager
    def commit_check(self, store_id: str, parent_seq_num: int) -> Iterator[bool]:
        """Hold the log's lock (no append can happen meanwhile) and say whether a batch was
        committed on ``parent_seq_num``: the in-memory form of a ConditionCheck on a commit record."""
        state = self._state(store_id)
        with self._lock:
            yield parent_seq_num in state.records


class InMemorySegmentStorage(SegmentStorage):
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


def _now_seconds() -> float:
    return time.time()


class InMemorySubscriptionStorage(SubscriptionStorage):
    """Connections and subscriptions in dicts guarded by one lock; :meth:`go_live` checks the
    head of an :class:`InMemoryStorage` under that storage's lock (its transaction)."""

    def __init__(self, eventlog: InMemoryStorage, clock: Callable[[], float] = _now_seconds) -> None:
        self.eventlog = eventlog
        self._clock = clock
        self._connections: dict[str, Connection] = {}
        self._subscriptions: dict[SubscriptionKey, tuple[Subscription, int]] = {}
        self._lock = threading.Lock()

    def _alive(self, expires_at: int) -> bool:
        return expires_at >= self._clock()

    def _get(self, key: SubscriptionKey) -> Subscription | None:
        found = self._subscriptions.get(key)
        return found[0] if found is not None and self._alive(found[1]) else None

    def put_connection(self, connection: Connection) -> None:
        with self._lock:
            self._connections[connection.connection_id] = connection

    def connection(self, connection_id: str) -> Connection | None:
        with self._lock:
            found = self._connections.get(connection_id)
        return found if found is not None and self._alive(found.expires_at) else None

    def remove_connection(self, connection_id: str, store_id: str) -> None:
        with self._lock:
            self._connections.pop(connection_id, None)
            for key in [key for key in self._subscriptions if key.connection_id == connection_id]:
                del self._subscriptions[key]

    def listeners(self, store_id: str) -> StoreListeners:
        with self._lock:
            connections = [
                connection
                for connection in self._connections.values()
                if connection.store_id == store_id and self._alive(connection.expires_at)
            ]
            subscriptions = [
                subscription
                for key, (subscription, expires_at) in sorted(self._subscriptions.items())
                if key.store_id == store_id and self._alive(expires_at)
            ]
        return StoreListeners(connections, subscriptions)

    def open_subscription(
        self, key: SubscriptionKey, sent_seq: int, lease_until_ms: int, expires_at: int
    ) -> bool:
        with self._lock:
            if self._get(key) is not None:
                return False
            subscription = Subscription(
                key, SubscriptionStatus.CATCHUP, sent_seq, lease_until_ms=lease_until_ms
            )
            self._subscriptions[key] = (subscription, expires_at)
            return True

    def go_live(self, key: SubscriptionKey, sent_seq: int) -> Handoff:
        with self.eventlog.commit_check(key.store_id, sent_seq) as committed, self._lock:
            current = self._get(key)
            if current is None or current.status is not SubscriptionStatus.CATCHUP:
                return Handoff.GONE
            if committed:
                return Handoff.HEAD_MOVED
            live = Subscription(key, SubscriptionStatus.LIVE, sent_seq)
            self._subscriptions[key] = (live, self._subscriptions[key][1])
            return Handoff.LIVE

    def claim(self, key: SubscriptionKey, sent_seq: int, target: int, until_ms: int) -> bool:
        with self._lock:
            current = self._get(key)
            if (
                current is None
                or current.status is not SubscriptionStatus.LIVE
                or current.sent_seq != sent_seq
                or current.sending is not None
            ):
                return False
            claimed = Subscription(
                key, SubscriptionStatus.LIVE, sent_seq, sending=target, sending_until_ms=until_ms
            )
            self._subscriptions[key] = (claimed, self._subscriptions[key][1])
            return True

    def release(self, key: SubscriptionKey, target: int) -> bool:
        with self._lock:
            current = self._get(key)
            if current is None or current.sending != target:
                return False
            released = Subscription(key, SubscriptionStatus.LIVE, target)
            self._subscriptions[key] = (released, self._subscriptions[key][1])
            return True

    def interrupt(self, key: SubscriptionKey, expires_at: int) -> None:
        with self._lock:
            tombstone = Subscription(key, SubscriptionStatus.INTERRUPTED, 0)
            self._subscriptions[key] = (tombstone, expires_at)

    def remove_subscription(self, key: SubscriptionKey) -> None:
        with self._lock:
            self._subscriptions.pop(key, None)
