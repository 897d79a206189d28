"""The stratasync Python client: a local-first store that syncs with any sync-cf backend.

from stratasync.client import Schema, Table, Store, synced_event, sql
"""

from stratasync.client.errors import (
    BackendIdMismatchError,
    BackendResetError,
    BackendUnavailableError,
    ForbiddenError,
    InvalidRequestError,
    MaterializerError,
    ProtocolError,
    PushRefusedError,
    SegmentChecksumError,
    ServerAheadError,
    StratasyncError,
    SyncError,
    TransportError,
    UnauthorizedError,
    UnknownError,
    UnknownEventError,
)
from stratasync.client.events import LoggedEvent
from stratasync.client.rebase import BackendReset, BackendResetPolicy, UnknownEventPolicy
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
from stratasync.client.store import MAX_SEQ_NUM, Store, open_store
from stratasync.client.subscriptions import Subscription
from stratasync.client.sync import RetryPolicy
from stratasync.client.transport import PullPage, SyncHttpTransport, SyncTransport

__all__ = [
    "MAX_SEQ_NUM",
    "BackendIdMismatchError",
    "BackendReset",
    "BackendResetError",
    "BackendResetPolicy",
    "BackendUnavailableError",
    "Event",
    "EventDef",
    "ForbiddenError",
    "InvalidRequestError",
    "LoggedEvent",
    "MaterializerError",
    "ProtocolError",
    "PullPage",
    "PushRefusedError",
    "RetryPolicy",
    "Schema",
    "SegmentChecksumError",
    "ServerAheadError",
    "Store",
    "StratasyncError",
    "Subscription",
    "SyncError",
    "SyncHttpTransport",
    "SyncTransport",
    "Table",
    "TransportError",
    "UnauthorizedError",
    "UnknownError",
    "UnknownEventError",
    "UnknownEventPolicy",
    "Write",
    "client_only_event",
    "open_store",
    "sql",
    "synced_event",
]
