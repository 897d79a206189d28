"""Fast bootstrap: a client far behind reads archived segments straight from S3.

The backend's ``GET /archive`` lists the sealed segments after the client's upstream head,
with presigned GET URLs. Each segment is streamed to a spooled temporary file while its
SHA-256 is computed, checked against the manifest, then decompressed line by line and applied
in pages, so the whole log is never held in memory. The rest comes through ordinary pulls.
"""

from __future__ import annotations

import hashlib
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stratasync.client import jsoncodec
from stratasync.client.errors import BackendIdMismatchError, SegmentChecksumError, TransportError
from stratasync.client.transport import SyncHttpTransport
from stratasync.client.wstransport import SyncWsTransport
from stratasync.protocol.segment_format import SEGMENT_FORMAT, iter_segment_lines

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


_END = object()


def _apply_segments(
    engine: SyncEngine,
    transport: SyncHttpTransport,
    segments: list[dict[str, Any]],
    state: BootstrapProgress,
    progress: Callable[[BootstrapProgress], None] | None,
    page_events: int,
) -> None:
    """Download and decode segments in a second thread while this one applies their pages.

    SQLite releases the GIL while it works, so decoding the next page overlaps applying this
    one; the queue is bounded, so at most a few pages are ever held in memory.
    """
    pages: queue.Queue[Any] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def offer(item: Any) -> None:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for segment in segments:
                for page in _segment_pages(transport, segment, state, page_events):
                    offer(page)
                    if stop.is_set():
                        return
                offer(None)  # this segment is done
        except BaseException as error:  # handed to the applying thread
            offer(error)
        finally:
            offer(_END)

    producer = threading.Thread(target=produce, name="stratasync-bootstrap-download", daemon=True)
    producer.start()
    try:
        while True:
            item = pages.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            if item is None:
                state.segments_done += 1
                if progress is not None:
                    progress(state)
                continue
            events, stamps, texts = item
            engine.rebaser.apply_pulled(events, stamps, texts)
            state.events += len(events)
            state.last_seq_num = events[-1]["seqNum"]
            if progress is not None:
                progress(state)
    finally:
        stop.set()
        producer.join()


def _segment_pages(
    transport: SyncHttpTransport, segment: dict[str, Any], state: BootstrapProgress, page_events: int
) -> Iterator[tuple[list[dict[str, Any]], list[str | None], list[str]]]:
    """One segment, downloaded to a spooled file and checked, as pages of decoded events."""
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        hasher = _HashingWriter(spool)
        size = transport.download(segment["url"], hasher)
        state.bytes_downloaded += size
        if size != segment["size"] or hasher.hexdigest() != segment["sha256"]:
            raise SegmentChecksumError(
                f"segment {segment['firstSeqNum']}..{segment['lastSeqNum']}: size or SHA-256 does not match"
            )
        spool.seek(0)
        events: list[dict[str, Any]] = []
        stamps: list[str | None] = []
        texts: list[str] = []
        for _, created_at, event_json in iter_segment_lines(spool):  # type: ignore[arg-type]
            events.append(jsoncodec.loads(event_json))
            stamps.append(created_at)
            texts.append(event_json)
            if len(events) >= page_events:
                yield events, stamps, texts
                events, stamps, texts = [], [], []
        if events:
            yield events, stamps, texts


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
