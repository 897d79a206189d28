"""Storage behind one small interface (:class:`EventStore`), with one module per adapter."""

from stratasync.storage.base import (
    AppendOutcome,
    ArchiveGap,
    EventBatch,
    EventStore,
    HeadMismatchError,
    SegmentCorruptError,
    SegmentInfo,
    SegmentNotFoundError,
    StorageError,
    StorageUnavailableError,
    StoredBatch,
    StoredEvent,
)

__all__ = [
    "AppendOutcome",
    "ArchiveGap",
    "EventBatch",
    "EventStore",
    "HeadMismatchError",
    "SegmentCorruptError",
    "SegmentInfo",
    "SegmentNotFoundError",
    "StorageError",
    "StorageUnavailableError",
    "StoredBatch",
    "StoredEvent",
]
