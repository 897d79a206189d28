"""``delete`` and ``reset``: erase a store, or start it over under a new backend id.

Both remove commit records, which nothing else ever does (the commit invariant, see
:mod:`stratasync.storage.base`). So both go through the same steps, each recorded in the store's
``meta`` item and each safe to crash after (a re-run goes on from the step recorded):

1. ``mark``: ``meta`` says a reset or delete is under way; from here no request for the store is
   served (a sync function whose cache still holds the backend id meets the fence next).
2. ``fence``: a fence record at the head. A push that read the old head loses its conditional put
   to the fence; one that read an older head loses to the commit record there, which is still in
   place. Neither is acknowledged.
3. ``export`` (reset ``--export FILE``): the log, frozen by the fence, to a file.
4. ``wait``: the grace period, measured from the fence's own time. Every write of a request that
   checked the head before the fence has landed (and failed) by then: a request lasts at most the
   sync function's timeout (20 s), and the archiver checks the head right before each write. Only
   after it is anything deleted, so no delayed write can land in what comes next.
5. ``erase-items``: every DynamoDB item of the store but ``meta`` and the fence.
6. ``erase-objects``: every S3 object under the store's prefix, all versions and delete markers
   (the bucket is versioned), unless ``--keep-archive`` (a restore drill).
7. ``unfence``: the fence goes, last of the items.
8. ``finish``: delete ``meta`` (delete), or write it with the new backend id (reset): the new
   incarnation begins, empty. Warm sync functions notice at their next head read.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stratasync.operations.journal import Journal, progress_bar
from stratasync.operations.target import Connection, OperationError
from stratasync.operations.transfer import export_to_file
from stratasync.storage.base import LogHead
from stratasync.storage.dynamodb_admin import ItemCounts, kind_of
from stratasync.storage.dynamodb_items import META_SK, is_fence
from stratasync.storage.s3 import ObjectVersion
from stratasync.storage.segments import store_prefix

#: Seconds between fencing a store and deleting anything. Covers every write of a request that
#: read the head before the fence (a sync request ends within the function's 20 s timeout; the
#: archiver reads the head again before each write) with room to spare. A request held up in the
#: network longer than that is still refused by AWS once its signature is 5 minutes old: to rule
#: that out too, pass --grace 330.
DEFAULT_GRACE_SECONDS = 60.0

#: Items deleted per round (one progress update, one crash point in the tests) ...
ERASE_ITEMS_CHUNK = 500
#: ... and object versions (DeleteObjects takes at most 1,000 keys).
ERASE_VERSIONS_CHUNK = 1000

DELETE_STEPS = ("mark", "fence", "wait", "erase-items", "erase-objects", "unfence", "finish")
RESET_STEPS = ("mark", "fence", "export", "wait", "erase-items", "erase-objects", "unfence", "finish")
#: How far an erase got, as recorded in meta's ``step`` (in this order).
_PROGRESS = ("begun", "fenced", "exported", "waited", "erasing", "erased", "unfenced")


@dataclass
class EraseResult:
    """What a delete or reset did (counts: this run's)."""

    store_id: str
    kind: str
    backend_id: str | None
    new_backend_id: str | None = None
    fenced_at: int | None = None
    items_deleted: dict[str, int] = field(default_factory=dict)
    versions_deleted: int = 0
    delete_markers_deleted: int = 0
    exported: dict[str, Any] | None = None
    items_left: int = 0
    versions_left: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "storeId": self.store_id,
            "operation": self.kind,
            "backendId": self.backend_id,
            "newBackendId": self.new_backend_id,
            "fencedAt": self.fenced_at,
            "itemsDeleted": self.items_deleted,
            "objectVersionsDeleted": self.versions_deleted,
            "deleteMarkersDeleted": self.delete_markers_deleted,
            "export": self.exported,
            "itemsLeft": self.items_left,
            "objectVersionsLeft": self.versions_left,
        }


