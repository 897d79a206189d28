"""The composition root: what the Lambda functions (and the dev server and CLI) are built from.

:func:`build_backend` and :func:`build_archiver` make the objects a set of :class:`Settings`
describes; :func:`get_backend` and :func:`get_archiver` cache them once per execution environment
(a warm Lambda keeps its clients and caches), the way the Lambda handler cookbook reaches its data
layer. Tests call the ``build_*`` functions with their own settings.

:func:`use_memory_tables` swaps DynamoDB for tables in this process's memory (``stratasync dev
--memory``, where every function runs in the dev server's own process).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stratasync.core.live import LiveSettings, LiveSync
from stratasync.core.sealing import ArchivePolicy, Archiver
from stratasync.core.service import SyncService
from stratasync.handlers.settings import Settings
from stratasync.handlers.trigger import ArchiveTrigger
from stratasync.storage.base import HotTierStorage
from stratasync.storage.dynamodb import DynamoDBStorage, make_client
from stratasync.storage.dynamodb_subscriptions import DynamoDBSubscriptionStorage
from stratasync.storage.s3 import S3SegmentStorage, make_s3_client
from stratasync.storage.segments import SegmentStorage, lost_store_guard
from stratasync.storage.subscriptions import SubscriptionStorage
from stratasync.storage.tiered import SegmentCache, TieredEventLog
from stratasync.storage.websocket_api import ApiGatewayConnections

if TYPE_CHECKING:  # only the dev server makes them: a Lambda's cold start need not import them
    from stratasync.storage.memory import InMemoryStorage, InMemorySubscriptionStorage


@dataclass(frozen=True)
class Backend:
    """What the sync function serves requests with."""

    settings: Settings
    service: SyncService
    #: The eventlog across DynamoDB and the S3 archive (None when no archive bucket is set).
    archive: TieredEventLog | None
    #: Invokes the archiver when a push probably completed a segment (None: no archiver function).
    archive_trigger: ArchiveTrigger | None
    #: The hot tier: DynamoDB (its client serves live sync's connections table too), or the
    #: memory tables (:func:`use_memory_tables`).
    hot: HotTierStorage


@dataclass(frozen=True)
class MemoryTables:
    """The eventlog and connections tables in this process's memory, in place of DynamoDB's."""

    eventlog: InMemoryStorage
    connections: InMemorySubscriptionStorage


_memory_tables: MemoryTables | None = None


def use_memory_tables(tables: MemoryTables | None) -> None:
    """Serve every function of this process from ``tables`` instead of the DynamoDB tables its
    settings name (None: DynamoDB again), and drop what was built before. Only for a process
    that runs every function itself (``stratasync dev --memory``): each Lambda execution
    environment would have tables of its own."""
    global _memory_tables
    _memory_tables = tables
    forget_warm_state()


def archive_policy(settings: Settings) -> ArchivePolicy:
    return ArchivePolicy(segment_events=settings.segment_events, segment_bytes=settings.segment_bytes)


def _hot_storage(settings: Settings, segments: SegmentStorage | None) -> HotTierStorage:
    """DynamoDB (or the memory tables); with an archive, a store is only created afresh in DynamoDB
    if the archive never knew it (:func:`~stratasync.storage.segments.lost_store_guard`: one S3
    GET per new store)."""
    if _memory_tables is not None:
        return _memory_tables.eventlog
    return DynamoDBStorage(
        settings.table_name,
        make_client(settings.dynamodb_endpoint),
        time_budget_seconds=settings.storage_time_budget_seconds,
        new_store_guard=lost_store_guard(segments) if segments is not None else None,
    )


def build_backend(settings: Settings) -> Backend:
    """The sync function's objects: DynamoDB, and the archive when a bucket is named."""
    archive = None
    segments = None
    if settings.archive_bucket:
        segments = S3SegmentStorage(
            settings.archive_bucket,
            # made on first use: most requests never touch S3, so a cold start need not pay for it
            client_factory=functools.partial(make_s3_client, settings.s3_endpoint),
            time_budget_seconds=settings.storage_time_budget_seconds,
        )
    hot = _hot_storage(settings, segments)
    if segments is not None:
        archive = TieredEventLog(hot, segments, SegmentCache(settings.segment_cache_bytes))
    trigger = (
        ArchiveTrigger.create(settings.archive_function, archive_policy(settings), settings.lambda_endpoint)
        if settings.archive_function
        else None
    )
    service = SyncService(
        archive if archive is not None else hot,
        pull_response_bytes=settings.pull_response_bytes,
        limits=settings.limits(),
        access=settings.access_control(),
    )
    return Backend(settings, service, archive, trigger, hot)


