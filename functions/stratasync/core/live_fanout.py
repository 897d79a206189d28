"""The fan-out: every commit brought to every live subscription of its store, once and in order.

Two senders do it, with the same rules:

* **the push** (:meth:`FanOut.publish`), right after its commit, with the batch's events in hand:
  no stream hop and no read of the events. It is an optimisation only: it never fails the push,
  waits for other senders only briefly, and leaves a store with many live subscriptions alone;
* **the stream's fan-out** (:meth:`FanOut.fan_out`, the DynamoDB stream consumer, per store with
  new commits), the safety net: it does not return until every live subscription is at the head
  it read, or closed; a subscription the push brought there already is skipped.

A round reads the store's subscriptions and its head (both strongly consistent) and brings each
live subscription from its ``sent_seq`` to the head: it *claims* the range first (conditional on
``sent_seq`` and no other claim, until a time by which this invocation is certainly dead), sends
it in order, then releases the claim and moves ``sent_seq``. A claim found on a subscription is
another sender at work: it is waited for until it is released or its time is up. What a sender
cannot be sure about it does not guess at: it *closes the connection* (``DELETE @connections``)
and the client reconnects and pulls again from its real cursor:

* a claim whose time is up (its sender died mid-send);
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
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum

from stratasync.core.live_backlog import BacklogReads, Items
from stratasync.core.service import PushResult
from stratasync.protocol.errors import StratasyncError
from stratasync.protocol.limits import MAX_PULL_EVENTS_PER_CHUNK
from stratasync.protocol.rpc import PullPage, encode_pull_item
from stratasync.protocol.ws import encode_chunk
from stratasync.storage.base import StorageError
from stratasync.storage.subscriptions import ConnectionGoneError, SendError, Subscription, SubscriptionStatus

# The live-sync rules log as one (stratasync.core.live).
logger = logging.getLogger("stratasync.core.live")

__all__ = ["Delivery", "FanOut", "FanOutReport", "SenderBusyError", "paginate"]

#: Reads the events of a fan-out while its subscriptions are read (one per process suffices:
#: a fan-out waits for its read before the next one starts).
_PREFETCH = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fan-out-read")

#: The pauses between rounds while another sender holds a claim: doubling from the first to the
#: longest (a claim lasts one send per message, milliseconds).
_FIRST_PAUSE_SECONDS = 0.005
_LONGEST_PAUSE_SECONDS = 0.05


class SenderBusyError(StratasyncError):
    """Another sender still held a claim on a subscription when this invocation ran out of time
    (the stream consumer retries the batch)."""


class Delivery(Enum):
    DELIVERED = "delivered"
    CLAIM_LOST = "claim_lost"
    CLOSED = "closed"
    GONE = "gone"


class _Round(Enum):
    DONE = "done"
    #: A claim was lost (another sender moved a subscription meanwhile): read again at once.
    AGAIN = "again"
    #: Another sender holds a claim the round needs released: read again after a pause.
    WAIT = "wait"


@dataclass(frozen=True)
class _Sender:
    """Who runs a fan-out, and what it knows: when its invocation ends; the push has its batch
    (``known``), gives up after ``max_rounds`` and leaves large rooms alone; the stream knows
    its records' highest parent."""

    deadline_ms: int
    known: Items | None = None
    max_rounds: int | None = None
    max_subscriptions: int | None = None
    last_parent: int | None = None
    #: The pushing connection: its own echo is sent after everyone else's chunk.
    pusher: str | None = None


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
    #: Rounds that found another sender's claim and waited for it.
    waits: int = 0
    #: The push path left the store to the stream's fan-out (too many subscriptions, or an error).
    skipped: bool = False


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


