"""One HTTP request in, one protocol response out: envelope, routing, error mapping.

Transport-neutral: the Lambda handler and tests call :func:`handle_rpc` with the raw body and
query parameters. Every failure a client can cause becomes a protocol error inside an HTTP 200
(the LiveStore client reads the body, not the status) or, when the body is not an RPC request
at all, an Effect-RPC ``Defect`` with HTTP 400. Nothing a client sends raises out of here.

**Pull responses.** LiveStore's HTTP client sends ONE request for a non-live pull and does not
follow ``pageInfo``, so the whole answer must fit in one response, which Lambda caps at 6 MB.
A pull response is gzip-compressed when the request accepts it (LiveStore's fetch and browsers
do), and capped by its size *on the wire* (:class:`PullBody`): the base64 of the gzip bytes, or
the text as the JSON string a Lambda proxy response carries it in. A response that the cap cuts
short ends with a page that says ``MoreKnown`` with the exact number of events left, never
``NoMore``, so the client pulls again from its new cursor.
"""

from __future__ import annotations

import json
import logging
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from stratasync.auth.access import Action
from stratasync.core.service import PullStream, PushResult, SyncService
from stratasync.protocol.errors import (
    BackendUnavailableError,
    InvalidRequestError,
    ProtocolError,
    UnknownError,
)
from stratasync.protocol.messages import PingPayload, PullPayload, PushPayload
from stratasync.protocol.rpc import (
    EnvelopeError,
    PullPage,
    RpcTag,
    encode_defect,
    encode_failure,
    encode_pull_chunk,
    encode_stream_exit,
    encode_success,
    parse_request,
)
from stratasync.storage.base import StorageError, StorageUnavailableError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PullSummary:
    """What one pull response carried."""

    events: int
    pages: int
    #: The size cap cut the response short (its last page says ``MoreKnown``).
    truncated: bool


@dataclass(frozen=True)
class RpcResponse:
    """What to send back, and what happened (for logs and metrics)."""

    status: int
    body: bytes
    rpc: RpcTag | None = None
    store_id: str | None = None
    error: ProtocolError | None = None
    push: PushResult | None = None
    pull: PullSummary | None = None
    #: ``"gzip"`` when :attr:`body` is gzip-compressed.
    content_encoding: str | None = None


class PullBody:
    """A pull response being written, gzip-compressed or not, measured as it goes on the wire.

    The wire size is what a Lambda proxy response carries: base64 of the gzip bytes, or the text
    as a JSON string (counted with ``ensure_ascii``, the larger of the two ways to escape it).
    """

    #: Room kept for the closing ``Exit`` message and the end of the stream.
    _TRAILER_BYTES = 200

    def __init__(self, *, gzip: bool, max_wire_bytes: int) -> None:
        self.max_wire_bytes = max_wire_bytes
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS) if gzip else None
        self._parts: list[bytes] = []
        self._bytes = 0
        self._wire = 0

    @property
    def content_encoding(self) -> str | None:
        return "gzip" if self._compressor is not None else None

    def try_write(self, text: str) -> bool:
        """Append ``text`` if the body stays within the cap; False (and nothing written) if not."""
        return self._append(text, force=False)

    def write(self, text: str) -> None:
        """Append ``text`` whatever the cap (the parts of a response that must be there)."""
        self._append(text, force=True)

    def _append(self, text: str, *, force: bool) -> bool:
        if self._compressor is not None:
            before = self._compressor.copy()
            data = self._compressor.compress(text.encode()) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
            size = self._bytes + len(data)
            wire = 4 * math.ceil(size / 3)
            if not force and wire + self._TRAILER_BYTES > self.max_wire_bytes:
                self._compressor = before
                return False
        else:
            data = text.encode()
            size = self._bytes + len(data)
            wire = self._wire + len(json.dumps(text)) - 2
            if not force and wire + self._TRAILER_BYTES > self.max_wire_bytes:
                return False
        self._parts.append(data)
        self._bytes, self._wire = size, wire
        return True

    def finish(self) -> bytes:
        if self._compressor is not None:
            self._parts.append(self._compressor.flush())
        return b"".join(self._parts)


