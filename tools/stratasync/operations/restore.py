"""``restore``: rebuild a store from its S3 segments after its DynamoDB items were lost.

What the archive holds is enough to bring the store back under its own backend id, so clients
go on from their cursors instead of resetting:

* the manifest (``store.json``, written by the archiver) names the backend id; each segment's
  metadata names it too, and where it sits in the log (parent, position);
* each segment's bytes carry its checksum (in its key, its metadata and S3's own), and its events
  carry their ``parentSeqNum``: the restore downloads every segment, checks every checksum and
  that the events form one chain from seqNum 0, and refuses (writing nothing) if not.

It then writes, fenced as a reset is (no request is served until it is done): ``meta`` with the
backend id, the segment index, and one tombstone per segment (the commit chain up to the last
sealed seqNum ``L``; a segment keeps events, not batch boundaries). The events after ``L`` were
only in DynamoDB and are lost by definition: a client whose cursor is past ``L`` holds some of them,
and its next pull tells it to start over (a cursor past the head, see
:meth:`stratasync.core.service.SyncService.pull`); a client at or before ``L`` goes on as if nothing
happened.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from stratasync.core.service import utc_now_iso
from stratasync.operations.journal import Journal, progress_bar
from stratasync.operations.target import Connection, OperationError
from stratasync.storage.base import LogHead, SegmentCorruptError, SegmentInfo, SegmentNotFoundError
from stratasync.storage.segments import StoreManifest, decode_segment, segments_prefix

RESTORE_STEPS = ("read-archive", "mark", "fence", "index", "commit-chain", "unfence", "finish")
_SEGMENT_NAME = re.compile(r"(\d{16})-(\d{16})-([0-9a-f]{16})\.gz")


@dataclass
class ArchiveView:
    """What a store's archive holds, checked."""

    backend_id: str | None
    #: Where the backend id comes from: "manifest", "segment metadata" or "--backend-id".
    backend_id_source: str
    chain: list[SegmentInfo]
    #: Objects that hold events of the chain but are not part of it (an archiver interrupted
    #: between writing and indexing a segment leaves one): not used.
    unused: list[str] = field(default_factory=list)
    #: Objects under the segments prefix that are not segments.
    strangers: list[str] = field(default_factory=list)

    @property
    def head(self) -> LogHead:
        if not self.chain:
            return LogHead(0, 0)
        return LogHead(self.chain[-1].last_seq_num, self.chain[-1].last_position)


@dataclass
class RestoreResult:
    store_id: str
    backend_id: str
    backend_id_source: str
    segments: int
    head: LogHead
    unused_objects: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "storeId": self.store_id,
            "backendId": self.backend_id,
            "backendIdFrom": self.backend_id_source,
            "segments": self.segments,
            "events": self.head.events,
            "head": self.head.seq_num,
            "lost": f"events after seqNum {self.head.seq_num} (only DynamoDB held them)",
            "lostAfterSeqNum": self.head.seq_num,
            "unusedObjects": self.unused_objects,
        }


def read_archive(conn: Connection, store_id: str) -> ArchiveView:
    """Download and check every segment of the store; the longest chain of them from seqNum 0.

    :class:`OperationError` if a checksum does not match, a segment does not decode to what its
    key and metadata say, its events do not chain, or segments do not connect."""
    prefix = segments_prefix(store_id)
    objects = list(conn.segments.list_objects(prefix))
    found: list[SegmentInfo] = []
    backends: dict[str, str | None] = {}
    strangers: list[str] = []
    bar = progress_bar(sum(size for _, size in objects), "verify segments", "B")
    try:
        for key, size in objects:
            match = _SEGMENT_NAME.fullmatch(key[len(prefix) :])
            if match is None:
                strangers.append(key)
                continue
            body, metadata = conn.segments.get_with_metadata(key)
            try:
                info = _segment_info(key, body, metadata, match)
            except SegmentCorruptError as error:
                raise OperationError(f"{error}; nothing was written") from None
            found.append(info)
            backends[key] = metadata.get("backend-id")
            bar.update(size)
    finally:
        bar.close()
    chain, unused = _longest_chain(store_id, found)
    backend_id, source = _backend_id(conn, store_id, chain, backends)
    return ArchiveView(backend_id, source, chain, unused, strangers)


