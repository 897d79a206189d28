"""The DynamoDB adapter's item layout: keys, and how records become items and items records.

One table, single-table design. Per store (partition key ``pk`` = store id), items by sort key ``sk``:

* ``meta`` - the store's ``backendId``, created by a conditional put on first use; while an
  operator resets, erases or restores the store also ``state`` (what is under way, see
  :mod:`stratasync.storage.dynamodb_admin`), and no request is served.
* ``b#<parent, 16 digits>`` - one *commit record* per pushed batch, keyed by the batch's parent
  seqNum: its last seqNum, event count, position (``c``: events in the store through this batch),
  commit time, digest, push id, the backend id of its incarnation (``bid``, which the head read of
  every request checks a cached backend id against), and the events themselves (zlib-compressed
  ``"<seqNum> <json>"`` lines) when they fit in ``inline_bytes`` (3.5 KB), so that a commit record
  is always read for one read unit. The key IS the concurrency control: a batch is committed by a
  put conditioned on ``attribute_not_exists(sk)``, and because the head only moves past ``p`` by
  writing ``b#p`` and **no commit record is ever deleted** (the commit invariant,
  :mod:`stratasync.storage.base`; only an operator's reset or delete removes them, after fencing the
  store), a writer that saw ``p`` as the head and then wins that put was right, however late the put
  arrives. Of several pushes on one parent exactly one wins, and the losers learn the winner's last
  seqNum from ``ReturnValuesOnConditionCheckFailure=ALL_OLD``, with no extra read; a writer whose
  own put was applied but whose answer was lost recognises its push id there on the retry.
* A *fence* is a record at the head's sort key with ``fence`` (why: ``reset``, ``delete``...)
  instead of events: the operator's tool writes it before it removes anything, so every push
  after it loses the conditional put, and every head read sees it (:class:`StoreFencedError`).
* A *tombstone* is what a commit record becomes when its batch is archived: the same key with its
  last seqNum, position, commit time, digest and backend id, and ``seg`` (the parent of the
  segment that holds the events), but no events and no parts. About 150 bytes, kept for good.
* ``a#<parent, 16 digits>`` - the *segment index*: one item per archived segment (a run of whole
  batches sealed into one object in the segment store, see :mod:`stratasync.storage.segments`),
  keyed by the parent of its first batch like commit records, with its last seqNum, position,
  counts, object key and SHA-256. Written by a conditional put only after the object is stored
  and verified, and before the segment's batches are retired (their parts deleted, then their
  commit records replaced by tombstones), so the head never leaves DynamoDB.
* ``p#<parent>#<push id>#<k>`` - the compressed events of a larger batch, in parts of at most
  ``part_bytes`` (350 KB, under the 400 KB item limit; batches reach 900 KB). They are written
  *before* the commit record that names them, so a reader finds either no commit record (nothing
  visible) or one whose parts all exist. A writer that loses the race deletes its parts; a
  writer that crashes leaves parts that no commit record names, which no reader ever sees.

"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from stratasync.storage.base import (
    EventBatch,
    LogHead,
    SegmentInfo,
    StoredBatch,
    StoreFencedError,
    decode_lines,
)

Item = Mapping[str, Any]

META_SK = "meta"
BATCH_PREFIX = "b#"
PART_PREFIX = "p#"
SEGMENT_PREFIX = "a#"
_SEQ_DIGITS = 16
LAST_BATCH_SK = BATCH_PREFIX + "9" * _SEQ_DIGITS
LAST_SEGMENT_SK = SEGMENT_PREFIX + "9" * _SEQ_DIGITS


def batch_sk(parent_seq_num: int) -> str:
    """Sort key of the commit record of the batch whose parent is ``parent_seq_num``."""
    return f"{BATCH_PREFIX}{parent_seq_num:0{_SEQ_DIGITS}d}"


def batch_parent(sort_key: str) -> int | None:
    """The parent of the batch whose commit record has ``sort_key`` (None: not a commit record)."""
    digits = sort_key[len(BATCH_PREFIX) :]
    if not sort_key.startswith(BATCH_PREFIX) or not (digits.isascii() and digits.isdigit()):
        return None
    return int(digits)


def segment_sk(parent_seq_num: int) -> str:
    """Sort key of the index item of the archived segment whose parent is ``parent_seq_num``."""
    return f"{SEGMENT_PREFIX}{parent_seq_num:0{_SEQ_DIGITS}d}"


def part_sk(parent_seq_num: int, push_id: str, index: int) -> str:
    return f"{PART_PREFIX}{parent_seq_num:0{_SEQ_DIGITS}d}#{push_id}#{index}"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def meta_item(store_id: str, backend_id: str, **extra: str) -> dict[str, Any]:
    """The ``meta`` item; ``extra``: more string attributes (an operation's state)."""
    item = {
        "pk": {"S": store_id},
        "sk": {"S": META_SK},
        "backendId": {"S": backend_id},
        "createdAt": {"S": utc_now()},
    }
    item.update({name: {"S": value} for name, value in extra.items()})
    return item


def meta_state(item: Item) -> str | None:
    """What an operator is doing to the store (None: nothing, requests are served)."""
    state = item.get("state")
    return str(state["S"]) if state is not None else None


def commit_record(
    store_id: str,
    batch: EventBatch,
    *,
    position: int,
    push_id: str,
    data: bytes,
    inline: bool,
    parts: int,
    backend_id: str,
) -> dict[str, Any]:
    """The commit record of ``batch`` (``position``: events in the store through it), its events
    inline or in ``parts`` part items, in the incarnation ``backend_id``."""
    item: dict[str, Any] = {
        "pk": {"S": store_id},
        "sk": {"S": batch_sk(batch.parent_seq_num)},
        "last": {"N": str(batch.last_seq_num)},
        "n": {"N": str(len(batch.events))},
        "c": {"N": str(position)},
        "at": {"S": batch.created_at},
        "dg": {"S": batch.digest},
        "pid": {"S": push_id},
        "bid": {"S": backend_id},
        "z": {"N": str(len(data))},
    }
    if inline:
        item["d"] = {"B": data}
    else:
        item["parts"] = {"N": str(parts)}
    return item


def part_item(store_id: str, key: str, data: bytes) -> dict[str, Any]:
    return {"pk": {"S": store_id}, "sk": {"S": key}, "d": {"B": data}}


def tombstone(store_id: str, record: Item, segment: SegmentInfo) -> dict[str, Any]:
    """What ``record`` becomes once ``segment`` holds its events."""
    item = {
        "pk": {"S": store_id},
        "sk": record["sk"],
        "last": record["last"],
        "c": record["c"],
        "at": record["at"],
        "dg": record["dg"],
        "seg": {"N": str(segment.parent_seq_num)},
    }
    if "bid" in record:
        item["bid"] = record["bid"]
    return item


def fence_record(store_id: str, head: LogHead, *, reason: str, backend_id: str, at: str) -> dict[str, Any]:
    """The fence an operator's tool writes at ``head`` before it removes anything."""
    return {
        "pk": {"S": store_id},
        "sk": {"S": batch_sk(head.seq_num)},
        "fence": {"S": reason},
        "last": {"N": str(head.seq_num)},
        "c": {"N": str(head.events)},
        "at": {"S": at},
        "bid": {"S": backend_id},
    }


def is_fence(item: Item) -> bool:
    return "fence" in item


def fenced_error(store_id: str, item: Item) -> StoreFencedError:
    reason = item.get("fence", item.get("state", {})).get("S", "an operation")
    since = item.get("at", item.get("stateAt", {})).get("S", "?")
    return StoreFencedError(
        f"store {store_id!r} is fenced for {reason} (since {since}): no request is served until that is done"
    )


def backend_of(item: Item) -> str | None:
    """The backend id a commit record, tombstone or fence belongs to (None: written before they
    carried it)."""
    bid = item.get("bid")
    return str(bid["S"]) if bid is not None else None


#: What retiring needs of a commit record (a projection: the events stay where they are).
RETIRE_PROJECTION = "sk, #last, c, #at, dg, pid, parts, seg, bid"


def segment_item(store_id: str, segment: SegmentInfo, backend_id: str | None = None) -> dict[str, Any]:
    item = {
        "pk": {"S": store_id},
        "sk": {"S": segment_sk(segment.parent_seq_num)},
        "first": {"N": str(segment.first_seq_num)},
        "last": {"N": str(segment.last_seq_num)},
        "c": {"N": str(segment.last_position)},
        "n": {"N": str(segment.events)},
        "raw": {"N": str(segment.raw_bytes)},
        "z": {"N": str(segment.size)},
        "sha": {"S": segment.sha256},
        "key": {"S": segment.key},
        "at": {"S": segment.sealed_at},
    }
    if backend_id is not None:
        item["bid"] = {"S": backend_id}
    return item


def parent_of(item: Item) -> int:
    return int(item["sk"]["S"][len(BATCH_PREFIX) :])


def is_retired(item: Item) -> bool:
    """True for the tombstone of an archived batch."""
    return "seg" in item


def head_of(item: Item) -> LogHead:
    return LogHead(int(item["last"]["N"]), int(item["c"]["N"]))


def part_keys(item: Item) -> list[str]:
    """The sort keys of a commit record's parts (none for an inline batch or a tombstone)."""
    if "parts" not in item:
        return []
    return [part_sk(parent_of(item), item["pid"]["S"], index) for index in range(int(item["parts"]["N"]))]


def stored_batch(item: Item, lines: bytes) -> StoredBatch:
    """A commit record's batch, from its (decompressed) event lines."""
    return StoredBatch(
        parent_seq_num=parent_of(item),
        last_seq_num=int(item["last"]["N"]),
        created_at=item["at"]["S"],
        events=decode_lines(lines, item["at"]["S"], int(item["c"]["N"])),
    )


def segment_of(item: Item) -> SegmentInfo:
    return SegmentInfo(
        parent_seq_num=int(item["sk"]["S"][len(SEGMENT_PREFIX) :]),
        first_seq_num=int(item["first"]["N"]),
        last_seq_num=int(item["last"]["N"]),
        events=int(item["n"]["N"]),
        raw_bytes=int(item["raw"]["N"]),
        size=int(item["z"]["N"]),
        sha256=item["sha"]["S"],
        key=item["key"]["S"],
        sealed_at=item["at"]["S"],
        last_position=int(item["c"]["N"]),
    )
