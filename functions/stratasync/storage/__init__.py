"""Storage behind one small interface (:class:`EventStore`), with one module per adapter."""

from stratasync.storage.base import (
    EMPTY_LOG,
    AppendOutcome,
    ArchiveGap,
    EventBatch,
    EventStore,
    HeadMismatchError,
    LogHead,
    SegmentCorruptError,
    SegmentInfo,
    SegmentNotFoundError,
    StorageError,
    StorageUnavailableError,
    StoredBatch,
    StoredEvent,
)

__all__ = [
    "EMPTY_LOG",
    "AppendOutcome",
    "ArchiveGap",
    "EventBatch",
    "EventStore",
    "HeadMismatchError",
    "LogHead",
    "SegmentCorruptError",
    "SegmentInfo",
    "SegmentNotFoundError",
    "StorageError",
    "StorageUnavailableError",
    "StoredBatch",
    "StoredEvent",
]