@dataclass(frozen=True)
class LiveBackend:
    """What the ws and fanout functions serve with: the sync backend and live sync over it."""

    backend: Backend
    live: LiveSync


def build_live(settings: Settings, backend: Backend | None = None) -> LiveBackend:
    """The ws and fanout functions' objects: the backend (``backend``, or one built from the
    settings), the connections table, ``@connections``."""
    missing = [
        name
        for name, value in (
            ("STRATASYNC_CONNECTIONS_TABLE", settings.connections_table),
            ("STRATASYNC_WS_ENDPOINT", settings.ws_endpoint),
        )
        if not value
    ]
    if missing:
        raise RuntimeError(f"stratasync is misconfigured: live sync needs {' and '.join(missing)}")
    if not settings.ws_enabled:
        raise RuntimeError(
            "stratasync is misconfigured: the WebSocket functions need STRATASYNC_WS_ENABLED=true"
            " (on the sync function too, so that no push commits an event too large for WebSocket)"
        )
    assert settings.connections_table is not None
    assert settings.ws_endpoint is not None
    backend = backend or build_backend(settings)
    subscriptions: SubscriptionStorage
    if _memory_tables is not None:
        subscriptions = _memory_tables.connections
    else:
        assert isinstance(backend.hot, DynamoDBStorage)
        subscriptions = DynamoDBSubscriptionStorage(
            settings.connections_table,
            settings.table_name,
            backend.hot.table.client,  # one DynamoDB client a process (boto3 clients are thread-safe)
            time_budget_seconds=settings.storage_time_budget_seconds,
        )
    live = LiveSync(
        backend.service,
        subscriptions,
        ApiGatewayConnections(settings.ws_endpoint),
        LiveSettings(push_fan_out=settings.push_fan_out, send_concurrency=settings.send_concurrency),
    )
    return LiveBackend(backend, live)


def build_archiver(settings: Settings) -> Archiver:
    """The archiver the settings describe (the same for the Lambda, the dev server and the CLI)."""
    if not settings.archive_bucket:
        raise RuntimeError("stratasync is misconfigured: STRATASYNC_ARCHIVE_BUCKET is required to archive")
    segments = S3SegmentStorage(
        settings.archive_bucket,
        make_s3_client(settings.s3_endpoint),
        time_budget_seconds=settings.storage_time_budget_seconds,
    )
    return Archiver(_hot_storage(settings, segments), segments, archive_policy(settings))


@functools.cache
def get_backend() -> Backend:
    """The sync function's backend, built from the environment once per execution environment."""
    return build_backend(Settings.from_env())


@functools.cache
def get_live() -> LiveBackend:
    """The ws and fanout functions' live sync (over :func:`get_backend`'s backend), built from the
    environment once per execution environment."""
    return build_live(Settings.from_env(), get_backend())


def get_publisher() -> LiveSync | None:
    """The sync function's live sync, when its pushes fan out themselves (``Settings.
    publishes_pushes``); None otherwise."""
    backend = get_backend()
    return get_live().live if backend.settings.publishes_pushes else None


def init_sync_function() -> Backend:
    """The sync function's cold start: its backend, and its live sync when its pushes fan out
    themselves (so that a misconfiguration shows at init, not after a commit)."""
    get_publisher()
    return get_backend()


@functools.cache
def get_archiver() -> Archiver:
    """The archiver function's archiver, built from the environment once per execution environment."""
    return build_archiver(Settings.from_env())


def forget_warm_state() -> None:
    """Drop what :func:`get_backend`, :func:`get_live` and :func:`get_archiver` built (the next
    call builds it again from the environment)."""
    for cached in (get_backend, get_live, get_archiver):
        cached.cache_clear()


def after_snapshot_restore() -> None:
    """What must not be shared by execution environments restored from one SnapStart snapshot
    (a snapshot can live far longer than a warm container):

    * the ``random`` state (retry jitter would be the same in all of them): reseeded;
    * the auth secret and the JWKS keys read at init (rotated since): the sync function's access
      control is built again, which reads them again.

    Connections need no care: botocore opens new ones when a pooled one turns out dead, and the
    storage adapters retry that. ``uuid4`` and ``secrets`` read the OS's randomness.
    """
    random.seed()
    if get_backend.cache_info().currsize:  # live sync serves with the same backend
        backend = get_backend()
        backend.service.access = backend.settings.access_control()


def register_snapshot_hooks() -> None:
    """Register :func:`after_snapshot_restore` with the Lambda runtime's SnapStart hooks, where
    the runtime has them (``snapshot_restore_py``, Python 3.12 and later); elsewhere nothing."""
    try:
        from snapshot_restore_py import register_after_restore  # type: ignore[import-not-found]
    except ImportError:
        return
    register_after_restore(after_snapshot_restore)
