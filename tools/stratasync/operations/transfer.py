"""Events out of a store and into one: ``export``, ``tail`` and ``import``.

The file format is NDJSON, one event a line, each exactly the JSON a pull returns for it
(``name``, ``args``, ``seqNum``, ``parentSeqNum``, ``clientId``, ``sessionId``): the bytes storage
holds, which are the bytes the push path wrote. An import encodes every event the way the push
path does, so an export of the imported store is byte for byte the file.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from stratasync.core.limits import MAX_SEQ_NUM_STEP, Limits
from stratasync.core.service import utc_now_iso
from stratasync.operations.journal import Journal, progress_bar
from stratasync.operations.target import Connection, OperationError
from stratasync.protocol import jsontext
from stratasync.protocol.messages import PushPayload, WireEvent
from stratasync.storage.base import EMPTY_LOG, EventBatch, HeadMismatchError, LogHead, StoredEvent
from stratasync.storage.dynamodb_items import meta_item

#: An imported batch holds at most this many events (a push's limit) ...
IMPORT_BATCH_EVENTS = 100
#: ... and about this many bytes of event JSON (under a push's 900 KB, so a batch is a push's size).
IMPORT_BATCH_BYTES = 800_000

IMPORT_STEPS = ("check-file", "check-store", "append", "archive")


def require_store(conn: Connection, store_id: str) -> dict[str, Any]:
    """The store's ``meta`` item; :class:`OperationError` if the store does not exist (operations
    that read a store must not create it)."""
    meta = conn.admin.meta(store_id)
    if meta is None:
        raise OperationError(f"no store {store_id!r} in {conn.target.describe()}")
    return dict(meta)


# -- export ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    store_id: str
    backend_id: str
    head: LogHead
    events: int
    bytes: int
    path: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "storeId": self.store_id,
            "backendId": self.backend_id,
            "head": self.head.seq_num,
            "events": self.events,
            "bytes": self.bytes,
            "output": self.path,
        }


def write_events(conn: Connection, store_id: str, head: LogHead, out: IO[str]) -> tuple[int, int]:
    """Every event up to ``head``, hot and archived, in order, one JSON line each; returns how many
    and their bytes. Reads storage directly (also a fenced store: a reset exports after fencing)."""
    count = size = 0
    bar = progress_bar(head.events, f"export {store_id}")
    try:
        for event in conn.log.read(store_id, 0):
            if event.seq_num > head.seq_num:
                break
            out.write(event.event_json)
            out.write("\n")
            count += 1
            size += len(event.event_json.encode()) + 1
            bar.update(1)
    finally:
        bar.close()
    if count != head.events:
        raise OperationError(
            f"store {store_id!r}: read {count} events up to seqNum {head.seq_num}, but its head record"
            f" counts {head.events}: the store is not consistent (run inspect --verify)"
        )
    return count, size


def export_store(conn: Connection, store_id: str, output: str | None, stdout: IO[str]) -> ExportResult:
    """``stratasync backend export``: to ``output`` (written to a temporary name, then renamed, so
    a file of that name is always a whole export) or to ``stdout``."""
    require_store(conn, store_id)
    current = conn.storage.current(store_id)
    if output is None:
        count, size = write_events(conn, store_id, current.head, stdout)
    else:
        count, size = export_to_file(conn, store_id, current.head, Path(output))
    return ExportResult(store_id, current.backend_id, current.head, count, size, output)


def export_to_file(conn: Connection, store_id: str, head: LogHead, path: Path) -> tuple[int, int]:
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8", newline="\n") as out:
        result = write_events(conn, store_id, head, out)
    partial.replace(path)
    return result


# -- tail -----------------------------------------------------------------------------------------


def tail(
    conn: Connection,
    store_id: str,
    *,
    after: int | None,
    follow: bool,
    on_event: Callable[[StoredEvent], None],
    interval: float = 1.0,
    lines: int = 10,
    keep_going: Callable[[], bool] = lambda: True,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """``stratasync backend tail``: the events after ``after`` (default: the last ``lines`` seqNums,
    or only new ones with ``follow``), then, with ``follow``, each new one as it commits (polling
    the head every ``interval`` seconds). Returns the last seqNum shown. Stops with
    :class:`OperationError` if the store is reset meanwhile."""
    require_store(conn, store_id)
    current = conn.storage.current(store_id)
    if after is None:
        after = current.head.seq_num if follow else max(0, current.head.seq_num - lines)
    cursor = after
    bound: int | None = None if follow else current.head.seq_num
    while True:
        for event in conn.log.read(store_id, cursor):
            if bound is not None and event.seq_num > bound:
                break
            on_event(event)
            cursor = event.seq_num
        if not follow or not keep_going():
            return cursor
        sleep(interval)
        now = conn.storage.current(store_id)
        if now.backend_id != current.backend_id:
            raise OperationError(
                f"store {store_id!r} was reset: its backend id is {now.backend_id} now, not"
                f" {current.backend_id} (the events shown so far are the old log's)"
            )


# -- import ---------------------------------------------------------------------------------------


class ImportFileError(OperationError):
    """The file is not a chain of events this store could hold; ``line``: where (1-based)."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}, line {line}: {message}; nothing was written")
        self.line = line