def encode_pull_response(
    request_id: str, stream: PullStream, *, gzip: bool, max_wire_bytes: int
) -> tuple[bytes, str | None, PullSummary]:
    """The HTTP body of a pull: as many of the stream's pages as fit in ``max_wire_bytes``
    (always the first), then the ``Exit``; no pages: one empty ``NoMore`` page."""
    body = PullBody(gzip=gzip, max_wire_bytes=max_wire_bytes)
    events = pages = 0
    truncated = False
    try:
        for page in stream.pages:
            text = ("[" if pages == 0 else ",") + encode_pull_chunk(request_id, stream.backend_id, page)
            if pages == 0:
                body.write(text)
            elif not body.try_write(text):
                truncated = True
                break
            pages += 1
            events += len(page.items)
    finally:
        stream.close()
    if pages == 0:
        body.write("[" + encode_pull_chunk(request_id, stream.backend_id, PullPage((), 0)))
    body.write("," + encode_stream_exit(request_id) + "]")
    return body.finish(), body.content_encoding, PullSummary(events, max(pages, 1), truncated)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header admits gzip (``gzip`` or ``*`` with a q above 0)."""
    for token in (accept_encoding or "").split(","):
        coding, _, params = token.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        quality = params.strip().lower()
        if quality.startswith("q="):
            try:
                if float(quality[2:]) <= 0:
                    continue
            except ValueError:
                continue
        return True
    return False


def _store_id(payload_store_id: str, query_store_id: str | None, header_store_id: str | None) -> str:
    for source, value in (("query parameter storeId", query_store_id), ("header", header_store_id)):
        if value is not None and value != payload_store_id:
            raise InvalidRequestError(
                f"storeId {payload_store_id!r} in the payload differs from {value!r} in the {source}"
            )
    return payload_store_id


def admit(
    service: SyncService,
    payload: PingPayload | PushPayload | PullPayload,
    store_id: str,
    headers: Mapping[str, str],
) -> None:
    """Authenticate and authorize a request, and run the app's ``on_push`` / ``on_pull`` hooks (any
    transport); raises the protocol error that refuses it."""
    action = Action.PUSH if isinstance(payload, PushPayload) else Action.READ
    claims = service.access.claims_for(payload.payload, headers, store_id, action)
    hooks = service.access.hooks
    if isinstance(payload, PushPayload) and hooks.on_push is not None:
        hooks.on_push(claims, store_id, payload.batch)
    if isinstance(payload, PullPayload) and hooks.on_pull is not None:
        hooks.on_pull(claims, store_id, payload.cursor_value)


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
        return RpcResponse(status=400, body=encode_defect(str(error)).encode())
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
        admit(service, payload, store_id, headers)
        if isinstance(payload, PushPayload):
            pushed = service.push(store_id, payload)
            return RpcResponse(200, encode_success(request.id, {}).encode(), rpc, store_id, push=pushed)
        if isinstance(payload, PullPayload):
            stream = service.pull(store_id, payload.cursor_value)
            data, encoding, summary = encode_pull_response(
                request.id,
                stream,
                gzip=not stream.empty and accepts_gzip(headers.get("accept-encoding")),
                max_wire_bytes=service.pull_response_bytes,
            )
            return RpcResponse(200, data, rpc, store_id, pull=summary, content_encoding=encoding)
        assert isinstance(payload, PingPayload)
        pong = encode_success(request.id, {"_tag": "SyncMessage.Pong"}).encode()
        return RpcResponse(200, pong, rpc, store_id)
    except ProtocolError as error:
        failure: ProtocolError = error
    except StorageUnavailableError as error:
        failure = BackendUnavailableError(str(error))
    except StorageError as error:
        logger.exception("storage error")
        failure = UnknownError(f"storage error: {error}", note="the backend could not serve this request")
    except Exception as error:  # the last line of defence: never an unhandled exception
        logger.exception("unexpected error")
        failure = UnknownError(f"internal error: {type(error).__name__}", note="a bug in stratasync")
    return RpcResponse(200, encode_failure(request.id, failure).encode(), rpc, store_id, error=failure)
