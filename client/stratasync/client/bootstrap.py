"""Fast bootstrap: a client far behind reads archived segments straight from S3.

The backend's ``GET /archive`` lists the sealed segments after the client's upstream head,
with presigned GET URLs. Segments are downloaded a few at a time, each streamed to a spooled
temporary file while its SHA-256 is computed and checked against the manifest; then each is
decompressed a block at a time and applied in pages, each page one transaction, so the whole
log is never held in memory and a crash loses at most the page being applied (the next
bootstrap resumes after the last one). The rest comes through ordinary pulls.
"""

from __future__ import annotations

import gc
import hashlib
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stratasync.client import jsoncodec
from stratasync.client.errors import BackendIdMismatchError, SegmentChecksumError, TransportError
from stratasync.client.transport import SyncHttpTransport
from stratasync.client.wstransport import SyncWsTransport
from stratasync.protocol.segment_format import SEGMENT_FORMAT, iter_segment_pages

if TYPE_CHECKING:
    from stratasync.client.sync import SyncEngine


@dataclass
class BootstrapProgress:
    """How far a bootstrap has come (for progress bars)."""

    segments_done: int = 0
    segments_known: int = 0
    events: int = 0
    bytes_downloaded: int = 0
    manifest_requests: int = 0
    last_seq_num: int = 0


def bootstrap(
    engine: SyncEngine,
    *,
    progress: Callable[[BootstrapProgress], None] | None = None,
    page_events: int = 5_000,
) -> BootstrapProgress:
    """Apply every archived segment after the upstream head of ``engine``'s store; returns what was done.

    The caller holds ``engine.lock``.
    """
    transport = engine.transport
    if isinstance(transport, SyncWsTransport):
        transport = transport.http  # the archive is served over HTTP
    db = engine.db
    state = BootstrapProgress()
    if not isinstance(transport, SyncHttpTransport):
        return state
    while True:
        manifest = transport.archive_manifest(db.upstream_head())
        state.manifest_requests += 1
        if manifest is None:
            return state
        if manifest.get("format") != SEGMENT_FORMAT:
            raise TransportError(f"unsupported segment format {manifest.get('format')!r}")
        known = db.backend_id()
        if known is None:
            engine.rebaser.remember_backend_id(str(manifest["backendId"]))
        elif known != manifest["backendId"]:
            engine.reset(BackendIdMismatchError(str(manifest["backendId"]), known))
            continue
        head = db.upstream_head()
        segments = [segment for segment in manifest["segments"] if segment["lastSeqNum"] > head]
        state.segments_known += len(manifest["segments"])
        state.segments_done += len(manifest["segments"]) - len(segments)
        _apply_segments(engine, transport, segments, state, progress, page_events)
        if not manifest.get("more") or not manifest["segments"]:
            return state


#: Segments downloaded at once (presigned GETs, each on its own connection of the pool).
PARALLEL_DOWNLOADS = 4
#: Segments downloaded ahead of the one being applied (each held compressed, spooled to disk
#: past 8 MB): the bound on what a bootstrap holds besides the page being applied.
DOWNLOADS_AHEAD = 8


def _apply_segments(
    engine: SyncEngine,
    transport: SyncHttpTransport,
    segments: list[dict[str, Any]],
    state: BootstrapProgress,
    progress: Callable[[BootstrapProgress], None] | None,
    page_events: int,
) -> None:
    """Download segments in background threads while this one decodes and applies their pages.

    The downloads (network and SHA-256, which run without the GIL) go ahead in parallel, a
    bounded window of them. Decoding stays in this thread with the applying: a second thread
    busy in Python would hold the GIL that SQLite's thread needs back after each row it writes.
    """
    if not segments:
        return
    downloads: deque[Future[Any]] = deque()
    pool = ThreadPoolExecutor(PARALLEL_DOWNLOADS, thread_name_prefix="stratasync-bootstrap-download")
    upcoming = iter(segments)
    try:
        with _collector_paused(), engine.db.bulk_loading():
            _apply_downloads(engine, transport, upcoming, downloads, pool, state, progress, page_events)
    finally:
        for download in downloads:
            download.cancel()
        pool.shutdown(wait=True)
        for download in downloads:
            if not download.cancelled() and download.exception() is None:
                download.result()[0].close()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a while (back on after, if it was on).

    A bootstrap allocates millions of short-lived dicts and tuples that hold no cycles (decoded
    events, their args, parameter rows); each 700 of them trigger a collection, and the older
    generations get traversed again and again: about a tenth of a bootstrap's time, for nothing.
    Reference counting still frees everything as it goes.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _apply_downloads(
    engine: SyncEngine,
    transport: SyncHttpTransport,
    upcoming: Iterator[dict[str, Any]],
    downloads: deque[Future[Any]],
    pool: ThreadPoolExecutor,
    state: BootstrapProgress,
    progress: Callable[[BootstrapProgress], None] | None,
    page_events: int,
) -> None:
    """Apply the segments of ``upcoming`` in order, ``DOWNLOADS_AHEAD`` of them downloading."""
    while True:
        for segment in upcoming:
            downloads.append(pool.submit(_download, transport, segment))
            if len(downloads) >= DOWNLOADS_AHEAD:
                break
        if not downloads:
            return
        spool, size = downloads.popleft().result()
        with spool:
            state.bytes_downloaded += size
            for events, stamps, texts in _decoded_pages(spool, page_events):
                engine.rebaser.apply_pulled(events, stamps, texts)
                state.events += len(events)
                state.last_seq_num = events[-1]["seqNum"]
                if progress is not None:
                    progress(state)
        state.segments_done += 1
        if progress is not None:
            progress(state)


def _download(transport: SyncHttpTransport, segment: dict[str, Any]) -> tuple[Any, int]:
    """One segment downloaded to a spooled file and checked: (the file, at its start; its size)."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - handed to the caller
    try:
        hasher = _HashingWriter(spool)
        size = transport.download(segment["url"], hasher)
        if size != segment["size"] or hasher.hexdigest() != segment["sha256"]:
            raise SegmentChecksumError(
                f"segment {segment['firstSeqNum']}..{segment['lastSeqNum']}: size or SHA-256 does not match"
            )
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool, size


def _decoded_pages(
    spool: Any, page_events: int
) -> Iterator[tuple[list[dict[str, Any]], list[str | None], list[str]]]:
    """The pages of a checked segment: (decoded events, createdAt of each, JSON text of each)."""
    for stamps, texts in iter_segment_pages(spool, page_events):
        yield jsoncodec.loads_many(texts), stamps, texts  # type: ignore[misc]


class _HashingWriter:
    """Writes through to a file while computing the SHA-256 of what passed."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self._hash = hashlib.sha256()

    def write(self, data: bytes, /) -> int:
        self._hash.update(data)
        self._sink.write(data)
        return len(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
