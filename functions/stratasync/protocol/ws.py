"""The sync-cf 0.4.0 WebSocket transport (LiveStore's ``makeWsSync``): pure codecs, no I/O.

**Connect.** ``<url>?storeId=<id>&payload=<..>&transport=ws``. ``payload`` is encoded twice: the
client URI-encodes the JSON text, then encodes the query; a query decoded once (API Gateway's
``queryStringParameters``) still holds the URI-encoded JSON (:func:`parse_connect_query`).

**Frames.** One JSON object per text frame, in both directions (Effect RPC's JSON serialization):

* client -> server: ``{"_tag":"Ping"}``, ``{"_tag":"Request","id","tag","payload",...}`` with tag
  ``SyncWsRpc.Pull`` (payload: storeId, payload, cursor, ``live``) or ``SyncWsRpc.Push`` (as HTTP),
  ``{"_tag":"Ack","requestId"}`` after each chunk, ``{"_tag":"Interrupt","requestId"}``;
* server -> client: ``{"_tag":"Pong"}``, ``{"_tag":"Chunk","requestId","values":[PullResponse]}``
  and ``{"_tag":"Exit","requestId","exit":...}`` (:mod:`stratasync.protocol.rpc`'s encoders).

**Sizes.** API Gateway caps a WebSocket frame at 32 KB and a message at 128 KB. The server keeps
every message it sends at most :data:`WS_CHUNK_BYTES` (envelope included), so one event can be
at most :data:`MAX_WS_EVENT_BYTES` long if a WebSocket client is ever to receive it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

from pydantic import StrictBool

from stratasync.protocol import jsontext
from stratasync.protocol.errors import InvalidRequestError, ProtocolError
from stratasync.protocol.messages import PullPayload, PushPayload
from stratasync.protocol.rpc import (
    EnvelopeError,
    PullPage,
    RpcRequest,
    encode_pull_chunk,
    parse_request,
    validate_payload,
)

#: API Gateway's largest WebSocket frame (a larger one closes the connection with 1009).
MAX_WS_FRAME_BYTES = 32 * 1024
#: API Gateway's largest WebSocket message (``PostToConnection`` refuses a larger one).
MAX_WS_MESSAGE_BYTES = 128 * 1024
#: The most bytes one message the server sends may hold, envelope included (below the 128 KB).
WS_CHUNK_BYTES = 120_000
#: Room kept in a chunk for its envelope and one item's wrapping (request id, pageInfo,
#: backendId, metadata): far more than they take (about 300 bytes).
_CHUNK_ENVELOPE_BYTES = 1_000
#: The largest encoded event a WebSocket client can be sent (one event in one chunk).
MAX_WS_EVENT_BYTES = WS_CHUNK_BYTES - _CHUNK_ENVELOPE_BYTES

PONG = '{"_tag":"Pong"}'


class WsRpcTag(StrEnum):
    """The RPCs of LiveStore's ``SyncWsRpc`` group."""

    PULL = "SyncWsRpc.Pull"
    PUSH = "SyncWsRpc.Push"


class WsPullPayload(PullPayload):
    """``SyncWsRpc.Pull`` payload: the HTTP pull's, and whether to stay live after the stored events."""

    live: StrictBool


@dataclass(frozen=True)
class ConnectParams:
    """What a WebSocket connect request names: the store, and the app's payload (its auth token)."""

    store_id: str
    payload: Any


def parse_connect_query(query: Mapping[str, str] | None) -> ConnectParams:
    """The store id and payload of a connect request's query (decoded once, as API Gateway passes
    ``queryStringParameters``); :class:`InvalidRequestError` when it is not a sync-cf WS connect."""
    query = query or {}
    store_id = query.get("storeId")
    if not store_id:
        raise InvalidRequestError("the WebSocket URL needs a storeId query parameter")
    transport = query.get("transport")
    if transport != "ws":
        raise InvalidRequestError(f"the WebSocket URL needs transport=ws, got {transport!r}")
    payload: Any = None
    raw = query.get("payload")
    if raw is not None:
        try:
            payload = jsontext.loads(unquote(raw, errors="strict"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise InvalidRequestError("the payload query parameter is not URI-encoded JSON") from None
    return ConnectParams(store_id, payload)


@dataclass(frozen=True)
class ClientMessage:
    """One frame from a client: its ``_tag``, the request of a ``Request`` frame, and the
    ``requestId`` of an ``Ack`` or ``Interrupt``."""

    tag: str
    request: RpcRequest | None = None
    request_id: str | None = None


def route_key(text: str | bytes) -> str:
    """The API Gateway route a frame takes with route selection ``$request.body._tag``: the value of
    a top-level string ``_tag``, else ``$default`` (the dev server routes frames by this)."""
    try:
        message = jsontext.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return "$default"
    tag = message.get("_tag") if isinstance(message, dict) else None
    return tag if isinstance(tag, str) and tag else "$default"


def parse_client_message(text: str | bytes) -> ClientMessage:
    """Decode one client frame; :class:`EnvelopeError` if it is not an Effect-RPC message."""
    try:
        message = jsontext.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise EnvelopeError("the frame is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("_tag"), str):
        raise EnvelopeError("the frame is not an Effect-RPC message (an object with a string _tag)")
    tag = message["_tag"]
    if tag == "Request":
        return ClientMessage(tag, request=parse_request(text))
    if tag in ("Ack", "Interrupt"):
        request_id = message.get("requestId")
        if not isinstance(request_id, str):
            raise EnvelopeError(f"an Effect-RPC {tag} needs a string requestId")
        return ClientMessage(tag, request_id=request_id)
    return ClientMessage(tag)


def decode_ws_payload(request: RpcRequest) -> WsPullPayload | PushPayload:
    """The payload of a ``SyncWsRpc`` request, validated; :class:`InvalidRequestError` for another tag."""
    if request.tag == WsRpcTag.PULL:
        return validate_payload(request.tag, request.payload, WsPullPayload)
    if request.tag == WsRpcTag.PUSH:
        return validate_payload(request.tag, request.payload, PushPayload)
    known = ", ".join(tag.value for tag in WsRpcTag)
    raise InvalidRequestError(f"unknown RPC tag {request.tag!r}; this endpoint serves {known}")


def _exit(request_id: str, exit_value: dict[str, Any]) -> str:
    return jsontext.dumps({"_tag": "Exit", "requestId": request_id, "exit": exit_value})


def encode_exit_success(request_id: str, value: Any) -> str:
    """The ``Exit`` of an RPC that succeeded with ``value`` (a push: ``{}``)."""
    return _exit(request_id, {"_tag": "Success", "value": value})


def encode_exit_failure(request_id: str, error: ProtocolError) -> str:
    """The ``Exit`` of an RPC that failed with a typed protocol error (never a Die or a Defect)."""
    return _exit(request_id, {"_tag": "Failure", "cause": {"_tag": "Fail", "error": error.to_wire()}})


def encode_chunk(request_id: str, backend_id: str, page: PullPage) -> str:
    """One ``Chunk`` message of a pull (the same bytes as one chunk of an HTTP pull response)."""
    return encode_pull_chunk(request_id, backend_id, page)


def chunk_item_bytes() -> int:
    """The bytes of event items one chunk may carry (``page_bytes`` for
    :meth:`~stratasync.core.service.SyncService.pull`), so the chunk stays within
    :data:`WS_CHUNK_BYTES` whatever its request id, backend id and pageInfo."""
    return WS_CHUNK_BYTES - _CHUNK_ENVELOPE_BYTES
