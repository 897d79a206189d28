"""One WebSocket message in, its answers out through the connection: routing, errors, ``$connect``.

Transport-neutral like :mod:`stratasync.core.endpoint`: the Lambda handler (and tests) call
:func:`handle_connect` for ``$connect`` and :func:`handle_message` for every other message.

* ``SyncWsRpc.Push`` is the HTTP push (:meth:`SyncService.push`), fanned out to the live pulls
  (:meth:`LiveSync.publish`, the stream's fan-out being the safety net), then answered with its ``Exit``:
  always an ``Exit``, typed (``ServerAheadError``, ``BackendIdMismatchError``, ``UnknownError``
  with ``InvalidRequestError`` and friends in ``cause.name``), never a Die or a Defect.
* ``SyncWsRpc.Pull`` with ``live: false``: the stored pages, then an ``Exit``; with ``live:
  true``: :meth:`LiveSync.pull_live` (pages, then live chunks, never an ``Exit``). A live pull that
  fails after it began closes the connection instead of answering (the client pulls again).
* ``Interrupt``: the subscription stops (unknown request ids are ignored). ``Ping`` (when no MOCK
  route answers it) gets a ``Pong``; ``Ack`` and anything else are ignored.

Authentication happens at ``$connect`` (401/403 there) and again on every request, from the
request's own ``payload``, exactly as on HTTP (a token that expires during a long connection
stops being honoured on both transports alike).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from stratasync.auth.access import Action
from stratasync.core.endpoint import admit
from stratasync.core.live import FanOutReport, LiveSync, PullSent, SendError
from stratasync.core.service import PushResult
from stratasync.protocol.errors import (
    BackendIdMismatchError,
    BackendUnavailableError,
    ForbiddenError,
    InvalidRequestError,
    ProtocolError,
    ServerAheadError,
    UnauthorizedError,
    UnknownError,
)
from stratasync.protocol.messages import PushPayload
from stratasync.protocol.rpc import EnvelopeError, RpcRequest
from stratasync.protocol.ws import (
    PONG,
    WsPullPayload,
    decode_ws_payload,
    encode_exit_failure,
    encode_exit_success,
    parse_client_message,
    parse_connect_query,
)
from stratasync.storage.base import StorageError, StorageUnavailableError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectResult:
    """``$connect``'s answer: 200, or 400/401/403 (the client retries the handshake later)."""

    status: int
    store_id: str | None = None
    error: ProtocolError | None = None


def handle_connect(
    live: LiveSync, connection_id: str, query: Mapping[str, str] | None, headers: Mapping[str, str]
) -> ConnectResult:
    """Admit a connection: a sync-cf WS URL for a store the token may read (``headers``: lower-case)."""
    service = live.service
    store_id: str | None = None
    try:
        params = parse_connect_query(query)
        store_id = params.store_id
        service.limits.check_store_id(store_id)
        service.access.claims_for(params.payload, headers, store_id, Action.READ)
        live.connect(connection_id, store_id)
    except UnauthorizedError as error:
        return ConnectResult(401, store_id, error)
    except ForbiddenError as error:
        return ConnectResult(403, store_id, error)
    except ProtocolError as error:
        return ConnectResult(400, store_id, error)
    except StorageError as error:
        logger.exception("storage error at $connect")
        return ConnectResult(500, store_id, UnknownError(str(error)))
    return ConnectResult(200, store_id)


@dataclass(frozen=True)
class MessageOutcome:
    """What one message was and did (for logs and metrics)."""

    tag: str
    rpc: str | None = None
    store_id: str | None = None
    error: ProtocolError | None = None
    push: PushResult | None = None
    #: What the push's own fan-out did (None: it did not run).
    published: FanOutReport | None = None
    pull: PullSent | None = None
    live: bool = False


