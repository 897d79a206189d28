"""Live sync over WebSocket: every commit reaches every live pull exactly once, in order.

The rules, over two small ports: :class:`~stratasync.storage.subscriptions.SubscriptionStorage`
(connections and subscriptions) and :class:`ConnectionGateway` (API Gateway's ``@connections``:
send to, or close, a connection).

**A live pull** (:meth:`LiveSync.pull_live`, in the Lambda that receives it) opens its
subscription in *catch-up* at the client's cursor, holding a lease until its own invocation's
deadline (plus a margin), sends the stored events up to the head it read, then hands over:
``go_live`` makes it *live* only if no batch was committed on the last event it sent (the head is
unchanged, one transaction with the eventlog); otherwise it sends the newer events and tries again.
Nothing else sends to a subscription in catch-up.

**The fan-out** (:meth:`LiveSync.fan_out`, the DynamoDB stream consumer, per store with new
commits) reads the store's subscriptions and its head (both strongly consistent) and brings
each live subscription from its ``sent_seq`` to the head: it *claims* the range first
(conditional on ``sent_seq`` and no other claim), sends it in order, then releases the claim and
moves ``sent_seq``. What it cannot be sure about it does not guess at: it *closes the connection*
(``DELETE @connections``) and the client reconnects and pulls again from its real cursor:

* a claim found on a subscription (a sender died mid-send, or another fan-out is sending);
* a catch-up whose lease ran out (its Lambda is certainly dead);
* a send that failed in a way that leaves delivery unknown;
* a connection of the store that has held no subscription for ``orphan_grace_seconds`` (its
  Pull never ran: without this its client would wait for live events forever).

A connection that is gone (410) loses its items. Stream redelivery is harmless: a subscription
at the head is skipped. Every message stays within one API Gateway message (:mod:`~stratasync.
protocol.ws`): at most 100 events and :data:`~stratasync.protocol.ws.WS_CHUNK_BYTES`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum

from stratasync.core.service import SyncService
from stratasync.protocol.limits import MAX_PULL_EVENTS_PER_CHUNK
from stratasync.protocol.messages import Cursor
from stratasync.protocol.rpc import PullPage, encode_pull_item
from stratasync.protocol.ws import chunk_item_bytes, encode_chunk, encode_exit_success
from stratasync.storage.base import HotTierStorage, StoredEvent
from stratasync.storage.subscriptions import (
    Connection,
    ConnectionGateway,
    ConnectionGoneError,
    Handoff,
    SendError,
    SendFailedError,
    SendThrottledError,
    Subscription,
    SubscriptionKey,
    SubscriptionStatus,
    SubscriptionStorage,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ConnectionGateway",
    "ConnectionGoneError",
    "FanOutReport",
    "LiveSettings",
    "LiveSync",
    "PullSent",
    "SendError",
    "SendFailedError",
    "SendThrottledError",
]


@dataclass(frozen=True)
class LiveSettings:
    """Timings of live sync."""

    #: How long connection and subscription items live (API Gateway closes a connection after 2 h).
    connection_lifetime_seconds: int = 2 * 3600 + 600
    #: Added to the catch-up owner's deadline for its lease (clock skew between Lambdas).
    lease_margin_ms: int = 5_000
    #: A connection of a store with no subscription after this long is closed at the store's next commit.
    orphan_grace_seconds: float = 30.0
    #: After a push's ServerAheadError, how long the pusher's subscription may take to appear.
    pull_wait_seconds: float = 10.0
    #: A live subscription more events behind than this is closed (a fresh pull catches up faster).
    max_backlog_events: int = 10_000
    #: How long a throttled send is retried.
    send_retry_seconds: float = 2.0
    #: Subscriptions the fan-out sends to at once (each one's messages stay in order).
    send_concurrency: int = 8
    #: Fan-out passes per store while claims are contended.
    max_fan_out_rounds: int = 5


class _Deadline(Exception):  # noqa: N818 - a signal inside this module
    """The invocation is about to run out of time."""


class Delivery(Enum):
    DELIVERED = "delivered"
    CLAIM_LOST = "claim_lost"
    CLOSED = "closed"
    GONE = "gone"


@dataclass
class FanOutReport:
    """What one fan-out of one store did."""

    store_id: str
    head: int = 0
    delivered: int = 0
    events_sent: int = 0
    messages_sent: int = 0
    closed: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    rounds: int = 0


@dataclass(frozen=True)
class PullSent:
    """What a pull over WebSocket sent."""

    events: int
    messages: int
    #: The subscription is live now (a live pull whose catch-up completed).
    live: bool = False


def paginate(
    items: Sequence[tuple[int, str]], page_bytes: int, last_remaining: int = 0
) -> Iterator[PullPage]:
    """Pages of at most 100 encoded items and about ``page_bytes`` (always one item at least);
    ``remaining`` counts the items after each page, plus ``last_remaining``."""
    start = 0
    while start < len(items):
        end, size = start, 0
        while end < len(items) and end - start < MAX_PULL_EVENTS_PER_CHUNK:
            item_size = len(items[end][1].encode()) + 1
            if end > start and size + item_size > page_bytes:
                break
            size += item_size
            end += 1
        yield PullPage([item for _, item in items[start:end]], len(items) - end + last_remaining)
        start = end


class LiveSync:
    """The live-sync rules (see the module docstring)."""

    def __init__(
        self,
        service: SyncService,
        subscriptions: SubscriptionStorage,
        gateway: ConnectionGateway,
        settings: LiveSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.service = service
        self.subscriptions = subscriptions
        self.gateway = gateway
        self.settings = settings or LiveSettings()
        self._clock = clock
        self._sleep = sleep
        self.page_bytes = chunk_item_bytes()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- connections -------------------------------------------------------------------------

    def connect(self, connection_id: str, store_id: str) -> Connection:
        """Record a connection that ``$connect`` admitted."""
        now = self._clock()
        connection = Connection(
            connection_id, store_id, int(now * 1000), int(now) + self.settings.connection_lifetime_seconds
        )
        self.subscriptions.put_connection(connection)
        return connection

    def disconnect(self, connection_id: str) -> None:
        """``$disconnect``: forget the connection and its subscriptions."""
        connection = self.subscriptions.connection(connection_id)
        if connection is not None:
            self.subscriptions.remove_connection(connection_id, connection.store_id)

    def close(self, connection_id: str, store_id: str) -> None:
        """Close the connection, then forget it (in this order: a connection must never stay open
        without its subscriptions, or its client would wait for live events forever)."""
        self.gateway.close(connection_id)
        self.subscriptions.remove_connection(connection_id, store_id)

    def send(self, connection_id: str, data: str) -> None:
        """Send one message, retrying while API Gateway throttles; :class:`SendError` otherwise."""
        deadline = self._clock() + self.settings.send_retry_seconds
        tries = 0
        while True:
            try:
                self.gateway.post(connection_id, data)
                return
            except SendThrottledError as error:
                tries += 1
                if self._clock() >= deadline:
                    raise SendFailedError(f"still throttled after {tries} tries: {error}") from error
                self._sleep(random.uniform(0, min(0.5, 0.02 * 2**tries)))

    # -- pulls -------------------------------------------------------------------------------

    def _send_pages(
        self,
        connection_id: str,
        request_id: str,
        backend_id: str,
        pages: Iterable[PullPage],
        deadline_ms: int,
    ) -> tuple[int, int]:
        events = messages = 0
        for page in pages:
            if self._now_ms() >= deadline_ms:
                raise _Deadline
            self.send(connection_id, encode_chunk(request_id, backend_id, page))
            events += len(page.items)
            messages += 1
        return events, messages

    def pull_once(
        self, connection_id: str, store_id: str, request_id: str, cursor: Cursor | None
    ) -> PullSent:
        """A pull with ``live: false``: the stored pages, then the ``Exit`` (protocol errors raise
        before anything is sent)."""
        stream = self.service.pull(store_id, cursor, page_bytes=self.page_bytes)
        try:
            events, messages = self._send_pages(
                connection_id, request_id, stream.backend_id, stream.pages, deadline_ms=2**62
            )
        finally:
            stream.close()
        if messages == 0:
            self.send(connection_id, encode_chunk(request_id, stream.backend_id, PullPage((), 0)))
            messages = 1
        self.send(connection_id, encode_exit_success(request_id, None))
        return PullSent(events, messages + 1)

    def pull_live(
        self, connection: Connection, request_id: str, cursor: Cursor | None, *, deadline_ms: int
    ) -> PullSent:
        """A pull with ``live: true``: catch up, then hand over to the fan-out; never an ``Exit``.

        Protocol errors (``BackendIdMismatchError``) raise before anything is sent. Once the
        subscription is open, every failure closes the connection instead (the client pulls again),
        because an ``Exit`` on a live pull would end the client's live sync for good.
        ``deadline_ms``: when this invocation ends (epoch ms); the catch-up closes the connection
        rather than run past it, and its lease outlasts it.
        """
        store_id = connection.store_id
        key = SubscriptionKey(store_id, connection.connection_id, request_id)
        stream = self.service.pull(store_id, cursor, page_bytes=self.page_bytes)
        start = cursor.eventSequenceNumber if cursor is not None else 0
        lease = deadline_ms + self.settings.lease_margin_ms
        if not self.subscriptions.open_subscription(key, start, lease, connection.expires_at):
            stream.close()  # interrupted before it began
            return PullSent(0, 0)
        # Stop sending a little before the deadline, so closing still fits in the invocation.
        send_until = deadline_ms - 2_000
        events = messages = 0
        try:
            try:
                events, messages = self._send_pages(
                    connection.connection_id, request_id, stream.backend_id, stream.pages, send_until
                )
            finally:
                stream.close()
            if messages == 0:
                self.send(
                    connection.connection_id, encode_chunk(request_id, stream.backend_id, PullPage((), 0))
                )
                messages = 1
            sent = start if stream.empty else max(start, stream.head.seq_num)
            while True:
                handoff = self.subscriptions.go_live(key, sent)
                if handoff is not Handoff.HEAD_MOVED:
                    return PullSent(events, messages, live=handoff is Handoff.LIVE)
                newer = self.service.pull(
                    store_id,
                    Cursor(backendId=stream.backend_id, eventSequenceNumber=sent),
                    page_bytes=self.page_bytes,
                )
                try:
                    more_events, more_messages = self._send_pages(
                        connection.connection_id, request_id, newer.backend_id, newer.pages, send_until
                    )
                finally:
                    newer.close()
                events, messages = events + more_events, messages + more_messages
                sent = max(sent, newer.head.seq_num)
        except ConnectionGoneError:
            self.subscriptions.remove_connection(connection.connection_id, store_id)
        except _Deadline:
            logger.warning("live pull catch-up ran out of time: closing the connection so the client resumes")
            self.close(connection.connection_id, store_id)
        except Exception:
            logger.exception("live pull failed during catch-up: closing the connection")
            self.close(connection.connection_id, store_id)
        return PullSent(events, messages)

    def interrupt(self, connection: Connection, request_id: str) -> None:
        """The client interrupted a pull: stop sending to it (unknown ids are harmless)."""
        key = SubscriptionKey(connection.store_id, connection.connection_id, request_id)
        self.subscriptions.interrupt(key, connection.expires_at)

    def ensure_pulling(self, connection_id: str) -> bool:
        """After a push's ``ServerAheadError`` the client waits for its live pull to bring the newer
        events, forever: make sure it has one. Waits up to ``pull_wait_seconds`` for the pusher's
        connection to hold a subscription, else closes it (the client reconnects and pulls).
        True when the connection has one."""
        connection = self.subscriptions.connection(connection_id)
        if connection is None:
            return False
        deadline = self._clock() + self.settings.pull_wait_seconds
        while True:
            listeners = self.subscriptions.listeners(connection.store_id)
            if any(
                sub.key.connection_id == connection_id and sub.status is not SubscriptionStatus.INTERRUPTED
                for sub in listeners.subscriptions
            ):
                return True
            if self._clock() >= deadline:
                logger.warning("a pusher behind the head holds no live pull: closing its connection")
                self.close(connection_id, connection.store_id)
                return False
            self._sleep(0.25)

    # -- fan-out -----------------------------------------------------------------------------

    def fan_out(self, store_id: str) -> FanOutReport:
        """Bring every live subscription of the store to its head (see the module docstring).

        Raises :class:`~stratasync.storage.base.StorageError` or :class:`SendError` (a connection
        that could not be closed) after doing what it could: the stream consumer's retry of the
        batch then finishes the job (a subscription at the head is skipped)."""
        report = FanOutReport(store_id)
        errors: list[Exception] = []
        for _ in range(self.settings.max_fan_out_rounds):
            report.rounds += 1
            if not self._fan_out_round(store_id, report, errors):
                break
        if errors:
            raise errors[0]
        return report

    def _fan_out_round(self, store_id: str, report: FanOutReport, errors: list[Exception]) -> bool:
        """One pass; True when a claim was lost (another sender moved a subscription meanwhile)."""
        now_ms = self._now_ms()
        listeners = self.subscriptions.listeners(store_id)
        lock = threading.Lock()

        def close(connection_id: str, why: str) -> None:
            with lock:
                if connection_id in report.closed or connection_id in report.gone:
                    return
                report.closed.add(connection_id)
            logger.info("closing a connection", extra={"store_id": store_id, "reason": why})
            try:
                self.close(connection_id, store_id)
            except Exception as error:
                with lock:
                    errors.append(error)

        subscribed = {
            sub.key.connection_id
            for sub in listeners.subscriptions
            if sub.status is not SubscriptionStatus.INTERRUPTED
        }
        grace_ms = self.settings.orphan_grace_seconds * 1000
        for connection in listeners.connections:
            if connection.connection_id not in subscribed and now_ms - connection.connected_at_ms > grace_ms:
                close(connection.connection_id, "no live pull")
        live: list[Subscription] = []
        for sub in listeners.subscriptions:
            if sub.status is SubscriptionStatus.CATCHUP:
                if sub.lease_until_ms is not None and sub.lease_until_ms < now_ms:
                    close(sub.key.connection_id, "catch-up owner died")
            elif sub.status is SubscriptionStatus.LIVE:
                if sub.sending is not None:
                    close(sub.key.connection_id, "a send was claimed by another sender")
                else:
                    live.append(sub)
        live = [sub for sub in live if sub.key.connection_id not in report.closed]
        if not live:
            return False
        # The events after the lowest sent_seq, read once for all; the last one read is the head
        # (read after the subscriptions, so no subscription is ahead of it).
        items, live = self._backlog(store_id, live, close)
        if not items:
            return False  # nothing after the lowest sent_seq: everyone is at the head
        head = items[-1][0]
        report.head = max(report.head, head)
        behind = [sub for sub in live if sub.sent_seq < head]
        if not behind:
            return False
        lost = False

        def deliver(sub: Subscription) -> None:
            nonlocal lost
            outcome, events, messages = self._deliver(sub, head, items)
            with lock:
                report.events_sent += events
                report.messages_sent += messages
                if outcome is Delivery.DELIVERED:
                    report.delivered += 1
                elif outcome is Delivery.CLAIM_LOST:
                    lost = True
                elif outcome is Delivery.GONE:
                    report.gone.add(sub.key.connection_id)
            if outcome is Delivery.CLOSED:
                close(sub.key.connection_id, "a send failed")

        if len(behind) == 1:
            deliver(behind[0])
        else:
            with ThreadPoolExecutor(min(len(behind), self.settings.send_concurrency)) as pool:
                for result in [pool.submit(deliver, sub) for sub in behind]:
                    try:
                        result.result()
                    except Exception as error:
                        errors.append(error)
        return lost

    def _backlog(
        self, store_id: str, behind: list[Subscription], close: Callable[[str, str], None]
    ) -> tuple[list[tuple[int, str]], list[Subscription]]:
        """The encoded events after the lowest ``sent_seq``, read once for all; the subscriptions
        too far behind for that are closed instead."""
        cap = self.settings.max_backlog_events
        while behind:
            low = min(sub.sent_seq for sub in behind)
            items: list[tuple[int, str]] = []
            events: Iterator[StoredEvent] = self._events_after(store_id, low)
            try:
                for event in events:
                    items.append((event.seq_num, encode_pull_item(event.event_json, event.created_at)))
                    if len(items) > cap:
                        break
            finally:
                close_events = getattr(events, "close", None)
                if close_events is not None:
                    close_events()
            if len(items) <= cap:
                return items, behind
            for sub in behind:
                if sub.sent_seq == low:
                    close(sub.key.connection_id, "too far behind")
            behind = [sub for sub in behind if sub.sent_seq > low]
        return [], []

    def _events_after(self, store_id: str, after: int) -> Iterator[StoredEvent]:
        """The events after ``after``, in order. A live subscription's ``sent_seq`` is a batch's
        last event, so the hot tier's batches from parent ``after`` on are read in one query; if
        they do not start there (archived, or a cursor inside a batch), the general read."""
        store = self.service.store
        hot = getattr(store, "hot", store)
        if not isinstance(hot, HotTierStorage):
            yield from store.read(store_id, after)
            return
        expected = after
        batches = hot.hot_batches(store_id, after)
        try:
            for batch in batches:
                if batch.parent_seq_num != expected:
                    break
                yield from batch.events
                expected = batch.last_seq_num
            else:
                if expected > after:
                    return  # read to the newest batch
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        yield from store.read(store_id, expected)

    def _deliver(
        self, sub: Subscription, head: int, items: Sequence[tuple[int, str]]
    ) -> tuple[Delivery, int, int]:
        """Claim, send (sent_seq, head] in order, release."""
        key = sub.key
        if not self.subscriptions.claim(key, sub.sent_seq, head):
            return Delivery.CLAIM_LOST, 0, 0
        mine = [item for item in items if sub.sent_seq < item[0] <= head]
        backend_id = self.service.store.backend_id(key.store_id)
        events = messages = 0
        try:
            for page in paginate(mine, self.page_bytes):
                self.send(key.connection_id, encode_chunk(key.request_id, backend_id, page))
                events += len(page.items)
                messages += 1
        except ConnectionGoneError:
            self.subscriptions.remove_connection(key.connection_id, key.store_id)
            return Delivery.GONE, events, messages
        except SendError:
            logger.warning("a live send failed: the connection will be closed", exc_info=True)
            return Delivery.CLOSED, events, messages
        self.subscriptions.release(key, head)  # False: interrupted or closed meanwhile
        return Delivery.DELIVERED, events, messages
