"""The fan-out: every commit brought to every live subscription of its store, once and in order.

**The fan-out** (:meth:`FanOut.fan_out`, the DynamoDB stream consumer, per store with new
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
protocol.ws`): at most 100 events and :data:`~stratasync.protocol.ws.WS_CHUNK_BYTES`
(:func:`paginate`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum

from stratasync.core.live_connections import LiveConnections
from stratasync.protocol.limits import MAX_PULL_EVENTS_PER_CHUNK
from stratasync.protocol.rpc import PullPage, encode_pull_item
from stratasync.protocol.ws import encode_chunk
from stratasync.storage.base import HotTierStorage, StoredEvent
from stratasync.storage.subscriptions import (
    ConnectionGoneError,
    SendError,
    Subscription,
    SubscriptionStatus,
)

# The live-sync rules log as one (stratasync.core.live).
logger = logging.getLogger("stratasync.core.live")

__all__ = ["Delivery", "FanOut", "FanOutReport", "paginate"]

#: Reads the events of a fan-out while its subscriptions are read (one per process suffices:
#: a fan-out waits for its read before the next one starts).
_PREFETCH = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fan-out-read")


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


class FanOut(LiveConnections):
    """The fan-out of live sync (see the module docstring)."""

    def fan_out(self, store_id: str, after: int | None = None) -> FanOutReport:
        """Bring every live subscription of the store to its head (see the module docstring).

        ``after``: where the new commits start (the lowest parent of the stream's commit records),
        a hint. The events after it are read while the subscriptions are, not after: the usual
        live subscription sits there, so delivery waits for one storage read instead of two. A
        subscription behind ``after`` gets the general read.

        Raises :class:`~stratasync.storage.base.StorageError` or :class:`SendError` (a connection
        that could not be closed) after doing what it could: the stream consumer's retry of the
        batch then finishes the job (a subscription at the head is skipped)."""
        report = FanOutReport(store_id)
        errors: list[Exception] = []
        for _ in range(self.settings.max_fan_out_rounds):
            report.rounds += 1
            if not self._fan_out_round(store_id, report, errors, after if report.rounds == 1 else None):
                break
        if errors:
            raise errors[0]
        return report

    def _fan_out_round(
        self, store_id: str, report: FanOutReport, errors: list[Exception], after: int | None
    ) -> bool:
        """One pass; True when a claim was lost (another sender moved a subscription meanwhile)."""
        now_ms = self._now_ms()
        prefetch: Future[list[tuple[int, str]] | None] | None = None
        if after is not None:
            prefetch = _PREFETCH.submit(self._read_backlog, store_id, after)
        listeners = self.subscriptions.listeners(store_id)  # a failure leaves the read to finish
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
            return False  # a read under way is left to finish (nobody needs it)
        prefetched = prefetch.result() if prefetch is not None else None
        # The events after the lowest sent_seq, read once for all. A subscription ahead of the
        # last one read (live since it was read) is not behind, so it is skipped.
        low = min(sub.sent_seq for sub in live)
        if prefetched is not None and after is not None and low >= after:
            items = [item for item in prefetched if item[0] > low]
        else:
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
        while behind:
            low = min(sub.sent_seq for sub in behind)
            items = self._read_backlog(store_id, low)
            if items is not None:
                return items, behind
            for sub in behind:
                if sub.sent_seq == low:
                    close(sub.key.connection_id, "too far behind")
            behind = [sub for sub in behind if sub.sent_seq > low]
        return [], []

    def _read_backlog(self, store_id: str, after: int) -> list[tuple[int, str]] | None:
        """The encoded events after ``after`` (None: more than ``max_backlog_events``)."""
        cap = self.settings.max_backlog_events
        items: list[tuple[int, str]] = []
        events: Iterator[StoredEvent] = self._events_after(store_id, after)
        try:
            for event in events:
                items.append((event.seq_num, encode_pull_item(event.event_json, event.created_at)))
                if len(items) > cap:
                    return None
        finally:
            close_events = getattr(events, "close", None)
            if close_events is not None:
                close_events()
        return items

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
