"""Live sync under test: a recording ``@connections`` fake, a model of what a LiveStore client
makes of the messages, crash injection, and the adapters to run the rules on."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stratasync.core.live import FanOutReport, LiveSettings, LiveSync
from stratasync.core.service import PushResult, SyncService
from stratasync.protocol.messages import Cursor, PushPayload
from stratasync.storage import EventLogStorage
from stratasync.storage.subscriptions import (
    Connection,
    ConnectionGateway,
    ConnectionGoneError,
    SubscriptionKey,
    SubscriptionStatus,
    SubscriptionStorage,
)

CREATED_AT = "2026-11-23T12:00:00.000Z"


class Crash(BaseException):
    """The Lambda dies here: nothing after this point of the invocation happens."""


@dataclass
class FakeGateway(ConnectionGateway):
    """Records each connection's messages; ``before_post``/``after_post`` hooks can raise."""

    messages: dict[str, list[str]] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    before_post: Callable[[str, str], None] | None = None
    after_post: Callable[[str, str], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, connection_id: str, data: str) -> None:
        if connection_id in self.gone or connection_id in self.closed:
            raise ConnectionGoneError(f"{connection_id} is gone")
        if self.before_post is not None:
            self.before_post(connection_id, data)
        assert len(data.encode()) <= 128 * 1024, "over API Gateway's message limit"
        with self.lock:
            self.messages.setdefault(connection_id, []).append(data)
        if self.after_post is not None:
            self.after_post(connection_id, data)

    def close(self, connection_id: str) -> None:
        with self.lock:
            if connection_id not in self.closed:
                self.closed.append(connection_id)

    def decoded(self, connection_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(message) for message in self.messages.get(connection_id, [])]

    def chunks(self, connection_id: str, request_id: str) -> list[dict[str, Any]]:
        """The PullResponses sent to one request, in order."""
        return [
            message["values"][0]
            for message in self.decoded(connection_id)
            if message["_tag"] == "Chunk" and message["requestId"] == request_id
        ]

    def seqs(self, connection_id: str, request_id: str) -> list[int]:
        return [
            item["eventEncoded"]["seqNum"]
            for chunk in self.chunks(connection_id, request_id)
            for item in chunk["batch"]
        ]


def assert_exactly_once_in_order(seqs: list[int], cursor: int, head: int | None = None) -> None:
    """What a LiveStore client needs: every event after its cursor once, ascending, no gap (the
    tests number events one by one); with ``head``: all of them up to it."""
    assert seqs == list(range(cursor + 1, cursor + 1 + len(seqs))), f"after {cursor}: {seqs}"
    if head is not None:
        assert seqs[-1:] == [head] or (not seqs and head == cursor), f"expected up to {head}: {seqs}"


def event(seq: int, text: str = "milk") -> dict[str, Any]:
    return {
        "name": "v1.TodoCreated",
        "args": {"id": f"t{seq}", "text": text},
        "seqNum": seq,
        "parentSeqNum": seq - 1,
        "clientId": "k3Jd9",
        "sessionId": "pQ2xZ",
    }


def push_payload(store_id: str, first: int, count: int, text: str = "milk") -> PushPayload:
    return PushPayload.model_validate(
        {
            "storeId": store_id,
            "batch": [event(seq, text) for seq in range(first, first + count)],
            "backendId": {"_tag": "None"},
        }
    )