def _segment_info(key: str, body: bytes, metadata: dict[str, str], match: re.Match[str]) -> SegmentInfo:
    digest = hashlib.sha256(body).hexdigest()
    if digest[:16] != match.group(3) or metadata.get("sha256", digest) != digest:
        raise SegmentCorruptError(f"segment {key!r}: its bytes do not match its checksum")
    try:
        parent = int(metadata["parent"])
        position = int(metadata["position"])
        events = int(metadata["events"])
    except (KeyError, ValueError):
        raise SegmentCorruptError(f"segment {key!r}: its metadata does not say where it belongs") from None
    info = SegmentInfo(
        parent_seq_num=parent,
        first_seq_num=int(match.group(1)),
        last_seq_num=int(match.group(2)),
        events=events,
        raw_bytes=0,
        size=len(body),
        sha256=digest,
        key=key,
        sealed_at=metadata.get("sealed-at") or utc_now_iso(),
        last_position=position,
    )
    decoded = decode_segment(body, info)  # the range, the count, ascending seqNums
    previous = parent
    for event in decoded:
        try:
            event_parent = json.loads(event.event_json)["parentSeqNum"]
        except (ValueError, KeyError, TypeError):
            raise SegmentCorruptError(f"segment {key!r}: seqNum {event.seq_num} is not an event") from None
        if event_parent != previous:
            raise SegmentCorruptError(
                f"segment {key!r}: the chain is broken at seqNum {event.seq_num} (parent {event_parent},"
                f" the event before is {previous})"
            )
        previous = event.seq_num
    return replace(info, raw_bytes=sum(len(event.event_json.encode()) for event in decoded))


def _longest_chain(store_id: str, found: list[SegmentInfo]) -> tuple[list[SegmentInfo], list[str]]:
    """The chain of segments from parent 0 that reaches furthest (segments of one store cut the
    same commit chain, so any chain is the same events); refuses segments that cannot be reached."""
    by_parent: dict[int, list[SegmentInfo]] = {}
    for info in found:
        by_parent.setdefault(info.parent_seq_num, []).append(info)
    best: dict[int, list[SegmentInfo]] = {0: []}
    queue = [0]
    while queue:
        reached = heapq.heappop(queue)
        for info in sorted(by_parent.get(reached, []), key=lambda item: item.last_seq_num):
            if info.last_seq_num not in best:
                best[info.last_seq_num] = [*best[reached], info]
                heapq.heappush(queue, info.last_seq_num)
    end = max(best)
    chain = best[end]
    beyond = sorted({info.parent_seq_num for info in found if info.last_seq_num > end})
    if beyond:
        raise OperationError(
            f"store {store_id!r}: the archive's segments do not chain: none begins at seqNum {end}, where"
            f" the chain from 0 ends, but segments begin at {', '.join(map(str, beyond[:5]))}"
            " (a segment is missing); nothing was written"
        )
    previous = 0
    for info in chain:
        if info.last_position - info.events != previous:
            raise OperationError(
                f"segment {info.key!r}: its events' positions ({info.last_position - info.events + 1}.."
                f"{info.last_position}) do not follow the segment before (up to {previous});"
                " nothing was written"
            )
        previous = info.last_position
    on_chain = {info.key for info in chain}
    return chain, sorted(info.key for info in found if info.key not in on_chain)


def _backend_id(
    conn: Connection, store_id: str, chain: list[SegmentInfo], backends: dict[str, str | None]
) -> tuple[str | None, str]:
    recorded = {backend for info in chain if (backend := backends.get(info.key)) is not None}
    try:
        manifest = StoreManifest.decode(conn.segments.get(StoreManifest.key(store_id)))
    except SegmentNotFoundError:
        manifest = None
    except SegmentCorruptError as error:
        raise OperationError(f"store {store_id!r}: {error}") from None
    if manifest is not None:
        if manifest.store_id != store_id:
            raise OperationError(
                f"the manifest under store {store_id!r}'s prefix names store {manifest.store_id!r}"
            )
        if recorded - {manifest.backend_id}:
            raise OperationError(
                f"store {store_id!r}: segments name backend ids {sorted(recorded)}, the manifest"
                f" {manifest.backend_id}: the archive mixes incarnations; nothing was written"
            )
        return manifest.backend_id, "manifest"
    if len(recorded) > 1:
        raise OperationError(f"store {store_id!r}: segments name several backend ids {sorted(recorded)}")
    if recorded:
        return recorded.pop(), "segment metadata"
    return None, "nowhere"


