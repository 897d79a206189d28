"""Storage behind one small interface (:class:`EventStore`), with one module per adapter."""

from stratasync.storage.base import (
    AppendOutcome,
    EventBatch,
    EventStore,
    HeadMismatchError,
    StorageError,
    StorageUnavailableError,
    StoredEvent,
)

__all__ = [
    "AppendOutcome",
    "EventBatch",
    "EventStore",
    "HeadMismatchError",
    "StorageError",
    "StorageUnavailableError",
    "StoredEvent",
]
