"""The LiveStore 0.4 ``sync-cf`` HTTP wire protocol: models, errors and envelope codecs (no I/O)."""

from stratasync.protocol.errors import (
    BackendIdMismatchError,
    InvalidRequestError,
    ProtocolError,
    ServerAheadError,
    UnknownError,
)
from stratasync.protocol.limits import (
    MAX_PULL_CHUNK_BYTES,
    MAX_PULL_EVENTS_PER_CHUNK,
    MAX_PUSH_EVENTS,
    MAX_REQUEST_BYTES,
)
from stratasync.protocol.messages import (
    Cursor,
    PingPayload,
    PullPayload,
    PushPayload,
    WireEvent,
)
from stratasync.protocol.rpc import RpcRequest, RpcTag

__all__ = [
    "MAX_PULL_CHUNK_BYTES",
    "MAX_PULL_EVENTS_PER_CHUNK",
    "MAX_PUSH_EVENTS",
    "MAX_REQUEST_BYTES",
    "BackendIdMismatchError",
    "Cursor",
    "InvalidRequestError",
    "PingPayload",
    "ProtocolError",
    "PullPayload",
    "PushPayload",
    "RpcRequest",
    "RpcTag",
    "ServerAheadError",
    "UnknownError",
    "WireEvent",
]