def restore(
    conn: Connection, store_id: str, journal: Journal, *, backend_id: str | None = None
) -> RestoreResult:
    """``stratasync backend restore`` (see the module docstring)."""
    admin = conn.admin
    meta = admin.meta(store_id)
    state = meta.get("state", {}).get("S") if meta is not None else None
    if state not in (None, "restore"):
        raise OperationError(
            f"store {store_id!r}: a {state} is under way; run `stratasync backend {state}` to finish it"
        )
    head_record = admin.head_record(store_id)
    if state is None and meta is not None and "restoredAt" in meta and head_record is not None:
        through = int(meta["restoredThrough"]["S"])
        segments = [segment for segment in admin.segments(store_id) if segment.last_seq_num <= through]
        if segments and segments[-1].last_seq_num == through:
            journal.note(f"store {store_id!r} was restored at {meta['restoredAt']['S']}: nothing to do")
            head = LogHead(through, segments[-1].last_position)
            return RestoreResult(store_id, meta["backendId"]["S"], "meta", len(segments), head, [])
    if state is None and (head_record is not None or next(admin.segments(store_id), None)):
        raise OperationError(
            f"store {store_id!r} has its commit records in DynamoDB: there is nothing to restore (a restore"
            " rebuilds a store whose DynamoDB items were lost; to rebuild this one from S3 anyway, erase"
            " its items first: delete --keep-archive)"
        )

    view = read_archive(conn, store_id)
    if not view.chain:
        raise OperationError(f"the archive holds no segments of store {store_id!r}: nothing to restore")
    recovered = view.backend_id
    source = view.backend_id_source
    if backend_id is not None:
        if recovered is not None and recovered != backend_id:
            journal.note(f"the archive names backend id {recovered}; using --backend-id {backend_id} instead")
        recovered, source = backend_id, "--backend-id"
    if recovered is None:
        raise OperationError(
            f"the archive of store {store_id!r} does not record its backend id (sealed before segments"
            " carried it): pass --backend-id (the old id keeps clients going; any other makes them reset)"
        )
    head = view.head
    for key in view.unused:
        journal.note(f"not used: {key} (a segment an interrupted archiver left; its events are in the chain)")
    for key in view.strangers:
        journal.note(f"not a segment, ignored: {key}")
    journal.did(
        "read-archive",
        f"read and verified {len(view.chain)} segments: {head.events} events up to seqNum"
        f" {head.seq_num}, backend id {recovered} (from the {source})",
    )

    if state is None:
        if meta is not None:  # created by a request after the loss (no archive guard then)
            admin.table.call(
                "delete_item",
                Key={"pk": {"S": store_id}, "sk": {"S": "meta"}},
                ConditionExpression="attribute_not_exists(#state)",
                ExpressionAttributeNames={"#state": "state"},
            )
            journal.note(f"replaced the backend id {meta['backendId']['S']} a request created after the loss")
        admin.begin(store_id, "restore", recovered, restoredThrough=str(head.seq_num))
        journal.did("mark", "marked the store: a restore is under way, no request is served until it is done")
    else:
        assert meta is not None
        if meta["backendId"]["S"] != recovered:
            raise OperationError(
                f"an earlier restore of store {store_id!r} used backend id"
                f" {meta['backendId']['S']}, not {recovered}"
            )
        journal.did("mark", f"an earlier run began this restore at {meta['stateAt']['S']}")

    admin.fence(store_id, "restore", recovered, at=head)
    journal.did("fence", f"fenced at seqNum {head.seq_num}")

    bar = progress_bar(len(view.chain), "index segments", " segments")
    try:
        for info in view.chain:
            existing = admin.put_segment(store_id, info, recovered)
            if existing is not None and existing.key != info.key:
                raise OperationError(
                    f"store {store_id!r}: the index holds segment {existing.key!r} at parent"
                    f" {info.parent_seq_num}, not {info.key!r} (run delete --keep-archive, then restore)"
                )
            bar.update(1)
    finally:
        bar.close()
    journal.did("index", f"indexed {len(view.chain)} segments")
    admin.put_restored_records(store_id, view.chain, recovered)
    journal.did(
        "commit-chain", f"wrote the commit chain up to seqNum {head.seq_num} ({len(view.chain)} records)"
    )
    admin.unfence(store_id)
    journal.did("unfence", "removed the fence")
    admin.finish(store_id, "restore", recovered, restoredAt=utc_now_iso(), restoredThrough=str(head.seq_num))
    journal.did(
        "finish",
        f"the store serves again under backend id {recovered}, head {head.seq_num}; LOST: the events"
        f" after seqNum {head.seq_num} (only DynamoDB held them)",
    )
    return RestoreResult(store_id, recovered, source, len(view.chain), head, view.unused)
