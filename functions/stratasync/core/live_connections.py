"""Live sync's connections: its settings, and recording, closing and sending to connections.

:class:`LiveConnections` is what both halves of live sync stand on
(:mod:`~stratasync.core.live_pull` and :mod:`~stratasync.core.live_fanout`, put together as
:class:`~stratasync.core.live.LiveSync`): the two ports,
:class:`~stratasync.storage.subscriptions.SubscriptionStorage` (connections and subscriptions)
and :class:`~stratasync.storage.subscriptions.ConnectionGateway` (API Gateway's
``@connections``: send to, or close, a connection), the clock, and one message sent with retries
while API Gateway throttles.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from stratasync.core.service import SyncService
from stratasync.protocol.ws import chunk_item_bytes
from stratasync.storage.subscriptions import (
    Connection,
    ConnectionGateway,
    SendFailedError,
    SendThrottledError,
    SubscriptionStorage,
)

__all__ = ["LiveConnections", "LiveSettings"]


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
    #: Passes of the push path's fan-out while claims are contended (the stream's fan-out
    #: keeps trying until its deadline).
    max_fan_out_rounds: int = 5
    #: What an invocation keeps of its time for closing and answering: sending and waiting stop
    #: this long before its deadline.
    deadline_margin_ms: int = 2_000
    #: When a fan-out's caller gives no deadline (tests, tools), its invocation is taken to end
    #: this long after it starts (the fanout function's timeout).
    fan_out_seconds: float = 30.0
    #: A push fans its batch out itself, right after the commit (the stream's fan-out stays the
    #: safety net); off: only the stream's fan-out sends.
    push_fan_out: bool = True
    #: A store with more live subscriptions than this is left to the stream's fan-out (so that a
    #: push's answer never waits for a large room).
    push_fan_out_max_subscriptions: int = 32


class LiveConnections:
    """The connections of live sync and the sending to them (see the module docstring)."""

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
