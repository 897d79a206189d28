"""One HTTP request in, one protocol response out: envelope, routing, error mapping.

Transport-neutral: the Lambda handler and tests call :func:`handle_rpc` with the raw body and
query parameters. Every failure a client can cause becomes a protocol error inside an HTTP 200
(the LiveStore client reads the body, not the status) or, when the body is not an RPC request
at all, an Effect-RPC ``Defect`` with HTTP 400. Nothing a client sends raises out of here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from stratasync.auth.access import Action
from stratasync.core.service import PullResult, PushResult, SyncService
from stratasync.protocol.errors import (
    InvalidRequestError,
    ProtocolError,
    StorageUnavailableError,
    UnknownError,
)
from stratasync.protocol.messages import PingPayload, PullPayload, PushPayload
from stratasync.protocol.rpc import (
    EnvelopeError,
    RpcTag,
    encode_defect,
    encode_failure,
    encode_pull_stream,
    encode_success,
    parse_request,
)
from stratasync.storage.base import StorageError
from stratasync.storage.base import StorageUnavailableError as StorageBusy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RpcResponse:
    """What to send back, and what happened (for logs and metrics)."""

    status: int
    body: str
    rpc: RpcTag | None = None
    store_id: str | None = None
    error: ProtocolError | None = None
    push: PushResult | None = None
    pull: PullResult | None = None


def _store_id(payload_store_id: str, query_store_id: str | None, header_store_id: str | None) -> str:
    for source, value in (("query parameter storeId", query_store_id), ("header", header_store_id)):
        if value is not None and value != payload_store_id:
            raise InvalidRequestError(
                f"storeId {payload_store_id!r} in the payload differs from {value!r} in the {source}"
            )
    return payload_store_id


def handle_rpc(
    service: SyncService,
    body: bytes,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> RpcResponse:
    """Answer one sync-cf HTTP request (``query``/``headers`` keys: lower-case header names)."""
    try:
        request = parse_request(body)
    except EnvelopeError as error:
        return RpcResponse(status=400, body=encode_defect(str(error)))
    query = query or {}
    headers = headers or {}
    rpc: RpcTag | None = None
    store_id: str | None = None
    try:
        rpc = request.rpc
        service.limits.check_body(len(body))
        payload = request.decode_payload()
        store_id = _store_id(payload.storeId, query.get("storeId"), headers.get("x-livestore-store-id"))
        service.limits.check_store_id(store_id)
        action = Action.PUSH if isinstance(payload, PushPayload) else Action.READ
        claims = service.access.claims_for(payload.payload, headers, store_id, action)
        hooks = service.access.hooks
        if isinstance(payload, PushPayload) and hooks.on_push is not None:
            hooks.on_push(claims, store_id, payload.batch)
        if isinstance(payload, PullPayload) and hooks.on_pull is not None:
            hooks.on_pull(claims, store_id, payload.cursor_value)
        if isinstance(payload, PushPayload):
            pushed = service.push(store_id, payload)
            return RpcResponse(200, encode_success(request.id, {}), rpc, store_id, push=pushed)
        if isinstance(payload, PullPayload):
            pulled = service.pull(store_id, payload.cursor_value)
            body_text = encode_pull_stream(request.id, pulled.backend_id, pulled.chunks)
            return RpcResponse(200, body_text, rpc, store_id, pull=pulled)
        assert isinstance(payload, PingPayload)
        return RpcResponse(200, encode_success(request.id, {"_tag": "SyncMessage.Pong"}), rpc, store_id)
    except ProtocolError as error:
        failure: ProtocolError = error
    except StorageBusy as error:
        failure = StorageUnavailableError(str(error))
    except StorageError as error:
        logger.exception("storage error")
        failure = UnknownError(f"storage error: {error}", note="the backend could not serve this request")
    except Exception as error:  # the last line of defence: never an unhandled exception
        logger.exception("unexpected error")
        failure = UnknownError(f"internal error: {type(error).__name__}", note="a bug in stratasync")
    return RpcResponse(200, encode_failure(request.id, failure), rpc, store_id, error=failure)
