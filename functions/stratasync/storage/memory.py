"""An in-memory :class:`EventStore`, for tests and as the reference behaviour."""

from __future__ import annotations

import bisect
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from stratasync.storage.base import (
    AppendOutcome,
    EventBatch,
    EventStore,
    HeadMismatchError,
    StoredEvent,
)


@dataclass
class _StoreState:
    backend_id: str
    batches: list[EventBatch] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)

    @property
    def head(self) -> int:
        return self.batches[-1].last_seq_num if self.batches else 0


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
                return AppendOutcome.COMMITTED
            index = bisect.bisect_left(state.parents, parent)
            found = index < len(state.parents) and state.parents[index] == parent
            if found and state.batches[index].digest == batch.digest:
                return AppendOutcome.ALREADY_COMMITTED
            raise HeadMismatchError(head=state.head, parent=parent)

    def read(self, store_id: str, after: int) -> Iterator[StoredEvent]:
        state = self._state(store_id)
        with self._lock:
            # Batches whose last event is after the cursor; the first may start before it.
            start = max(bisect.bisect_right(state.parents, after) - 1, 0)
            batches = state.batches[start:]
        for batch in batches:
            for seq_num, event_json in batch.events:
                if seq_num > after:
                    yield StoredEvent(seq_num, event_json, batch.created_at)
