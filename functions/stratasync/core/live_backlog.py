"""What a fan-out reads: the encoded events after a live subscription's ``sent_seq``, once for all
the subscriptions of a store (:class:`BacklogReads`, a part of :class:`~stratasync.core.live.
LiveSync`; the rules are in :mod:`~stratasync.core.live_fanout`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from stratasync.core.live_connections import LiveConnections
from stratasync.protocol.rpc import encode_pull_item
from stratasync.storage.base import HotTierStorage, StoredEvent
from stratasync.storage.subscriptions import Subscription

__all__ = ["BacklogReads", "Items"]

#: Items ``(seqNum, encoded PullResponse item)`` in order.
Items = Sequence[tuple[int, str]]


class BacklogReads(LiveConnections):
    """The event reads of the fan-out (see the module docstring)."""

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
