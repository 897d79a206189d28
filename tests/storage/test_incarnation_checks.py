"""The incarnation checks of the sync core, on the in-memory adapter (the DynamoDB adapter's own,
with resets and delayed writes, are in tests/operations/test_incarnations.py)."""

from __future__ import annotations

import pytest

from stratasync.core.service import SyncService
from stratasync.protocol.errors import BackendIdMismatchError
from stratasync.protocol.messages import Cursor, PushPayload
from stratasync.storage import BackendChangedError, EventBatch
from stratasync.storage.memory import InMemoryStorage


def push(service: SyncService, seq: int) -> None:
    event = {
        "name": "x",
        "args": {},
        "seqNum": seq,
        "parentSeqNum": seq - 1,
        "clientId": "c",
        "sessionId": "s",
    }
    service.push(
        "s", PushPayload.model_validate({"storeId": "s", "batch": [event], "backendId": {"_tag": "None"}})
    )


def test_a_batch_checked_against_another_backend_id_is_refused() -> None:
    storage = InMemoryStorage()
    with pytest.raises(BackendChangedError) as changed:
        storage.append("s", EventBatch(0, [(1, "{}")], "t", backend_id="another"))
    assert changed.value.backend_id == storage.backend_id("s")
    assert storage.head("s") == 0


def test_a_cursor_past_the_head_is_told_to_start_over() -> None:
    """Only lost events put a cursor past the head (a restore loses what was never archived): the
    client's log and the backend's have parted, so it resets, as after a reset."""
    service = SyncService(InMemoryStorage())
    push(service, 1)
    push(service, 2)
    backend_id = service.store.backend_id("s")
    assert service.pull("s", Cursor(backendId=backend_id, eventSequenceNumber=2)).empty
    with pytest.raises(BackendIdMismatchError):
        service.pull("s", Cursor(backendId=backend_id, eventSequenceNumber=3))


def test_a_push_names_the_backend_id_it_was_checked_against() -> None:
    seen: list[str | None] = []

    class Recording(InMemoryStorage):
        def append(self, store_id: str, batch: EventBatch) -> object:  # type: ignore[override]
            seen.append(batch.backend_id)
            return super().append(store_id, batch)

    service = SyncService(Recording())
    push(service, 1)
    assert seen == [service.store.backend_id("s")]
    result = service.push(
        "s",
        PushPayload.model_validate(
            {
                "storeId": "s",
                "batch": [{"name": "x", "seqNum": 2, "parentSeqNum": 1, "clientId": "c", "sessionId": "s"}],
                "backendId": {"_tag": "None"},
            }
        ),
    )
    assert result.committed_at
