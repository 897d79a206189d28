"""Live queries: a callback with a query's result now and after each transaction that changed it.

**Threads.** A subscription's callback runs in the thread whose transaction changed the result:
the caller of :meth:`Store.commit`, of :meth:`Store.sync`, or the background sync thread
(``stratasync-<store id>``). The first call, with the current result, runs inside
:meth:`Store.subscribe`. To receive them elsewhere, pass ``deliver=``:

* an asyncio event loop: callbacks run in that loop (``loop.call_soon_threadsafe``), or use
  :meth:`Store.watch` (``async for rows in store.watch(query)``);
* an :class:`Inbox`: callbacks wait there until the owning thread calls :meth:`Inbox.run_pending`;
* any ``schedule(function)`` callable (e.g. an executor's ``submit``, or a GUI toolkit's
  "run in the UI thread" function).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratasync.client.localdb import LocalDatabase

logger = logging.getLogger("stratasync.client")

Deliver = Callable[[Callable[[], None]], Any] | asyncio.AbstractEventLoop | None
"""Where subscription callbacks run (see the module docstring)."""


class Inbox:
    """Subscription callbacks waiting for a thread of the app's choice to run them.

    ``store.subscribe(query, callback, deliver=inbox)``; then, in that thread,
    ``inbox.run_pending()`` (each waiting callback, in order) or ``inbox.run_pending(timeout=1.0)``
    (wait up to a second for the first one).
    """

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def __call__(self, call: Callable[[], None]) -> None:
        self._calls.put(call)

    def run_pending(self, timeout: float | None = 0.0) -> int:
        """Run the waiting callbacks (waiting up to ``timeout`` s for the first; None: forever).

        Returns how many ran.
        """
        ran = 0
        wait = timeout
        while True:
            try:
                call = self._calls.get(block=wait is None or wait > 0, timeout=wait)
            except queue.Empty:
                return ran
            wait = 0.0
            try:
                call()
            except Exception:
                logger.exception("subscription callback failed")
            ran += 1


class Subscription:
    """A live query: ``callback(result)`` now and whenever its result changes."""

    def __init__(
        self,
        registry: Subscriptions,
        statement: str,
        params: tuple[Any, ...],
        run: Callable[[], Any],
        callback: Callable[[Any], None],
        deliver: Deliver = None,
    ) -> None:
        self._registry = registry
        self.statement = statement
        self.params = params
        self.callback = callback
        self._run = run
        self._deliver = deliver
        self._last: Any = _NOTHING
        self.tables = registry.db.tables_read_by(statement, params)

    def refresh(self) -> None:
        """Run the query and call back if its result differs from the last one delivered."""
        result = self._run()
        if result == self._last:
            return
        self._last = result
        deliver = self._deliver
        if deliver is None:
            self.callback(result)
        elif isinstance(deliver, asyncio.AbstractEventLoop):
            deliver.call_soon_threadsafe(self.callback, result)
        else:
            deliver(lambda: self.callback(result))

    @property
    def result(self) -> Any:
        """The result last delivered."""
        return None if self._last is _NOTHING else self._last

    def unsubscribe(self) -> None:
        """Stop calling back (a callback already handed to ``deliver`` still runs)."""
        self._registry.drop(self)


_NOTHING: Any = object()


class Subscriptions:
    """The live queries of one store, refreshed after transactions that changed their tables."""

    def __init__(self, db: LocalDatabase) -> None:
        self.db = db
        self._items: list[Subscription] = []
        self._lock = threading.Lock()

    def add(self, subscription: Subscription) -> None:
        with self._lock:
            self._items.append(subscription)
        subscription.refresh()

    def drop(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._items:
                self._items.remove(subscription)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def notify(self) -> None:
        """Refresh the subscriptions whose tables the last transactions changed."""
        changed = self.db.take_changed_tables()
        if not changed:
            return
        with self._lock:
            affected = [sub for sub in self._items if sub.tables & changed]
        for subscription in affected:
            try:
                subscription.refresh()
            except Exception:  # a subscriber's bug must not break committing or syncing
                logger.exception("subscription callback failed")


__all__ = ["Deliver", "Inbox", "Subscription", "Subscriptions"]
