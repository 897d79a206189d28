"""sync-cf's WebSocket protocol on the client side: URLs, request frames, ``Exit`` values, request ids.

Pure functions and values, no I/O: the live pull URL (``?storeId=..&payload=..&transport=ws``,
the payload URI-encoded twice as LiveStore sends it), Effect-RPC ``Request`` frames, the error an
``Exit`` carries, and :class:`StreamCheck`, which checks that each page of a pull continues the
last one (exactly once, in order).

**Request ids** come from one counter per process (as ``@effect/rpc``'s), so they stay unique
across connections and reconnections.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from stratasync.client import jsoncodec
from stratasync.client.errors import TransportError
from stratasync.client.transport import Cursor, PullPage, pull_fields
from stratasync.protocol.errors import error_from_wire

WS_PULL = "SyncWsRpc.Pull"
WS_PUSH = "SyncWsRpc.Push"

#: The ``Ping`` frame (the backend, or API Gateway, answers ``Pong``).
PING = jsoncodec.dumps({"_tag": "Ping"})
#: What ``encodeURIComponent`` leaves as it is besides letters, digits and ``-_.``.
_URI_COMPONENT_SAFE = "!~*'()"
_request_ids = itertools.count()
_request_ids_lock = threading.Lock()


def next_request_id() -> str:
    """A request id unique in this process (a decimal string, as ``@effect/rpc`` sends them)."""
    with _request_ids_lock:
        return str(next(_request_ids))


def _encode_uri_component(text: str) -> str:
    return quote(text, safe=_URI_COMPONENT_SAFE)


def _with_scheme(url: str, schemes: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in schemes.values():
        return url
    if scheme not in schemes:
        raise ValueError(f"{url!r}: expected one of {', '.join(sorted({*schemes, *schemes.values()}))}")
    return urlunsplit(parts._replace(scheme=schemes[scheme]))


def as_ws_url(url: str) -> str:
    """``url`` with an ``http(s)`` scheme mapped to ``ws(s)`` (as ``makeWsSync`` does)."""
    return _with_scheme(url, {"http": "ws", "https": "wss"})


def as_http_url(url: str) -> str:
    """``url`` with a ``ws(s)`` scheme mapped to ``http(s)`` (the same server's HTTP transport)."""
    return _with_scheme(url, {"ws": "http", "wss": "https"})


def live_pull_url(url: str, store_id: str, payload: Any = None) -> str:
    """The URL a live pull connects to: ``url?storeId=..&payload=..&transport=ws``.

    ``payload`` is JSON, URI-encoded twice (as LiveStore sends it); omitted when None.
    """
    url = as_ws_url(url)
    if urlsplit(url).query:
        raise ValueError(f"{url!r}: the WebSocket URL must carry no query (the client appends its own)")
    query = f"storeId={_encode_uri_component(store_id)}"
    if payload is not None:
        encoded = _encode_uri_component(jsoncodec.dumps(payload))
        query += f"&payload={_encode_uri_component(encoded)}"
    return f"{url}?{query}&transport=ws"


def ws_request(request_id: str, tag: str, store_id: str, payload: Any, fields: Mapping[str, Any]) -> str:
    """One Effect-RPC request frame."""
    rpc_payload: dict[str, Any] = {"storeId": store_id}
    if payload is not None:
        rpc_payload["payload"] = payload
    rpc_payload.update(fields)
    return jsoncodec.dumps(
        {"_tag": "Request", "id": request_id, "tag": tag, "payload": rpc_payload, "headers": []}
    )


def pull_live_fields(cursor: Cursor | None) -> dict[str, Any]:
    """The fields of a live pull request (``live`` and ``cursor``)."""
    return {"live": True, **pull_fields(cursor)}


def exit_error(exit_value: Any) -> Exception | None:
    """The error an ``Exit`` message carries (a protocol error, or TransportError); None for Success."""
    if not isinstance(exit_value, dict):
        return TransportError(f"malformed Exit: {exit_value!r}")
    if exit_value.get("_tag") == "Success":
        return None
    cause = exit_value.get("cause")
    if isinstance(cause, dict) and cause.get("_tag") == "Fail":
        return error_from_wire(cause.get("error"))
    return TransportError(f"the backend failed: {cause!r}")


class StreamCheck:
    """Exactly once, in order: each page of one pull must continue the last event seen on it.

    Starts at the pull's cursor; :meth:`check` returns what is wrong with the next pages (and
    then remembers nothing of them), or None after moving on past them.
    """

    def __init__(self, cursor: Cursor | None) -> None:
        self.backend_id: str | None = cursor[0] if cursor is not None else None
        self.last: int = cursor[1] if cursor is not None else 0

    def check(self, pages: Sequence[PullPage]) -> str | None:
        backend_id, last = self.backend_id, self.last
        for page in pages:
            if backend_id is not None and page.backend_id != backend_id:
                return f"the backend id changed from {backend_id!r} to {page.backend_id!r}"
            backend_id = page.backend_id
            for event in page.events:
                seq, parent = event.get("seqNum"), event.get("parentSeqNum")
                if type(seq) is not int or type(parent) is not int or seq <= parent:
                    return f"malformed event numbers seqNum={seq!r} parentSeqNum={parent!r}"
                if seq <= last:
                    return f"duplicate: event #{seq} arrived again (the pull is at #{last})"
                if parent != last:
                    return f"gap: event #{seq} follows #{parent}, but the pull is at #{last}"
                last = seq
        self.backend_id, self.last = backend_id, last
        return None


__all__ = [
    "PING",
    "WS_PULL",
    "WS_PUSH",
    "StreamCheck",
    "as_http_url",
    "as_ws_url",
    "exit_error",
    "live_pull_url",
    "next_request_id",
    "pull_live_fields",
    "ws_request",
]
