"""Live sync over WebSocket: every commit reaches every live pull exactly once, in order.

The rules, over two small ports: :class:`~stratasync.storage.subscriptions.SubscriptionStorage`
(connections and subscriptions) and :class:`ConnectionGateway` (API Gateway's ``@connections``:
send to, or close, a connection). :class:`LiveSync` puts them together, one module each:

* :mod:`~stratasync.core.live_connections`: the settings, and recording, closing and sending to
  connections (with retries while API Gateway throttles);
* :mod:`~stratasync.core.live_pull`: **a live pull** (:meth:`LiveSync.pull_live`) catches up
  under a lease, then hands over with ``go_live`` (one transaction with the eventlog) only if the
  head did not move; nothing else sends to a subscription in catch-up;
* :mod:`~stratasync.core.live_fanout`: **the fan-out** claims, sends and releases each live
  subscription's range up to the head, waits for another sender's claim, and closes the
  connection whenever it cannot be sure (the client reconnects and pulls again from its real
  cursor); its messages stay within one API Gateway message. Two senders follow these rules:
  each push, with its batch in hand (:meth:`LiveSync.publish`), and the stream consumer as the
  safety net (:meth:`LiveSync.fan_out`); what they read is :mod:`~stratasync.core.live_backlog`.
"""

from __future__ import annotations

from stratasync.core.live_connections import LiveSettings
from stratasync.core.live_fanout import FanOut, FanOutReport, SenderBusyError
from stratasync.core.live_fanout import paginate as paginate  # moved; still importable from here
from stratasync.core.live_pull import LivePulls, PullSent
from stratasync.storage.subscriptions import (
    ConnectionGateway,
    ConnectionGoneError,
    SendError,
    SendFailedError,
    SendThrottledError,
)

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
    "SenderBusyError",
]


class LiveSync(LivePulls, FanOut):
    """The live-sync rules (see the module docstring): the pulls and the fan-out, on the
    connections of :class:`~stratasync.core.live_connections.LiveConnections`."""
