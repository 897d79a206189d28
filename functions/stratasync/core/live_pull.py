"""Pulls over WebSocket: one-shot pulls, and live pulls that catch up under a lease and hand over.

**A live pull** (:meth:`LivePulls.pull_live`, in the Lambda that receives it) opens its
subscription in *catch-up* at the client's cursor, holding a lease until its own invocation's
deadline (plus a margin), sends the stored events up to the head it read, then hands over:
``go_live`` makes it *live* only if no batch was committed on the last event it sent (the head is
unchanged, one transaction with the eventlog); otherwise it sends the newer events and tries again.
Nothing else sends to a subscription in catch-up; from then on the fan-out
(:mod:`~stratasync.core.live_fanout`) does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from stratasync.core.live_connections import LiveConnections
from stratasync.protocol.messages import Cursor
from stratasync.protocol.rpc import PullPage
from stratasync.protocol.ws import encode_chunk, encode_exit_success
from stratasync.storage.subscriptions import (
    Connection,
    ConnectionGoneError,
    Handoff,
    SubscriptionKey,
    SubscriptionStatus,
)

# The live-sync rules log as one (stratasync.core.live).
logger = logging.getLogger("stratasync.core.live")

__all__ = ["LivePulls", "PullSent"]


class _Deadline(Exception):  # noqa: N818 - a signal inside this module
    """The invocation is about to run out of time."""


@dataclass(frozen=True)
class PullSent:
    """What a pull over WebSocket sent."""

    events: int
    messages: int
    #: The subscription is live now (a live pull whose catch-up completed).
    live: bool = False


class LivePulls(LiveConnections):
    """The pulls of live sync (see the module docstring)."""

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
        send_until = deadline_ms - self.settings.deadline_margin_ms
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
