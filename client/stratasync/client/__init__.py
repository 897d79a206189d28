"""The stratasync Python client: a local-first store that syncs with any sync-cf backend.

from stratasync.client import Schema, Table, Store, synced_event, sql
"""

from stratasync.client.localdb import LoggedEvent
from stratasync.client.schema import (
    Event,
    EventDef,
    Schema,
    Table,
    Write,
    client_only_event,
    sql,
    synced_event,
)
from stratasync.client.store import (
    MAX_SEQ_NUM,
    BackendReset,
    BackendResetError,
    MaterializerError,
    PushRefusedError,
    RetryPolicy,
    Store,
    Subscription,
    SyncError,
    UnknownEventError,
    open_store,
)
from stratasync.client.transport import PullPage, SyncHttpTransport, SyncTransport, TransportError

__all__ = [
    "MAX_SEQ_NUM",
    "BackendReset",
    "BackendResetError",
    "Event",
    "EventDef",
    "LoggedEvent",
    "MaterializerError",
    "PullPage",
    "PushRefusedError",
    "RetryPolicy",
    "Schema",
    "Store",
    "Subscription",
    "SyncError",
    "SyncHttpTransport",
    "SyncTransport",
    "Table",
    "TransportError",
    "UnknownEventError",
    "Write",
    "client_only_event",
    "open_store",
    "sql",
    "synced_event",
]
