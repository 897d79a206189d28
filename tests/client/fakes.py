"""Transports for client tests: in-process to a real backend core (SyncService + handle_rpc), with
fault injection, and a scripted one without any backend."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stratasync.client import Store
from stratasync.client.sync import SyncEngine
from stratasync.client.transport import Cursor, PullPage, RpcTransport, TransportError
from stratasync.core import SyncService, handle_rpc
from stratasync.protocol.errors import BackendIdMismatchError, ServerAheadError
from stratasync.protocol.rpc import RpcTag


def engine(store: Store) -> SyncEngine:
    """The sync engine of a store with a backend (to drive its phases one by one)."""
    assert store._sync is not None
    return store._sync


class InProcessTransport(RpcTransport):
    """Talks the wire protocol (JSON envelopes) to a SyncService without HTTP.

    ``lose_next_response``: the backend handles the next request, then the response is lost.
    ``fail_next``: the next request never reaches the backend (a network error).
    """

    def __init__(self, service: SyncService, store_id: str) -> None:
        super().__init__(store_id)
        self.service = service
        self.lose_next_response = False
        self.fail_next = False
        self.requests = 0

    def _exchange(self, tag: RpcTag, body: dict[str, Any]) -> Any:
        self.requests += 1
        if self.fail_next:
            self.fail_next = False
            raise TransportError(f"{tag.value}: connection refused (injected)")
        response = handle_rpc(self.service, json.dumps(body).encode(), {"storeId": self.store_id})
        if self.lose_next_response:
            self.lose_next_response = False
            raise TransportError(f"{tag.value}: response lost (injected)")
        return json.loads(response.body)


def wire_event(seq_num: int, parent: int, name: str, args: Any, client_id: str = "peer") -> dict[str, Any]:
    """An encoded (global) event as the backend sends it."""
    return {
        "name": name,
        "args": args,
        "seqNum": seq_num,
        "parentSeqNum": parent,
        "clientId": client_id,
        "sessionId": "peer-session",
    }


class ScriptedTransport:
    """A SyncTransport without a backend: serves ``upstream`` events, answers pushes with ``on_push``.

    ``on_push(batch)`` returns normally (accepted: the events join ``upstream``) or raises the
    protocol error to answer. ``delay`` seconds pass before each answer (a slow backend).
    ``pull_hook(after)`` may append events (a busy peer) before a pull is answered. Once
    ``stopped`` is set every request raises RuntimeError, which ends a runaway sync loop.
    """

    def __init__(
        self,
        upstream: list[dict[str, Any]] | None = None,
        *,
        backend_id: str = "backend-1",
        on_push: Callable[[list[dict[str, Any]]], None] | None = None,
        pull_hook: Callable[[ScriptedTransport, int], None] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.upstream = list(upstream or [])
        self.backend_id = backend_id
        self.on_push = on_push
        self.pull_hook = pull_hook
        self.delay = delay
        self.pulls = 0
        self.pushes: list[list[dict[str, Any]]] = []
        self.push_bodies: list[str] = []
        self.stopped = threading.Event()

    def _request(self) -> None:
        if self.stopped.is_set():
            raise RuntimeError("the test is over")
        if self.delay:
            time.sleep(self.delay)

    def ping(self) -> None:
        self._request()

    def pull(self, cursor: Cursor | None) -> list[PullPage]:
        self._request()
        self.pulls += 1
        if cursor is not None and cursor[0] != self.backend_id:
            raise BackendIdMismatchError(self.backend_id, cursor[0])
        after = cursor[1] if cursor is not None else 0
        if self.pull_hook is not None:
            self.pull_hook(self, after)
        # Through JSON, as over the wire: a "\ud83d" escape arrives as a lone surrogate.
        events = json.loads(json.dumps([event for event in self.upstream if event["seqNum"] > after]))
        return [PullPage(events, [None] * len(events), {"_tag": "NoMore"}, self.backend_id)]

    def push(self, batch: Sequence[Mapping[str, Any]], backend_id: str | None) -> None:
        self._request()
        body = json.dumps(list(batch))
        self.push_bodies.append(body)
        events = json.loads(body)
        self.pushes.append(events)
        if backend_id is not None and backend_id != self.backend_id:
            raise BackendIdMismatchError(self.backend_id, backend_id)
        if self.on_push is not None:
            self.on_push(events)
        head = self.upstream[-1]["seqNum"] if self.upstream else 0
        if events[0]["parentSeqNum"] != head:
            raise ServerAheadError(head, events[0]["parentSeqNum"])
        self.upstream.extend(events)

    def close(self) -> None:
        pass


def always_ahead(batch: list[dict[str, Any]]) -> None:
    """An ``on_push`` that refuses every push with ServerAheadError."""
    raise ServerAheadError(10**6, batch[0]["parentSeqNum"])