@dataclass(frozen=True)
class FileEvent:
    line: int
    event: WireEvent
    #: The event as the push path stores it.
    text: str


@dataclass(frozen=True)
class ImportResult:
    store_id: str
    backend_id: str
    #: Events in the file, and how many of them the store held already (an earlier, stopped run).
    events: int
    already_there: int
    batches: int
    segments_sealed: int
    head: LogHead

    def as_dict(self) -> dict[str, Any]:
        return {
            "storeId": self.store_id,
            "backendId": self.backend_id,
            "events": self.events,
            "alreadyThere": self.already_there,
            "imported": self.events - self.already_there,
            "batches": self.batches,
            "segmentsSealed": self.segments_sealed,
            "head": self.head.seq_num,
        }


def read_file_events(path: str, limits: Limits | None = None) -> Iterator[FileEvent]:
    """The file's events, each checked as a push would check it, and the chain across them (the
    first event's parent is 0, each next one's parent is the one before); :class:`ImportFileError`
    at the first line that is not."""
    limits = limits or Limits()
    previous = 0
    with open(path, encoding="utf-8", newline="\n") as lines:
        for number, line in enumerate(lines, start=1):
            stripped = line.rstrip("\n")
            if not stripped.strip():
                raise ImportFileError(path, number, "an empty line (one event per line)")
            try:
                data = jsontext.loads(stripped)
                event = WireEvent.model_validate(data)
                text = jsontext.dumps(event.to_json_dict())
            except ValidationError as error:
                problems = "; ".join(
                    f"{'.'.join(map(str, item['loc'])) or 'event'}: {item['msg']}" for item in error.errors()
                )
                raise ImportFileError(path, number, f"not an event ({problems})") from None
            except ValueError as error:  # not JSON, or NaN / Infinity
                raise ImportFileError(path, number, f"not JSON: {error}") from None
            if event.parentSeqNum != previous:
                raise ImportFileError(
                    path,
                    number,
                    f"the chain is broken: parentSeqNum is {event.parentSeqNum}, the event before has"
                    f" seqNum {previous}" + (" (the first event's parent must be 0)" if number == 1 else ""),
                )
            if event.seqNum <= event.parentSeqNum:
                raise ImportFileError(
                    path, number, f"seqNum {event.seqNum} is not after its parent {event.parentSeqNum}"
                )
            if event.seqNum - event.parentSeqNum > MAX_SEQ_NUM_STEP:
                raise ImportFileError(
                    path, number, f"seqNum jumps more than {MAX_SEQ_NUM_STEP:,} past its parent"
                )
            size = len(text.encode())
            if size > limits.max_event_bytes:
                raise ImportFileError(
                    path,
                    number,
                    f"the event is {size} bytes encoded; a push takes at most {limits.max_event_bytes}",
                )
            if len(event.name) > limits.max_event_name_length:
                raise ImportFileError(
                    path, number, f"the event name is longer than {limits.max_event_name_length} characters"
                )
            previous = event.seqNum
            yield FileEvent(number, event, text)


def batches_of(
    events: Iterator[FileEvent], store_id: str, *, check: bool = True
) -> Iterator[list[FileEvent]]:
    """Consecutive events in batches of a push's size, each checked as one push (``check``; the
    append pass skips it: the check pass checked the same batches)."""
    batch: list[FileEvent] = []
    size = 0
    for item in itertools.chain(events, [None]):
        item_size = len(item.text.encode()) if item is not None else 0
        if batch and (
            item is None or len(batch) == IMPORT_BATCH_EVENTS or size + item_size > IMPORT_BATCH_BYTES
        ):
            if check:
                _check_push(batch, store_id)
            yield batch
            batch, size = [], 0
        if item is not None:
            batch.append(item)
            size += item_size


def _check_push(batch: list[FileEvent], store_id: str) -> None:
    try:
        PushPayload.model_validate(
            {
                "storeId": store_id,
                "batch": [entry.event.to_json_dict() for entry in batch],
                "backendId": {"_tag": "None"},
            }
        )
    except ValidationError as error:  # each line was checked: a bug if this happens
        raise OperationError(f"line {batch[0].line}: the batch from here is not a push: {error}") from None


