"""The stratasync Python client: a local-first store that syncs with any sync-cf backend.

from stratasync.client import EventArgs, Schema, Store, Table, col, synced_event

Every public name is documented in docs/python-client.md.
"""

from stratasync.client import columns as col
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
from stratasync.client.isodate import IsoDateTime
from stratasync.client.localdb import Row
from stratasync.client.query import Query, QueryLike, Sql, Table, TableRow, Write, sql
from stratasync.client.rebase import BackendReset, BackendResetPolicy, UnknownEventPolicy
from stratasync.client.retry import RetryPolicy
from stratasync.client.schema import (
    Event,
    EventArgs,
    EventDef,
    Materializer,
    Schema,
    client_only_event,
    synced_event,
)
from stratasync.client.store import MAX_SEQ_NUM, Store, StoreStatus, open_store
from stratasync.client.subscriptions import Deliver, Inbox, Subscription
from stratasync.client.transport import LiveState, PullPage, SyncHttpTransport, SyncTransport
from stratasync.client.writes import Delete, Insert, Update
from stratasync.client.wstransport import SyncWsTransport

__all__ = [
    "MAX_SEQ_NUM",
    "BackendIdMismatchError",
    "BackendReset",
    "BackendResetError",
    "BackendResetPolicy",
    "BackendUnavailableError",
    "Delete",
    "Deliver",
    "Event",
    "EventArgs",
    "EventDef",
    "ForbiddenError",
    "Inbox",
    "Insert",
    "InvalidRequestError",
    "IsoDateTime",
    "LiveState",
    "LoggedEvent",
    "Materializer",
    "MaterializerError",
    "ProtocolError",
    "PullPage",
    "PushRefusedError",
    "Query",
    "QueryLike",
    "RetryPolicy",
    "Row",
    "Schema",
    "SegmentChecksumError",
    "ServerAheadError",
    "Sql",
    "Store",
    "StoreStatus",
    "StratasyncError",
    "Subscription",
    "SyncError",
    "SyncHttpTransport",
    "SyncTransport",
    "SyncWsTransport",
    "Table",
    "TableRow",
    "TransportError",
    "UnauthorizedError",
    "UnknownError",
    "UnknownEventError",
    "UnknownEventPolicy",
    "Update",
    "Write",
    "client_only_event",
    "col",
    "open_store",
    "sql",
    "synced_event",
]
