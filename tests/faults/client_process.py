"""One harness client in its own process, so the harness can SIGKILL it and start it again.

It opens its store from its SQLite file, finds which of its events ``<name>-0`` ... are already
in the eventlog (a commit is one SQLite transaction, so after a kill each is either there or
not), commits the missing ones at a seeded pace while syncing in the background, then syncs
until caught up and prints ``done``.

    python -m tests.faults.client_process URL PATH STORE_ID NAME EVENTS SEED LIFE
"""

from __future__ import annotations

import random
import sys
import time

from stratasync.client import RetryPolicy, Store
from stratasync.client.todos import schema, todo_created

CLIENT_HEADER = "x-fault-client"


def own_numbers(store: Store, name: str) -> set[int]:
    """The numbers of this client's events already in the local eventlog."""
    prefix = f"{name}-"
    return {
        int(event.args["id"][len(prefix) :])
        for event in store.events()
        if event.name == todo_created.name and str(event.args.get("id", "")).startswith(prefix)
    }


def main() -> None:
    url, path, store_id, name, events, seed, life = sys.argv[1:8]
    rng = random.Random(f"{seed}:process:{name}:{life}")
    store = Store(
        schema,
        store_id,
        path,
        backend_url=url,
        headers={CLIENT_HEADER: name},
        poll_interval=0.5,
        retry=RetryPolicy(initial_seconds=0.02, max_seconds=0.3),
    )
    have = own_numbers(store, name)
    print(f"opened with {len(have)} of {events} committed, {len(store.pending_events())} pending", flush=True)
    store.start_sync()
    for number in range(int(events)):
        if number in have:
            continue
        store.commit(todo_created(id=f"{name}-{number}", text=f"{name} todo {number}"))
        print(f"committed {number}", flush=True)
        time.sleep(rng.uniform(0.05, 0.5))
    store.stop_sync()
    store.sync(timeout=120)
    store.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