def check_file(path: str, store_id: str) -> tuple[int, LogHead]:
    """Pass one: the whole file is checked before anything is written; returns its events and
    the head it would leave."""
    count = 0
    last = 0
    bar = progress_bar(None, "check file")
    try:
        for batch in batches_of(read_file_events(path), store_id):
            count += len(batch)
            last = batch[-1].event.seqNum
            bar.update(len(batch))
    finally:
        bar.close()
    if count == 0:
        raise OperationError(f"{path}: no events; nothing was written")
    return count, LogHead(last, count)


def import_file(
    conn: Connection,
    store_id: str,
    path: str,
    journal: Journal,
    *,
    backend_id: str | None = None,
    clock: Callable[[], str] = utc_now_iso,
) -> ImportResult:
    """``stratasync backend import``: the file's events into a store that is new or empty.

    The file is checked whole first (a broken chain or a bad event is refused, and nothing is
    written). The store must hold no events, or exactly a prefix of the file (an earlier run that
    stopped: it goes on from there). Events go in as batches of a push's size, through the same
    conditional appends as pushes; every ``segment_events`` events (and at the end) the archiver
    seals what is sealable, so a big import lands in S3 as segments.
    """
    total, file_head = check_file(path, store_id)
    journal.did("check-file", f"checked {path}: {total} events, a chain up to seqNum {file_head.seq_num}")

    meta = conn.admin.meta(store_id)
    if meta is None and backend_id is not None:
        if conn.storage.new_store_guard is not None:
            conn.storage.new_store_guard(store_id)  # a lost store is restored, never imported into
        existing = conn.storage.table.put_if_absent(meta_item(store_id, backend_id))
        meta = existing if existing is not None else meta_item(store_id, backend_id)
    if meta is not None and backend_id is not None and meta["backendId"]["S"] != backend_id:
        raise OperationError(
            f"store {store_id!r} exists with backend id {meta['backendId']['S']}, not {backend_id};"
            " nothing was written"
        )
    current = conn.storage.current(store_id)  # creates the store if it is new
    already = _existing_prefix(conn, store_id, path, current.head)
    if already:
        journal.note(f"the store holds the file's first {already} events already (an earlier run): going on")
    journal.did(
        "check-store",
        f"store {store_id!r} (backend id {current.backend_id}) "
        + ("is empty" if not already else f"holds the file's first {already} events"),
    )

    archiver = conn.archiver()
    sealed = batches = 0
    since_archive = 0
    head = current.head
    bar = progress_bar(total, f"import {store_id}")
    bar.update(already)
    try:
        remaining = itertools.islice(read_file_events(path), already, None)
        for batch in batches_of(remaining, store_id, check=False):
            event_batch = EventBatch(
                parent_seq_num=batch[0].event.parentSeqNum,
                events=[(entry.event.seqNum, entry.text) for entry in batch],
                created_at=clock(),
                backend_id=current.backend_id,
            )
            try:
                conn.storage.append(store_id, event_batch)
            except HeadMismatchError as error:
                raise OperationError(
                    f"another writer committed to store {store_id!r} during the import (its head is"
                    f" {error.head}, this batch's parent {error.parent}): imported up to seqNum"
                    f" {head.seq_num}"
                ) from None
            batches += 1
            head = LogHead(event_batch.last_seq_num, head.events + len(batch))
            since_archive += len(batch)
            bar.update(len(batch))
            journal.checkpoint("append:progress")
            if since_archive >= conn.policy.segment_events:
                sealed += len(archiver.archive(store_id).sealed)
                since_archive = 0
    finally:
        bar.close()
    journal.did("append", f"appended {total - already} events in {batches} batches (head {head.seq_num})")
    sealed += len(archiver.archive(store_id).sealed)
    journal.did("archive", f"the archiver sealed {sealed} segment(s) of them into S3")
    return ImportResult(store_id, current.backend_id, total, already, batches, sealed, head)


def _existing_prefix(conn: Connection, store_id: str, path: str, head: LogHead) -> int:
    """How many events the store holds, if they are exactly the file's first ones."""
    if head == EMPTY_LOG:
        return 0
    count = 0
    file_events = read_file_events(path)
    for stored in conn.log.read(store_id, 0):
        if stored.seq_num > head.seq_num:
            break
        expected = next(file_events, None)
        if expected is None or expected.text != stored.event_json:
            raise OperationError(
                f"store {store_id!r} is not empty (head {head.seq_num}, {head.events} events), and its"
                f" events are not this file's (they differ at seqNum {stored.seq_num}); import only"
                " goes into a new or empty store. Nothing was written"
            )
        count += 1
    return count
