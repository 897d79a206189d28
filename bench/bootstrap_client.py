"""The client side of the bootstrap benchmark (run in a fresh process): ``URL STORE_ID``."""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from stratasync.client import Store
from stratasync.client.todos import schema
from stratasync.client.transport import SyncHttpTransport


class CountingTransport(SyncHttpTransport):
    requests = 0

    def _exchange(self, tag, body):  # type: ignore[no-untyped-def]
        CountingTransport.requests += 1
        return super()._exchange(tag, body)

    def archive_manifest(self, after):  # type: ignore[no-untyped-def]
        CountingTransport.requests += 1
        return super().archive_manifest(after)


def _peak_rss_kb() -> int:
    """This process's peak resident set: /proc's VmHWM where there is one. (Linux carries a
    parent's peak into ``ru_maxrss`` of a child it forks, across the exec: a bench process
    holding a large moto would show as the client's.)"""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    url, store_id = sys.argv[1:3]
    with tempfile.TemporaryDirectory() as folder:
        transport = CountingTransport(url, store_id, timeout=60)
        with Store(schema, store_id, str(Path(folder) / "client.db"), transport=transport) as store:
            started = time.perf_counter()
            state = store.bootstrap()
            bootstrapped = time.perf_counter() - started
            store.sync(timeout=300)
            total = time.perf_counter() - started
            rows = store.query("SELECT COUNT(*) FROM todos")[0][0]
            assert rows == store.upstream_head, (rows, store.upstream_head)
    peak_kb = _peak_rss_kb()
    print(
        json.dumps(
            {
                "segments": state.segments_done,
                "bytes": state.bytes_downloaded,
                "events": rows,
                "bootstrap_seconds": round(bootstrapped, 2),
                "total_seconds": round(total, 2),
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "backend_requests": CountingTransport.requests,
            }
        )
    )


if __name__ == "__main__":
    main()
