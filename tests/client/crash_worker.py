"""A store process that the crash test kills with SIGKILL at random moments.

It commits todos and syncs in a loop. Its materializers are slow (a few ms an event), so most of
its time is spent inside SQLite transactions: committing, or pulling and rebasing. It prints
``begin <step>`` / ``end <step>`` around each, so the test knows where the kill landed.

    python -m tests.client.crash_worker URL PATH STORE_ID NAME
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

from stratasync.client import RetryPolicy, Store, TransportError
from stratasync.client.rebase import MergeOutcome
from stratasync.client.schema import Schema
from stratasync.client.todos import schema as todo_schema
from stratasync.client.todos import todo_created, todos

SLOW_SECONDS = 0.004


def slow_schema() -> Schema:
    """The todo schema with the same tables and events, and materializers that take their time."""
    slow: dict[str, Any] = {}
    for name, materializer in todo_schema.materializers.items():

        def sleepy(args: Any, materializer: Any = materializer) -> Any:
            time.sleep(SLOW_SECONDS)
            return materializer(args)

        slow[name] = sleepy
    return todo_schema.extend(materializers=slow)


class NarratedStore(Store):
    def commit(self, *events: Any) -> None:
        print("begin commit", flush=True)
        super().commit(*events)
        print("end commit", flush=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        apply_pulled = self._rebaser.apply_pulled

        def narrated(incoming: Any, created_at: Any, encoded: Any = None) -> MergeOutcome:
            print(f"begin merge {len(incoming)}", flush=True)
            outcome = apply_pulled(incoming, created_at, encoded)
            print("end merge", flush=True)
            return outcome

        self._rebaser.apply_pulled = narrated  # type: ignore[method-assign]


def main() -> None:
    url, path, store_id, name = sys.argv[1:5]
    store = NarratedStore(
        slow_schema(),
        store_id,
        path,
        backend_url=url,
        retry=RetryPolicy(initial_seconds=0.01, max_seconds=0.1),
    )
    start = len(store.query(todos.where("id", "LIKE", f"{name}-%")))
    number = start + len(store.pending_events())
    print(f"opened with {len(store.pending_events())} pending", flush=True)
    while True:
        store.commit(
            *(
                todo_created(id=f"{name}-{number + offset}", text=f"{name} {number + offset}")
                for offset in range(5)
            )
        )
        number += 5
        with contextlib.suppress(TransportError):
            assert store._sync is not None
            store._sync.round()


if __name__ == "__main__":
    main()
