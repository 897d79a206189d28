"""``list`` and ``inspect``: what the backend holds of each store, and whether it is consistent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stratasync.core.sealing import archive_lag
from stratasync.operations.journal import progress_bar
from stratasync.operations.target import Connection, OperationError
from stratasync.storage.base import EMPTY_LOG, LogHead, SegmentCorruptError, SegmentInfo, SegmentNotFoundError
from stratasync.storage.dynamodb_items import (
    LAST_BATCH_SK,
    Item,
    backend_of,
    batch_sk,
    head_of,
    is_fence,
    is_retired,
    parent_of,
)
from stratasync.storage.segments import StoreManifest, decode_segment, encode_store_id


@dataclass
class StoreReport:
    """One store, as ``inspect`` (or, fewer fields, ``list``) reports it."""

    store_id: str
    backend_id: str | None
    created_at: str | None = None
    #: An operation under way (``reset``, ``delete``, ``restore``) and how far it got.
    operation: str | None = None
    operation_step: str | None = None
    fenced_at: int | None = None
    head: LogHead = EMPTY_LOG
    last_commit_at: str | None = None
    hot_batches: int = 0
    hot_events: int = 0
    #: Bytes of the hot batches as stored (compressed).
    hot_bytes: int = 0
    tombstones: int = 0
    segments: int = 0
    #: The segments' stored (gzip) bytes, and their events' JSON bytes.
    archived_bytes: int = 0
    archived_raw_bytes: int = 0
    last_sealed_seq_num: int = 0
    last_sealed_at: str | None = None
    archive_lag: int = 0
    #: Only in the archive (no DynamoDB items): lost, to be restored.
    archive_only: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: None: segments not downloaded (no --verify); else how many were checked.
    verified_segments: int | None = None
    #: ``inspect`` read the whole chain; ``list`` only the hot tier.
    checked: bool = False

    @property
    def consistent(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "storeId": self.store_id,
            "backendId": self.backend_id,
            "createdAt": self.created_at,
            "operation": self.operation,
            "operationStep": self.operation_step,
            "fencedAt": self.fenced_at,
            "head": self.head.seq_num,
            "events": self.head.events,
            "lastCommitAt": self.last_commit_at,
            "hot": {"batches": self.hot_batches, "events": self.hot_events, "bytes": self.hot_bytes},
            "archive": {
                "segments": self.segments,
                "bytes": self.archived_bytes,
                "rawBytes": self.archived_raw_bytes,
                "lastSealedSeqNum": self.last_sealed_seq_num,
                "lastSealedAt": self.last_sealed_at,
            },
            "archiveLag": self.archive_lag,
            "archiveOnly": self.archive_only,
        }
        if self.checked:
            data.update(
                tombstones=self.tombstones,
                consistent=self.consistent,
                problems=self.problems,
                notes=self.notes,
                verifiedSegments=self.verified_segments,
            )
        return data


def inspect_store(conn: Connection, store_id: str, *, verify: bool = False) -> StoreReport:
    """Everything about one store, with a consistency check of its whole chain: the commit records
    contiguous from 0, positions adding up, tombstones before live batches and each in an indexed
    segment, the index contiguous, every record of the store's incarnation; ``verify``: every
    segment downloaded and its checksum and range checked too."""
    meta = conn.admin.meta(store_id)
    if meta is None:
        report = _archive_only(conn, store_id)
        if report is None:
            raise OperationError(f"no store {store_id!r} in {conn.target.describe()}")
        return report
    report = _from_meta(store_id, meta)
    report.checked = True
    segments = list(conn.admin.segments(store_id))
    _check_records(report, conn.admin.records(store_id), segments)
    _check_segments(report, segments)
    _archive_figures(report, segments, conn)
    if verify:
        report.verified_segments = 0
        bar = progress_bar(sum(segment.size for segment in segments), "verify segments", "B")
        try:
            for segment in segments:
                try:
                    decode_segment(conn.segments.get(segment.key), segment)
                except (SegmentCorruptError, SegmentNotFoundError) as error:
                    report.problems.append(str(error))
                report.verified_segments += 1
                bar.update(segment.size)
        finally:
            bar.close()
    return report


def list_stores(conn: Connection) -> list[StoreReport]:
    """Every store: its head and counts (the head record's position: no counting), hot and
    archived bytes (the hot tier's records and the segment index: never the tombstones). Stores
    whose items are gone but whose archive is in S3 are listed too (``archive_only``)."""
    reports = []
    known = set()
    for store_id, meta in conn.admin.store_ids():
        known.add(store_id)
        report = _from_meta(store_id, meta)
        segments = list(conn.admin.segments(store_id))
        through = segments[-1].last_seq_num if segments else 0
        hot = conn.admin.table.key_range(
            store_id, batch_sk(through), LAST_BATCH_SK, projection="sk, #last, c, n, #at, z, seg, fence"
        )
        for item in hot:
            if is_fence(item):
                report.fenced_at = int(item["last"]["N"])
                continue
            report.head = head_of(item)
            report.last_commit_at = item["at"]["S"]
            if not is_retired(item):
                report.hot_batches += 1
                report.hot_events += int(item["n"]["N"])
                report.hot_bytes += int(item["z"]["N"])
        if report.head == EMPTY_LOG and segments:
            report.head = LogHead(segments[-1].last_seq_num, segments[-1].last_position)
        _archive_figures(report, segments, conn)
        reports.append(report)
    encoded = {encode_store_id(store_id) for store_id in known}
    for prefix in conn.segments.list_prefixes("stores/"):
        if prefix[len("stores/") : -1] in encoded:
            continue
        try:
            manifest = StoreManifest.decode(conn.segments.get(f"{prefix}store.json"))
        except (SegmentNotFoundError, SegmentCorruptError):
            reports.append(StoreReport(store_id=f"? ({prefix})", backend_id=None, archive_only=True))
            continue
        lost = _archive_only(conn, manifest.store_id)
        if lost is not None:
            reports.append(lost)
    return sorted(reports, key=lambda report: report.store_id)


def _from_meta(store_id: str, meta: Item) -> StoreReport:
    return StoreReport(
        store_id=store_id,
        backend_id=meta["backendId"]["S"],
        created_at=meta.get("createdAt", {}).get("S"),
        operation=meta.get("state", {}).get("S"),
        operation_step=meta.get("step", {}).get("S"),
    )


def _archive_only(conn: Connection, store_id: str) -> StoreReport | None:
    """A store with no DynamoDB items: what its archive says (None: it has no archive either)."""
    try:
        manifest = StoreManifest.decode(conn.segments.get(StoreManifest.key(store_id)))
    except SegmentNotFoundError:
        return None
    keys = list(conn.segments.list_objects(f"{StoreManifest.key(store_id)[: -len('store.json')]}segments/"))
    report = StoreReport(store_id=store_id, backend_id=manifest.backend_id, archive_only=True)
    report.segments = len(keys)
    report.archived_bytes = sum(size for _, size in keys)
    report.notes.append(
        "the store has no items in DynamoDB but its archive is in S3: its items were lost;"
        " `stratasync backend restore` brings it back (its requests are refused until then)"
    )
    return report


def _check_records(report: StoreReport, records: Any, segments: list[SegmentInfo]) -> None:
    by_parent = {segment.parent_seq_num: segment for segment in segments}
    previous_last = previous_position = 0
    seen_live = False
    for item in records:
        if is_fence(item):
            report.fenced_at = int(item["last"]["N"])
            if report.operation is None:
                report.problems.append(
                    f"a fence ({item['fence']['S']}) at seqNum {report.fenced_at}, no operation"
                )
            continue
        parent, last, position = parent_of(item), int(item["last"]["N"]), int(item["c"]["N"])
        if parent != previous_last:
            report.problems.append(
                f"the commit chain breaks: a record at parent {parent}, the one before ends at"
                f" {previous_last}"
            )
        if last <= parent or position <= previous_position:
            report.problems.append(
                f"the record at parent {parent} goes backwards (last {last}, position {position})"
            )
        backend_id = backend_of(item)
        if backend_id is not None and backend_id != report.backend_id:
            report.problems.append(f"the record at parent {parent} belongs to backend {backend_id}")
        if is_retired(item):
            report.tombstones += 1
            if seen_live:
                report.problems.append(f"a tombstone at parent {parent} after live batches")
            segment = by_parent.get(int(item["seg"]["N"]))
            if segment is None or not segment.parent_seq_num <= parent < last <= segment.last_seq_num:
                report.problems.append(f"the tombstone at parent {parent} is in no indexed segment")
        else:
            seen_live = True
            report.hot_batches += 1
            report.hot_events += int(item["n"]["N"])
            report.hot_bytes += int(item["z"]["N"])
            if position - previous_position != int(item["n"]["N"]):
                report.problems.append(
                    f"the record at parent {parent} counts {item['n']['N']} events, its position"
                    " says otherwise"
                )
        report.last_commit_at = item["at"]["S"]
        previous_last, previous_position = last, position
    report.head = LogHead(previous_last, previous_position)


def _check_segments(report: StoreReport, segments: list[SegmentInfo]) -> None:
    previous = previous_position = 0
    for segment in segments:
        if segment.parent_seq_num != previous:
            report.problems.append(
                f"the segment index breaks: a segment at parent {segment.parent_seq_num}, the one"
                f" before ends at {previous}"
            )
        if segment.last_position - segment.events != previous_position:
            report.problems.append(f"segment {segment.key}: its positions do not follow the segment before")
        previous, previous_position = segment.last_seq_num, segment.last_position
    if segments and previous > report.head.seq_num:
        report.problems.append(f"the archive reaches seqNum {previous}, past the head {report.head.seq_num}")


def _archive_figures(report: StoreReport, segments: list[SegmentInfo], conn: Connection) -> None:
    report.segments = len(segments)
    report.archived_bytes = sum(segment.size for segment in segments)
    report.archived_raw_bytes = sum(segment.raw_bytes for segment in segments)
    if segments:
        report.last_sealed_seq_num = segments[-1].last_seq_num
        report.last_sealed_at = segments[-1].sealed_at
    archived = segments[-1].last_position if segments else 0
    report.archive_lag = archive_lag(report.head.events - archived, conn.policy)
    if report.checked and report.hot_events > report.head.events - archived:
        report.notes.append(
            "some hot batches are archived already and not yet retired (an archiver run stopped"
            " between indexing and retiring): the next run retires them"
        )
