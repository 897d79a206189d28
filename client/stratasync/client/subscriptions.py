"""Live queries: a callback with a query's rows now and after each transaction that changed them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratasync.client.localdb import LocalDatabase

logger = logging.getLogger("stratasync.client")


class Subscription:
    """A live query: ``callback(rows)`` now and whenever a table the query reads has changed."""

    def __init__(
        self,
        registry: Subscriptions,
        statement: str,
        params: Sequence[Any],
        callback: Callable[[list[Any]], None],
        run: Callable[[], list[Any]],
    ) -> None:
        self._registry = registry
        self.statement = statement
        self.params = tuple(params)
        self.callback = callback
        self._run = run
        self.tables = registry.db.tables_read_by(statement, self.params)

    def refresh(self) -> None:
        """Run the query and call back with its rows."""
        self.callback(self._run())

    def unsubscribe(self) -> None:
        """Stop calling back."""
        self._registry.drop(self)


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