def erase(
    conn: Connection,
    store_id: str,
    journal: Journal,
    *,
    kind: str,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    export_path: str | None = None,
    keep_archive: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> EraseResult:
    """``stratasync backend delete`` (``kind="delete"``) or ``reset`` (see the module docstring)."""
    if kind not in ("delete", "reset"):
        raise ValueError(kind)
    admin = conn.admin
    meta = admin.meta(store_id)
    state = meta.get("state", {}).get("S") if meta is not None else None
    if state is not None and state != kind and kind != "delete":
        raise OperationError(
            f"store {store_id!r}: a {state} is under way (since {meta['stateAt']['S']});"  # type: ignore[index]
            f" run `stratasync backend {state}` again to finish it first"
        )
    head = admin.head_record(store_id)
    if meta is None and kind == "reset":
        raise OperationError(f"no store {store_id!r} in {conn.target.describe()}")
    if meta is None and head is None and not _has_objects(conn, store_id):
        # Nothing there: deleted already (a run that finished, or one that stopped at the very end).
        journal.note(f"nothing of store {store_id!r} is in {conn.target.describe()}: deleted already")
        return EraseResult(store_id, kind, None)
    if (
        kind == "reset"
        and state is None
        and meta is not None
        and "resetAt" in meta
        and head is None
        and next(admin.segments(store_id), None) is None
        and not _has_objects(conn, store_id)
    ):
        # Empty since a reset: that reset finished (a re-run must not start the store over again).
        journal.note(
            f"store {store_id!r} was reset at {meta['resetAt']['S']} and is empty since: nothing to do"
        )
        return EraseResult(store_id, kind, meta.get("resetFrom", {}).get("S"), meta["backendId"]["S"])

    backend_id = (
        meta["backendId"]["S"] if meta is not None else str((head or {}).get("bid", {}).get("S", "none"))
    )
    result = EraseResult(store_id, kind, backend_id)
    if state is None:
        extra = {"newBackendId": uuid.uuid4().hex} if kind == "reset" else {}
        meta = dict(admin.begin(store_id, kind, backend_id, **extra))
        journal.did("mark", f"marked the store: a {kind} is under way, no request is served from now on")
    else:
        assert meta is not None
        if state != kind:  # a delete takes over an unfinished reset or restore
            admin.set_step(store_id, meta.get("step", {}).get("S", "begun"), state=kind)
            journal.note(f"an unfinished {state} (since {meta['stateAt']['S']}) becomes this delete")
        journal.did("mark", f"the store was marked for a {state} at {meta['stateAt']['S']} (an earlier run)")
    step = meta.get("step", {}).get("S", "begun")
    if kind == "reset":
        result.new_backend_id = meta["newBackendId"]["S"]

    # 2. fence
    fence: dict[str, Any] | None = None
    if _before(step, "erasing"):
        fence = dict(admin.fence(store_id, kind, backend_id))
        result.fenced_at = int(fence["last"]["N"])
        if step == "begun":
            admin.set_step(store_id, "fenced")
            step = "fenced"
        journal.did(
            "fence",
            f"fenced at seqNum {result.fenced_at} ({fence['c']['N']} events): no push can commit any more",
        )
    else:
        journal.did("fence", "fenced by the earlier run")

    # 3. export (reset)
    if kind == "reset":
        exported_to = meta.get("exportedTo", {}).get("S")
        if export_path is not None and fence is not None:
            assert result.fenced_at is not None
            head_now = admin.head_record(store_id)
            assert head_now is not None
            assert is_fence(head_now)
            events, size = export_to_file(
                conn, store_id, LogHead(result.fenced_at, int(head_now["c"]["N"])), Path(export_path)
            )
            admin.set_step(store_id, "exported" if step == "fenced" else step, exportedTo=str(export_path))
            result.exported = {"path": str(export_path), "events": events, "bytes": size}
            journal.did("export", f"exported {events} events ({size} bytes) to {export_path}")
        elif export_path is not None:
            if exported_to is None:
                raise OperationError(
                    "too late to export: the earlier run began erasing the store before it wrote an export"
                )
            result.exported = {"path": exported_to}
            journal.did("export", f"the earlier run exported the log to {exported_to}")
        else:
            journal.did(
                "export",
                "no export asked for" + (f" (an earlier run wrote {exported_to})" if exported_to else ""),
            )

    # 4. wait out the writes in flight
    if fence is not None and _before(step, "waited"):
        fenced_ts = float(fence.get("ts", {}).get("N", clock()))
        left = fenced_ts + grace_seconds - clock()
        if left > 0:
            journal.note(
                f"waiting {left:.1f} s for writes in flight when the fence went in (--grace"
                f" {grace_seconds:g})"
            )
            _wait(left, sleep, clock)
        admin.set_step(store_id, "waited")
        step = "waited"
        journal.did("wait", f"waited out writes in flight ({grace_seconds:g} s since the fence)")
    else:
        journal.did("wait", "waited by the earlier run")

    # 5. DynamoDB items
    if _before(step, "erasing"):
        admin.set_step(store_id, "erasing")
        step = "erasing"
    top = admin.head_record(store_id)
    fence_sk = top["sk"]["S"] if top is not None and is_fence(top) else None
    keys = [key for key in admin.sort_keys(store_id) if key != META_SK and key != fence_sk]
    counts: dict[str, int] = {}
    bar = progress_bar(len(keys), "delete items", " items")
    try:
        for start in range(0, len(keys), ERASE_ITEMS_CHUNK):
            chunk = keys[start : start + ERASE_ITEMS_CHUNK]
            admin.delete_keys(store_id, chunk)
            for key in chunk:
                counts[kind_of(key)] = counts.get(kind_of(key), 0) + 1
            bar.update(len(chunk))
            journal.checkpoint("erase-items:progress")
    finally:
        bar.close()
    result.items_deleted = counts
    journal.did("erase-items", f"deleted {len(keys)} DynamoDB items ({_counts_text(counts)})")

    # 6. S3 objects, every version
    if keep_archive:
        journal.did("erase-objects", "kept the archive in S3 (--keep-archive)")
    else:
        versions = list(conn.segments.list_versions(store_prefix(store_id)))
        bar = progress_bar(len(versions), "delete objects", " versions")
        try:
            for start in range(0, len(versions), ERASE_VERSIONS_CHUNK):
                some: list[ObjectVersion] = versions[start : start + ERASE_VERSIONS_CHUNK]
                conn.segments.delete_versions(some)
                bar.update(len(some))
                journal.checkpoint("erase-objects:progress")
        finally:
            bar.close()
        result.delete_markers_deleted = sum(1 for version in versions if version.delete_marker)
        result.versions_deleted = len(versions) - result.delete_markers_deleted
        journal.did(
            "erase-objects",
            f"deleted {result.versions_deleted} S3 object versions and {result.delete_markers_deleted}"
            f" delete markers under s3://{conn.target.bucket}/{store_prefix(store_id)}",
        )
    if step == "erasing":
        admin.set_step(store_id, "erased")

    # 7. the fence
    admin.unfence(store_id)
    admin.set_step(store_id, "unfenced")
    journal.did("unfence", "removed the fence")

    # 8. meta
    if kind == "delete":
        admin.delete_meta(store_id, "delete")
        journal.did(
            "finish",
            "deleted the store's meta item: "
            + (
                "only its archive is left (requests are refused until a restore)"
                if keep_archive
                else "nothing of the store is left"
            ),
        )
    else:
        assert result.new_backend_id is not None
        admin.finish(store_id, "reset", result.new_backend_id, resetFrom=backend_id, resetAt=_iso(clock()))
        journal.did("finish", f"the store starts over, empty, with backend id {result.new_backend_id}")

    remains = admin.count_items(store_id)
    result.items_left = remains.total
    result.versions_left = (
        0 if keep_archive else sum(1 for _ in conn.segments.list_versions(store_prefix(store_id)))
    )
    expected_items = 0 if kind == "delete" else 1
    if result.items_left != expected_items or result.versions_left:
        journal.note(
            f"left: {result.items_left} DynamoDB items ({_counts_text(_as_dict(remains))}),"
            f" {result.versions_left} S3 object versions: written after the grace period? run it again"
        )
    return result


def _has_objects(conn: Connection, store_id: str) -> bool:
    return next(iter(conn.segments.list_versions(store_prefix(store_id))), None) is not None


def _before(step: str, other: str) -> bool:
    return _PROGRESS.index(step) < _PROGRESS.index(other)


def _wait(seconds: float, sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
    end = clock() + seconds
    bar = progress_bar(round(seconds), "grace period", " s")
    try:
        while (left := end - clock()) > 0:
            sleep(min(1.0, left))
            bar.update(1)
    finally:
        bar.close()


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in sorted(counts.items()) if count) or "none"


def _as_dict(counts: ItemCounts) -> dict[str, int]:
    return {
        "meta": counts.meta,
        "records": counts.records,
        "parts": counts.parts,
        "segments": counts.segments,
        "other": counts.other,
    }


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