class FanOut(BacklogReads):
    """The fan-out of live sync (see the module docstring)."""

    def fan_out(
        self,
        store_id: str,
        after: int | None = None,
        *,
        last_parent: int | None = None,
        deadline_ms: int | None = None,
    ) -> FanOutReport:
        """The stream's fan-out: bring every live subscription of the store to its head (see the
        module docstring), waiting for other senders' claims.

        ``after``: where the new commits start (the lowest parent of the stream's commit records),
        a hint. Unless pushes fan out themselves, the events after it are read while the
        subscriptions are, not after: the usual live subscription sits there, so delivery waits
        for one storage read instead of two. A subscription behind ``after`` gets the general
        read. ``last_parent``: the highest parent of those records. When every live subscription
        is past it, the records' commits have all been delivered (a ``sent_seq`` is always the
        last event of a batch), so nothing is read: the usual case when the push fanned out
        itself. ``deadline_ms``: when this invocation ends (epoch ms; default:
        ``fan_out_seconds`` from now).

        Raises :class:`~stratasync.storage.base.StorageError` or :class:`SendError` (a connection
        that could not be closed) after doing what it could, and :class:`SenderBusyError` when
        another sender's claim outlasted the invocation: the stream consumer's retry of the batch
        then finishes the job (a subscription at the head is skipped)."""
        if deadline_ms is None:
            deadline_ms = self._now_ms() + int(self.settings.fan_out_seconds * 1000)
        report = FanOutReport(store_id)
        errors: list[Exception] = []
        outcome = self._fan_out(
            store_id, report, errors, after, _Sender(deadline_ms, last_parent=last_parent)
        )
        if errors:
            raise errors[0]
        if outcome is not _Round.DONE:
            raise SenderBusyError(
                f"store {store_id!r}: another sender still held a claim after {report.rounds} rounds"
            )
        return report

    def publish(
        self, store_id: str, pushed: PushResult, *, deadline_ms: int, pusher: str | None = None
    ) -> FanOutReport | None:
        """The push path's fan-out: right after a commit, bring the live subscriptions to its last
        event with the batch's events in hand (no stream hop, no read of the events).

        Never raises: whatever it leaves undone (a store with more than
        ``push_fan_out_max_subscriptions`` live subscriptions, a claim held by another sender
        beyond ``max_fan_out_rounds`` short waits, a storage error) the stream's fan-out does.
        ``deadline_ms``: when the push's invocation ends (its claims last until then, plus a
        margin). ``pusher``: the pushing connection, whose echo goes last (the pusher has its events
        already, and waits for its answer, which comes after the fan-out anyway). None when it did
        nothing: ``push_fan_out`` is off, or the push was a retry of a committed batch (its first
        invocation published it)."""
        if not self.settings.push_fan_out or pushed.already_committed or not pushed.batch:
            return None
        known = [(seq, encode_pull_item(text, pushed.committed_at)) for seq, text in pushed.batch]
        report = FanOutReport(store_id)
        errors: list[Exception] = []
        try:
            sender = _Sender(
                deadline_ms,
                known=known,
                max_rounds=self.settings.max_fan_out_rounds,
                max_subscriptions=self.settings.push_fan_out_max_subscriptions,
                pusher=pusher,
            )
            outcome = self._fan_out(store_id, report, errors, pushed.parent, sender)
        except Exception as error:
            errors.append(error)
            outcome = _Round.AGAIN
        if errors:
            report.skipped = True
            logger.warning(
                "the push's fan-out failed: the stream's fan-out takes over",
                extra={"store_id": store_id, "error": f"{type(errors[0]).__name__}: {errors[0]}"},
            )
        elif outcome is not _Round.DONE:
            logger.info(
                "the push's fan-out left contended subscriptions to the stream", extra={"store_id": store_id}
            )
        return report

    def _fan_out(
        self, store_id: str, report: FanOutReport, errors: list[Exception], after: int | None, sender: _Sender
    ) -> _Round:
        """Rounds until one is done, or the sender's ``max_rounds``, or its deadline (less the margin)."""
        stop_at_ms = sender.deadline_ms - self.settings.deadline_margin_ms
        pause = _FIRST_PAUSE_SECONDS
        while True:
            report.rounds += 1
            hint = after if sender.known is not None or report.rounds == 1 else None
            outcome = self._fan_out_round(store_id, report, errors, hint, sender)
            if outcome is _Round.DONE or errors:
                return outcome
            if sender.max_rounds is not None and report.rounds >= sender.max_rounds:
                return outcome
            if outcome is _Round.WAIT:
                if self._now_ms() + pause * 1000 >= stop_at_ms:
                    return outcome
                report.waits += 1
                self._sleep(pause)
                pause = min(pause * 2, _LONGEST_PAUSE_SECONDS)
            elif self._now_ms() >= stop_at_ms:
                return outcome

    def _fan_out_round(
        self, store_id: str, report: FanOutReport, errors: list[Exception], after: int | None, sender: _Sender
    ) -> _Round:
        """One pass. ``sender.known``: the events after ``after`` as far as the sender has them
        (the push's batch), else they are read (beside the subscriptions when ``after`` is given
        and pushes do not fan out themselves)."""
        known, max_subscriptions = sender.known, sender.max_subscriptions
        now_ms = self._now_ms()
        prefetch: Future[list[tuple[int, str]] | None] | None = None
        if after is not None and known is None and not self.settings.push_fan_out:
            prefetch = _PREFETCH.submit(self._read_backlog, store_id, after)
        listeners = self.subscriptions.listeners(store_id)  # a failure leaves the read to finish
        if max_subscriptions is not None and max_subscriptions < sum(
            1 for sub in listeners.subscriptions if sub.status is SubscriptionStatus.LIVE
        ):
            report.skipped = True
            return _Round.DONE  # a large room: the stream's fan-out serves it
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
        # Another sender's claim up to ``sending``: the push path need not wait for one that goes
        # as far as its batch (the stream's fan-out checks that it was released); nor for one on a
        # subscription it leaves to the general read.
        known_head = known[-1][0] if known else None
        live: list[Subscription] = []
        busy = False
        for sub in listeners.subscriptions:
            if sub.status is SubscriptionStatus.CATCHUP:
                if sub.lease_until_ms is not None and sub.lease_until_ms < now_ms:
                    close(sub.key.connection_id, "catch-up owner died")
            elif sub.status is SubscriptionStatus.LIVE:
                if sub.sending is None:
                    live.append(sub)
                elif sub.claim_expired(now_ms):
                    close(sub.key.connection_id, "a sender died mid-send")
                elif known_head is None or sub.sending < known_head:
                    busy = True
        waiting = _Round.WAIT if busy else _Round.DONE
        live = [sub for sub in live if sub.key.connection_id not in report.closed]
        if not live:
            return waiting  # a read under way is left to finish (nobody needs it)
        if sender.last_parent is not None and all(sub.sent_seq > sender.last_parent for sub in live):
            return waiting  # every live pull has the records' commits already
        # The events after the lowest sent_seq, read once for all. A subscription ahead of the
        # last one read (live since it was read) is not behind, so it is skipped.
        low = min(sub.sent_seq for sub in live)
        if known is not None and after is not None and low >= after:
            items: Items = [item for item in known if item[0] > low]
        else:
            prefetched = prefetch.result() if prefetch is not None else None
            if prefetched is not None and after is not None and low >= after:
                items = [item for item in prefetched if item[0] > low]
            else:
                items, live = self._backlog(store_id, live, close)
        if not items:
            return waiting  # nothing after the lowest sent_seq: everyone is at the head
        head = items[-1][0]
        report.head = max(report.head, head)
        behind = sorted(
            (s for s in live if s.sent_seq < head), key=lambda s: s.key.connection_id == sender.pusher
        )
        if not behind:
            return waiting
        lost = False
        until_ms = sender.deadline_ms + self.settings.lease_margin_ms

        def deliver(sub: Subscription) -> None:
            nonlocal lost
            outcome, events, messages = self._deliver(sub, head, items, until_ms)
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
        elif self.settings.send_concurrency == 1:  # one after another, in this thread
            for sub in behind:
                try:
                    deliver(sub)
                except Exception as error:
                    errors.append(error)
        else:
            with ThreadPoolExecutor(min(len(behind), self.settings.send_concurrency)) as pool:
                for result in [pool.submit(deliver, sub) for sub in behind]:
                    try:
                        result.result()
                    except Exception as error:
                        errors.append(error)
        return _Round.AGAIN if lost else waiting

    def _deliver(
        self, sub: Subscription, head: int, items: Items, until_ms: int
    ) -> tuple[Delivery, int, int]:
        """Claim (until ``until_ms``), send (sent_seq, head] in order, release. A storage error
        on the way closes the connection: a claim of this sender that nobody releases would hold
        the pull until its time is up."""
        key = sub.key
        try:
            claimed = self.subscriptions.claim(key, sub.sent_seq, head, until_ms)
        except StorageError:  # perhaps written (a lost answer)
            logger.warning("a claim failed: the connection will be closed", exc_info=True)
            return Delivery.CLOSED, 0, 0
        if not claimed:
            return Delivery.CLAIM_LOST, 0, 0
        mine = [item for item in items if sub.sent_seq < item[0] <= head]
        events = messages = 0
        try:
            backend_id = self.service.store.backend_id(key.store_id)
            for page in paginate(mine, self.page_bytes):
                self.send(key.connection_id, encode_chunk(key.request_id, backend_id, page))
                events += len(page.items)
                messages += 1
        except ConnectionGoneError:
            self.subscriptions.remove_connection(key.connection_id, key.store_id)
            return Delivery.GONE, events, messages
        except (SendError, StorageError):
            logger.warning("a live send failed: the connection will be closed", exc_info=True)
            return Delivery.CLOSED, events, messages
        try:
            self.subscriptions.release(key, head)  # False: interrupted or closed meanwhile
        except StorageError:
            logger.warning("a release failed: the connection will be closed", exc_info=True)
            return Delivery.CLOSED, events, messages
        return Delivery.DELIVERED, events, messages
