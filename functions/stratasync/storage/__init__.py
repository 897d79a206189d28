"""Storage behind one small interface (:class:`EventLogStorage`), with one module per adapter."""

from stratasync.storage.base import (
    EMPTY_LOG,
    AppendOutcome,
    ArchiveGap,
    EventBatch,
    EventLogStorage,
    HeadMismatchError,
    HotTierStorage,
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
    "EventLogStorage",
    "HeadMismatchError",
    "HotTierStorage",
    "LogHead",
    "SegmentCorruptError",
    "SegmentInfo",
    "SegmentNotFoundError",
    "StorageError",
    "StorageUnavailableError",
    "StoredBatch",
    "StoredEvent",
]
