"""Transports for the sync-cf protocol (Ping, Push, Pull): the wire codec and an HTTP client on httpx.

:class:`SyncTransport` is what the sync engine needs; :class:`SyncHttpTransport` talks to a
backend over HTTP exactly as LiveStore's ``makeHttpSync`` does. The request and response codec
functions are shared by every transport. A :class:`LiveTransport` can also keep a live pull open
(a :class:`LiveFeed`: upstream events as they happen); :mod:`stratasync.client.wstransport` is
the WebSocket one.
"""

from __future__ import annotations

import enum
import itertools
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import httpx

from stratasync.client import jsoncodec
from stratasync.client.errors import ForbiddenError, ProtocolError, TransportError, UnauthorizedError
from stratasync.protocol.errors import error_from_wire
from stratasync.protocol.rpc import RpcTag

Cursor = tuple[str, int]
"""A pull cursor: ``(backendId, seqNum of the last event the client has)``."""


@dataclass(frozen=True)
class PullPage:
    """One pull chunk: encoded events (with ``createdAt`` where known), its page info, backend id."""

    events: list[dict[str, Any]]
    created_at: list[str | None]
    page_info: dict[str, Any]
    backend_id: str

    @property
    def is_last(self) -> bool:
        return self.page_info.get("_tag") == "NoMore"


class ByteSink(Protocol):
    """Anything bytes can be written to."""

    def write(self, data: bytes, /) -> int: ...


class SyncTransport(Protocol):
    """One store on one sync backend."""

    def ping(self) -> None: ...

    def push(self, batch: Sequence[Mapping[str, Any]], backend_id: str | None) -> None: ...

    def pull(self, cursor: Cursor | None) -> list[PullPage]: ...

    def close(self) -> None: ...


class LiveState(enum.Enum):
    """Where a live pull stands (:attr:`LiveFeed.state`)."""

    CONNECTING = "connecting"
    """The connection (or a reconnection) is being opened."""
    CATCHING_UP = "catching-up"
    """The pull is open; the stored pages after the cursor are arriving."""
    LIVE = "live"
    """Caught up: every event the backend accepts arrives as it happens."""
    DOWN = "down"
    """The connection was lost or refused; the next attempt comes after a backoff."""
    STOPPED = "stopped"


@dataclass(frozen=True)
class LivePages:
    """Pages of one live pull, checked to continue each other exactly (no gap, no duplicate).

    ``generation`` numbers the connection they came on: each reconnection pulls again from the
    store's cursor, so pages of different generations may overlap (the merge skips known events).
    """

    generation: int
    pages: list[PullPage]


@dataclass(frozen=True)
class LiveFailure:
    """The backend ended a live pull with an error (e.g. ``BackendIdMismatchError``).

    The feed pulls again only after :meth:`LiveFeed.resume`, once the engine dealt with it.
    """

    generation: int
    error: ProtocolError


LiveItem = LivePages | LiveFailure


class LiveFeed(Protocol):
    """A live pull kept open in the background: what it delivered waits in :meth:`take`.

    ``wake()`` (given to :meth:`LiveTransport.open_live`) is called whenever there is something to
    take or :attr:`state` changed; ``cursor()`` is read at each (re)connection.
    """

    @property
    def state(self) -> LiveState: ...

    @property
    def polling(self) -> bool:
        """True while the live pull is down after a failed attempt: poll over HTTP meanwhile."""
        ...

    def start(self) -> None: ...

    def take(self) -> list[LiveItem]:
        """What arrived since the last call, in order (without the items of a restarted generation)."""
        ...

    def restart(self, generation: int | None, reason: str) -> None:
        """Drop ``generation`` (None: the current one): its queued pages and its connection; pull again."""
        ...

    def resume(self) -> None:
        """Pull again after a :class:`LiveFailure`."""
        ...

    def stop(self, timeout: float = 5.0) -> None: ...


@runtime_checkable
class LiveTransport(SyncTransport, Protocol):
    """A transport that can also keep a live pull open (the sync engine then does not poll)."""

    def open_live(self, cursor: Callable[[], Cursor | None], wake: Callable[[], None]) -> LiveFeed: ...


