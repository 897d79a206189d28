"""The live-sync storage contract: WebSocket connections and the live pulls they subscribed.

A *connection* is one WebSocket of one store (its URL names the store). A *subscription* is one
live pull on it, keyed by ``(store, connection id, request id)`` (request ids are unique per
client process, not per connection). A subscription is in one of three states:

* ``catchup`` - the Lambda that serves the pull is sending the stored events; it holds a *lease*
  until a time by which it is certainly dead (its invocation's deadline plus a margin). Nobody
  else sends to it. It ends with :meth:`SubscriptionStorage.go_live`.
* ``live`` - the fan-out sends every new commit to it. ``sent_seq`` is the last event sent; a
  sender first *claims* the range it will send (``sending``), until a time by which it is
  certainly dead (``sending_until_ms``: its invocation's deadline plus a margin), sends it, then
  *releases* the claim and moves ``sent_seq`` on. Another sender that finds a claim before that
  time waits for it; after it, the claimant died mid-send.
* ``interrupted`` - the client interrupted the pull (kept as a tombstone, so a Pull that arrives
  after its Interrupt does not subscribe).

:meth:`SubscriptionStorage.go_live` is the one step that spans the eventlog: it turns a
catch-up live only if the store's head is still ``sent_seq``, atomically. Under the commit
invariant (:mod:`stratasync.storage.base`) "the head is X" is "no batch was committed on parent
X", so an adapter checks the absence of that commit record in the same transaction.

Sending goes through another port, :class:`ConnectionGateway` (API Gateway's ``@connections``).

Every item ends with its connection (a TTL of the connection's longest life); expired ones are
never returned.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum

from stratasync.protocol.errors import StratasyncError


class SubscriptionStatus(StrEnum):
    CATCHUP = "catchup"
    LIVE = "live"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, order=True)
class SubscriptionKey:
    """One live pull: the store, the connection, and the client's request id."""

    store_id: str
    connection_id: str
    request_id: str


@dataclass(frozen=True)
class Connection:
    """One WebSocket connection of one store (``expires_at``: epoch seconds, its longest life)."""

    connection_id: str
    store_id: str
    connected_at_ms: int
    expires_at: int


@dataclass(frozen=True)
class Subscription:
    """A subscription as stored: ``sent_seq`` is the last event its client was sent;
    ``lease_until_ms`` the catch-up owner's lease; ``sending`` the target of a claimed send and
    ``sending_until_ms`` the time by which its sender is certainly dead (None: a claim written
    before claims had one, taken as expired)."""

    key: SubscriptionKey
    status: SubscriptionStatus
    sent_seq: int
    lease_until_ms: int | None = None
    sending: int | None = None
    sending_until_ms: int | None = None

    def claim_expired(self, now_ms: int) -> bool:
        """True when a claim is on it and its sender is certainly dead by ``now_ms``."""
        return self.sending is not None and (self.sending_until_ms is None or self.sending_until_ms < now_ms)


class Handoff(Enum):
    """What :meth:`SubscriptionStorage.go_live` did."""

    #: The head was ``sent_seq``: the subscription is live now (the fan-out takes it from here).
    LIVE = "live"
    #: A batch was committed on ``sent_seq``: the caller sends the events up to the new head first.
    HEAD_MOVED = "head_moved"
    #: The subscription is gone or no longer in catch-up (interrupted, or its connection closed).
    GONE = "gone"


@dataclass(frozen=True)
class StoreListeners:
    """Every connection of a store and every subscription on them (one strongly consistent read)."""

    connections: Sequence[Connection]
    subscriptions: Sequence[Subscription]


class SubscriptionStorage(ABC):
    """Connections and live subscriptions; every method is safe to call from many threads and
    processes at once, and every read is strongly consistent."""

    @abstractmethod
    def put_connection(self, connection: Connection) -> None:
        """Record a new connection (``$connect``)."""

    @abstractmethod
    def connection(self, connection_id: str) -> Connection | None:
        """The connection, or None when it is unknown, removed or expired."""

    @abstractmethod
    def remove_connection(self, connection_id: str, store_id: str) -> None:
        """Forget the connection and every subscription on it (idempotent)."""

    @abstractmethod
    def listeners(self, store_id: str) -> StoreListeners:
        """The store's connections and subscriptions (tombstones of interrupted ones included)."""

    @abstractmethod
    def open_subscription(
        self, key: SubscriptionKey, sent_seq: int, lease_until_ms: int, expires_at: int
    ) -> bool:
        """Create the subscription in catch-up at ``sent_seq`` with the owner's lease; False (and
        nothing written) when one with this key exists already (an Interrupt that came first)."""

    @abstractmethod
    def go_live(self, key: SubscriptionKey, sent_seq: int) -> Handoff:
        """Atomically: if no batch was committed on ``sent_seq`` in the store's eventlog and the
        subscription is still in catch-up, make it live at ``sent_seq``."""

    @abstractmethod
    def claim(self, key: SubscriptionKey, sent_seq: int, target: int, until_ms: int) -> bool:
        """Claim the send of the events after ``sent_seq`` up to ``target``, for a sender that
        is certainly dead by ``until_ms`` (epoch ms): only if the subscription is live at
        ``sent_seq`` with no claim on it. False: nothing written."""

    @abstractmethod
    def release(self, key: SubscriptionKey, target: int) -> bool:
        """The claimed send to ``target`` is done: ``sent_seq = target``, claim removed (only if
        that claim is still there; False when the subscription was removed or replaced)."""

    @abstractmethod
    def interrupt(self, key: SubscriptionKey, expires_at: int) -> None:
        """The client interrupted the pull: replace the subscription by a tombstone."""

    @abstractmethod
    def remove_subscription(self, key: SubscriptionKey) -> None:
        """Forget one subscription (idempotent)."""


class SendError(StratasyncError):
    """A message could not be sent to a connection."""


class ConnectionGoneError(SendError):
    """The connection is closed (``GoneException``, 410): nothing was sent."""


class SendThrottledError(SendError):
    """API Gateway refused the send for now (``LimitExceededException``): nothing was sent."""


class SendFailedError(SendError):
    """Any other failure (a timeout, a refused payload): the message may or may not have arrived."""


class ConnectionGateway(ABC):
    """API Gateway's ``@connections`` API (or the dev server's emulation of it)."""

    @abstractmethod
    def post(self, connection_id: str, data: str) -> None:
        """Send one message; raises :class:`SendError` (a subclass saying what is known)."""

    @abstractmethod
    def close(self, connection_id: str) -> None:
        """Close the connection (``DELETE``); a connection already gone is no error."""