@dataclass
class Harness:
    """Live sync over one adapter pair, with a fake gateway."""

    eventlog: EventLogStorage
    subscriptions: SubscriptionStorage
    gateway: FakeGateway
    settings: LiveSettings

    def __post_init__(self) -> None:
        self.service = SyncService(self.eventlog, clock=lambda: CREATED_AT)
        self.live = LiveSync(self.service, self.subscriptions, self.gateway, self.settings)
        self.store_id = f"store-{uuid.uuid4().hex[:10]}"

    def connect(self, *, age_seconds: float = 0) -> Connection:
        connection_id = f"{uuid.uuid4().hex[:14]}="
        connection = self.live.connect(connection_id, self.store_id)
        if age_seconds:
            connection = Connection(
                connection_id,
                self.store_id,
                connection.connected_at_ms - int(age_seconds * 1000),
                connection.expires_at,
            )
            self.subscriptions.put_connection(connection)
        return connection

    def push(self, first: int, count: int, text: str = "milk") -> PushResult:
        return self.service.push(self.store_id, push_payload(self.store_id, first, count, text))

    def publish(self, pushed: PushResult, *, deadline_ms: int | None = None) -> FanOutReport | None:
        """The push path's fan-out of ``pushed`` (in an invocation with a minute left by default)."""
        if deadline_ms is None:
            deadline_ms = int(time.time() * 1000) + 60_000
        return self.live.publish(self.store_id, pushed, deadline_ms=deadline_ms)

    def cursor(self, seq: int) -> Cursor:
        return Cursor(backendId=self.eventlog.backend_id(self.store_id), eventSequenceNumber=seq)

    def live_pull(self, connection: Connection, request_id: str = "1", cursor: int | None = None) -> None:
        self.live.pull_live(
            connection,
            request_id,
            None if cursor is None else self.cursor(cursor),
            deadline_ms=int(time.time() * 1000) + 60_000,
        )


def subscription_of(harness: Harness, connection_id: str, request_id: str = "1") -> Any:
    """The stored subscription of one pull (None: there is none)."""
    key = SubscriptionKey(harness.store_id, connection_id, request_id)
    listed = harness.subscriptions.listeners(harness.store_id).subscriptions
    return next((sub for sub in listed if sub.key == key), None)


def assert_each_pull_whole_or_closed(harness: Harness, pulls: list[tuple[str, str, int]], head: int) -> None:
    """After a crash and the stream's retries: each pull ``(connection, request, cursor)`` has
    every event after its cursor once, in order, and is live at ``head`` with no claim; or its
    connection was closed and forgotten (the client re-pulls from where it is)."""
    for connection_id, request_id, cursor in pulls:
        seqs = harness.gateway.seqs(connection_id, request_id)
        if connection_id in harness.gateway.closed:
            assert_exactly_once_in_order(seqs, cursor)
            assert harness.subscriptions.connection(connection_id) is None
        else:
            assert_exactly_once_in_order(seqs, cursor, head)
            sub = subscription_of(harness, connection_id, request_id)
            assert (sub.status, sub.sent_seq, sub.sending) == (SubscriptionStatus.LIVE, head, None)


def dead_by_now(harness: Harness) -> int:
    """The deadline of an invocation whose claims have run out by now (it died, and its time is up)."""
    return int(time.time() * 1000) - harness.settings.lease_margin_ms - 1


def crashing(harness: Harness, crash_at: int, run: Callable[[], object]) -> int:
    """Run ``run`` (a sender) dying at its ``crash_at``-th side effect; how many it saw."""
    steps = 0
    subscriptions, gateway = harness.subscriptions, harness.gateway

    def step() -> None:
        nonlocal steps
        steps += 1
        if steps == crash_at:
            raise Crash

    class Crashing:
        def __init__(self, inner: Any, methods: set[str]) -> None:
            self.inner, self.methods = inner, methods

        def __getattr__(self, name: str) -> Any:
            method = getattr(self.inner, name)
            if name not in self.methods:
                return method

            def call(*args: Any, **kwargs: Any) -> Any:
                step()
                result = method(*args, **kwargs)
                step()
                return result

            return call

    harness.live.subscriptions = Crashing(subscriptions, {"claim", "release", "remove_connection"})  # type: ignore[assignment]
    harness.live.gateway = Crashing(gateway, {"post", "close"})  # type: ignore[assignment]
    try:
        run()
    except Crash:
        pass
    finally:
        harness.live.subscriptions, harness.live.gateway = subscriptions, gateway
    return steps