def request_body(
    request_id: str, tag: RpcTag, store_id: str, payload: Any, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """One Effect-RPC request envelope."""
    rpc_payload: dict[str, Any] = {"storeId": store_id, **fields}
    if payload is not None:
        rpc_payload["payload"] = payload
    return {"_tag": "Request", "id": request_id, "tag": tag.value, "payload": rpc_payload, "headers": []}


def push_fields(batch: Sequence[Mapping[str, Any]], backend_id: str | None) -> dict[str, Any]:
    option = {"_tag": "Some", "value": backend_id} if backend_id is not None else {"_tag": "None"}
    return {"batch": list(batch), "backendId": option}


def pull_fields(cursor: Cursor | None) -> dict[str, Any]:
    if cursor is None:
        return {"cursor": {"_tag": "None"}}
    return {"cursor": {"_tag": "Some", "value": {"backendId": cursor[0], "eventSequenceNumber": cursor[1]}}}


def check_response(tag: RpcTag, messages: Any) -> list[dict[str, Any]]:
    """The response messages; raises the protocol error of a failed RPC, or :class:`TransportError`."""
    if not isinstance(messages, list):
        raise TransportError(f"{tag.value}: not an RPC response: {str(messages)[:200]!r}")
    exited = False
    for message in messages:
        kind = message.get("_tag") if isinstance(message, dict) else None
        if kind == "Defect":
            raise TransportError(f"{tag.value}: backend reported a defect: {message.get('defect')!r}")
        if kind == "Exit":
            exited = True
            outcome = message.get("exit", {})
            if outcome.get("_tag") == "Failure":
                cause = outcome.get("cause", {})
                if cause.get("_tag") == "Fail":
                    raise error_from_wire(cause.get("error"))
                raise TransportError(f"{tag.value}: backend failed: {cause!r}")
    if not exited:
        raise TransportError(f"{tag.value}: response ended without an Exit message")
    return messages


def pull_pages(messages: Sequence[Mapping[str, Any]]) -> list[PullPage]:
    """The pages of a checked pull response."""
    pages = []
    for message in messages:
        if message.get("_tag") != "Chunk":
            continue
        for value in message["values"]:
            items = value["batch"]
            pages.append(
                PullPage(
                    events=[item["eventEncoded"] for item in items],
                    created_at=[
                        item["metadata"]["value"]["createdAt"] if item["metadata"]["_tag"] == "Some" else None
                        for item in items
                    ],
                    page_info=value["pageInfo"],
                    backend_id=value["backendId"],
                )
            )
    return pages


class RpcTransport(ABC):
    """Ping, push and pull over some way of exchanging one request envelope for its messages."""

    def __init__(self, store_id: str, payload: Any = None) -> None:
        self.store_id = store_id
        self.payload = payload
        self._ids = itertools.count()

    @abstractmethod
    def _exchange(self, tag: RpcTag, body: dict[str, Any]) -> Any:
        """Send one request envelope; return the decoded JSON response (or raise TransportError)."""

    def _call(self, tag: RpcTag, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
        body = request_body(str(next(self._ids)), tag, self.store_id, self.payload, fields)
        return check_response(tag, self._exchange(tag, body))

    def ping(self) -> None:
        """Ask the backend for a ``Pong``."""
        self._call(RpcTag.PING, {})

    def push(self, batch: Sequence[Mapping[str, Any]], backend_id: str | None) -> None:
        """Push encoded events; raises :class:`~stratasync.protocol.ServerAheadError` and friends."""
        self._call(RpcTag.PUSH, push_fields(batch, backend_id))

    def pull(self, cursor: Cursor | None) -> list[PullPage]:
        """Every page of one pull response after ``cursor`` (None: from the beginning)."""
        return pull_pages(self._call(RpcTag.PULL, pull_fields(cursor)))

    def close(self) -> None:  # noqa: B027 - nothing to release unless a subclass holds resources
        """Release the transport's resources."""


class SyncHttpTransport(RpcTransport):
    """One store on one sync-cf backend, over HTTP (the request shape of LiveStore's ``makeHttpSync``)."""

    def __init__(
        self,
        url: str,
        store_id: str,
        *,
        payload: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 15.0,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(store_id, payload)
        query = f"storeId={quote(store_id, safe='')}&transport=http"
        if payload is not None:
            query += "&payload=" + quote(json.dumps(payload, separators=(",", ":")), safe="")
        self._url = f"{url}?{query}"
        self._archive_url = url.rstrip("/") + "/archive"
        self._headers = {
            "content-type": "application/json",
            "x-livestore-store-id": store_id,
            **(headers or {}),
        }
        self._client = client if client is not None else httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SyncHttpTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _exchange(self, tag: RpcTag, body: dict[str, Any]) -> Any:
        try:
            response = self._client.post(
                self._url, content=jsoncodec.dumps(body).encode(), headers=self._headers
            )
            return jsoncodec.loads(response.content)
        except (httpx.HTTPError, ValueError) as error:
            raise TransportError(f"{tag.value}: {type(error).__name__}: {error}") from error

    def archive_manifest(self, after: int) -> dict[str, Any] | None:
        """The backend's archived segments after ``after`` (``GET /archive``); None if it has no archive."""
        headers = {key: value for key, value in self._headers.items() if key != "content-type"}
        if isinstance(self.payload, Mapping) and isinstance(self.payload.get("authToken"), str):
            headers.setdefault("authorization", f"Bearer {self.payload['authToken']}")
        try:
            response = self._client.get(
                self._archive_url, params={"storeId": self.store_id, "after": str(after)}, headers=headers
            )
        except httpx.HTTPError as error:
            raise TransportError(f"GET /archive: {type(error).__name__}: {error}") from error
        if response.status_code == 404:
            return None
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:200]}
        if response.status_code in (401, 403):
            refusal = UnauthorizedError if response.status_code == 401 else ForbiddenError
            raise refusal(str(body.get("message")))
        if response.status_code != 200 or not isinstance(body, dict):
            raise TransportError(f"GET /archive: HTTP {response.status_code}: {body}")
        return body

    def download(self, url: str, sink: ByteSink) -> int:
        """Stream ``url`` (a presigned segment URL) into ``sink``; returns the byte count."""
        size = 0
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise TransportError(f"segment download: HTTP {response.status_code}")
                for chunk in response.iter_bytes(1 << 16):
                    sink.write(chunk)
                    size += len(chunk)
        except httpx.HTTPError as error:
            raise TransportError(f"segment download: {type(error).__name__}: {error}") from error
        return size


__all__ = [
    "Cursor",
    "LiveFailure",
    "LiveFeed",
    "LiveItem",
    "LivePages",
    "LiveState",
    "LiveTransport",
    "ProtocolError",
    "PullPage",
    "RpcTransport",
    "SyncHttpTransport",
    "SyncTransport",
    "TransportError",
    "check_response",
    "pull_fields",
    "pull_pages",
    "push_fields",
    "request_body",
]