def handle_message(
    live: LiveSync, connection_id: str, body: str | bytes, *, deadline_ms: int
) -> MessageOutcome:
    """Serve one message of a connection (never raises for anything a client sends)."""
    try:
        message = parse_client_message(body)
    except EnvelopeError as error:
        logger.info("ignored a frame that is not an Effect-RPC message: %s", error)
        return MessageOutcome("$invalid")
    try:
        if message.tag == "Request" and message.request is not None:
            return _request(live, connection_id, message.request, deadline_ms)
        if message.tag == "Interrupt" and message.request_id is not None:
            connection = live.subscriptions.connection(connection_id)
            if connection is not None:
                live.interrupt(connection, message.request_id)
            return MessageOutcome("Interrupt")
        if message.tag == "Ping":  # only when no MOCK route answers Pings
            live.send(connection_id, PONG)
    except (SendError, StorageError):
        logger.warning("could not serve a %s message", message.tag, exc_info=True)
    return MessageOutcome(message.tag)


#: Errors that end a live pull with an ``Exit`` (the client must act on them: reset, re-auth).
_LIVE_PULL_EXITS = (BackendIdMismatchError, InvalidRequestError, UnauthorizedError, ForbiddenError)


def _request(live: LiveSync, connection_id: str, request: RpcRequest, deadline_ms: int) -> MessageOutcome:
    service = live.service
    store_id: str | None = None
    is_live_pull = False
    failure: ProtocolError
    try:
        payload = decode_ws_payload(request)
        store_id = payload.storeId
        is_live_pull = isinstance(payload, WsPullPayload) and payload.live
        service.limits.check_store_id(store_id)
        admit(service, payload, store_id, {})
        if isinstance(payload, PushPayload):
            pushed = service.push(store_id, payload)
            # Fanned out before the answer: the other clients wait for the events, the pusher's
            # next push can wait a few milliseconds more (it gets its echo either way).
            published = live.publish(store_id, pushed, deadline_ms=deadline_ms, pusher=connection_id)
            live.send(connection_id, encode_exit_success(request.id, {}))
            return MessageOutcome("Request", request.tag, store_id, push=pushed, published=published)
        connection = live.subscriptions.connection(connection_id)
        if connection is None:
            return MessageOutcome("Request", request.tag, store_id)  # closed meanwhile: no one to answer
        if connection.store_id != store_id:
            raise InvalidRequestError(
                f"this connection is for store {connection.store_id!r}; the pull names {store_id!r}"
            )
        if payload.live:
            sent = live.pull_live(connection, request.id, payload.cursor_value, deadline_ms=deadline_ms)
        else:
            sent = live.pull_once(connection_id, store_id, request.id, payload.cursor_value)
        return MessageOutcome("Request", request.tag, store_id, pull=sent, live=payload.live)
    except SendError:
        logger.warning("could not answer a request: the connection is failing", exc_info=True)
        return MessageOutcome("Request", request.tag, store_id)
    except ProtocolError as error:
        failure = error
    except StorageUnavailableError as error:
        failure = BackendUnavailableError(str(error))
    except StorageError as error:
        logger.exception("storage error")
        failure = UnknownError(f"storage error: {error}", note="the backend could not serve this request")
    except Exception as error:  # the last line of defence: never an unhandled exception
        logger.exception("unexpected error")
        failure = UnknownError(f"internal error: {type(error).__name__}", note="a bug in stratasync")
    outcome = MessageOutcome("Request", request.tag, store_id, error=failure, live=is_live_pull)
    try:
        if is_live_pull and not isinstance(failure, _LIVE_PULL_EXITS) and store_id is not None:
            # An Exit would end the client's live sync silently: close, so it reconnects and pulls.
            live.close(connection_id, store_id)
            return outcome
        live.send(connection_id, encode_exit_failure(request.id, failure))
        if isinstance(failure, ServerAheadError):
            live.ensure_pulling(connection_id)
    except (SendError, StorageError):
        logger.warning("could not answer a failed request", exc_info=True)
    return outcome
