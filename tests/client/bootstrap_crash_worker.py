"""A fresh store bootstrapping from the archive, that the crash test kills with SIGKILL mid-way.

Its materializers are slow (see :func:`tests.client.crash_worker.slow_schema`), so the bootstrap
takes a second or so and most of it is spent inside the transaction of a page. It prints
``opened <upstream head>``, then ``applied <seqNum>`` after each page, then ``done``.

    python -m tests.client.bootstrap_crash_worker URL PATH STORE_ID
"""

from __future__ import annotations

import sys

from stratasync.client import Store
from stratasync.client.bootstrap import BootstrapProgress
from tests.client.crash_worker import slow_schema


def main() -> None:
    url, path, store_id = sys.argv[1:4]
    with Store(slow_schema(), store_id, path, backend_url=url) as store:
        print(f"opened {store.upstream_head}", flush=True)

        def report(progress: BootstrapProgress) -> None:
            print(f"applied {progress.last_seq_num}", flush=True)

        store.bootstrap(progress=report)
        print("done", flush=True)


if __name__ == "__main__":
    main()
