"""Storage-leg faults: what the network and the services do between the dev server's Lambda
handlers and DynamoDB, and between them and S3. Test-side policies for :class:`FaultProxy`; no
production code is touched.

Each request is classified from its wire form (the DynamoDB JSON operation and the sort keys it
touches, the S3 method and key), so a policy can aim at one kind of write:

* **lost responses after the write was applied**: the request is forwarded and the connection
  then closed without an answer, for DynamoDB PutItem (commit records, with and without parts,
  parts, segment index items, the store's meta item), DeleteItem, BatchWriteItem (part deletes,
  tombstones), UpdateItem, TransactWriteItems, and S3 PutObject. The adapters retry, and the
  retry meets its own write;
* **delays of 0.2-2 s of conditional writes** (those with a ``ConditionExpression``) on their way
  to DynamoDB: the gap between a writer's head read and its conditional put, where others commit
  and the archiver seals and retires (fewer of the archiver's own: a slow archiver rarely catches
  up with a delayed push);
* **throttling** (``ProvisionedThroughputExceededException``, S3 ``SlowDown``);
* **delayed reads of the fresh probe stores**, widening the window between a first pull's
  queries in which a first push lands;
* **a crash of the archiver at each step boundary** (:class:`ArchiverCrashes`). The archiver's
  writes are told apart from the sync handler's by what they write: S3 PutObject (step 1, write
  the segment object), a PutItem of a segment index item ``a#`` (step 3, index), and the
  retirement of its hot batches (step 4: their parts are deleted, then a BatchWriteItem puts a
  tombstone over each commit record ``b#``; a DeleteItem of a commit record under the layout
  before tombstones). A crash answers one of those with a non-retryable ``AccessDenied``, either
  without forwarding it ("before") or after forwarding it ("after": the write took effect, the
  writer died), and then refuses every archiver write for a while (the dead run sends nothing
  more). The boundaries: before the object is written; after it is written (so before the read-back
  and verify); after it is verified (before the index put); after it is indexed (before anything
  is retired); midway through the retirement (parts deleted, commit records not yet tombstones);
  and after the retirement (before the run seals its next segment).

:class:`ArchiverLag` observes how soon after its commit each batch was retired: the races above
need an archiver that keeps up, and a run's report says whether it had one.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.faults.proxy import Action, Exchange, Fault, ProxiedRequest, Reply

#: DynamoDB operations that the service throttles (control-plane calls such as CreateTable are not).
DATA_PLANE = {
    "GetItem",
    "PutItem",
    "DeleteItem",
    "UpdateItem",
    "Query",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
}
WRITES = {"PutItem", "DeleteItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems"}
_DYNAMODB_HEADERS = {"content-type": "application/x-amz-json-1.0"}
THROTTLING_BODY = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    }
).encode()
_DYNAMODB_ACCESS_DENIED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#AccessDeniedException",
        "message": "injected: the archiver crashed here",
    }
).encode()
_S3_HEADERS = {"content-type": "application/xml"}
_S3_ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>injected: the archiver crashed here</Message></Error>"
)
_S3_SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)

#: Where an archiver run can crash, in the order of its steps.
BOUNDARIES = ("before_write", "after_write", "before_index", "after_index", "mid_retire", "after_retire")
#: The archiver write each boundary is found at, and whether that write takes effect first.
_AT = {
    "before_write": ("write", False),
    "after_write": ("write", True),
    "before_index": ("index", False),
    "after_index": ("index", True),
    "mid_retire": ("retire", False),
    "after_retire": ("retire", True),
}


def dynamodb_reply(status: int, body: bytes, kind: str) -> Reply:
    return Reply(status, {**_DYNAMODB_HEADERS, "x-amzn-requestid": uuid.uuid4().hex}, body, kind=kind)


def throttled() -> Reply:
    return dynamodb_reply(400, THROTTLING_BODY, "throttled")


@dataclass(frozen=True)
class StorageFaultPlan:
    """How often each storage-leg fault happens (per request of the kind it applies to)."""

    throttle: float = 0.05  # DynamoDB data-plane requests: ProvisionedThroughputExceededException
    lose_write_response: float = 0.08  # DynamoDB writes: applied, then the answer is lost
    delay_conditional: float = 0.3  # conditional DynamoDB writes: held this long first
    delay_seconds: tuple[float, float] = (0.2, 2.0)
    #: ... except the archiver's (segment index items): a slow archiver rarely catches up with a
    #: delayed push, so fewer of its conditional puts are held
    delay_segment_index: float = 0.05
    delay_probe_reads: float = 0.5  # queries of the probe stores (first pull vs first push)
    probe_read_delay_seconds: tuple[float, float] = (0.02, 0.4)
    lose_put_object_response: float = 0.2  # S3 PutObject: stored, then the answer is lost
    s3_slow_down: float = 0.04  # S3 object requests: 503 SlowDown
    crash_rounds: int = 1  # each round crashes the archiver once at every boundary (seeded order)
    crash_skip: tuple[int, int] = (0, 2)  # matching archiver writes let through before each crash
    crashed_seconds: float = 0.3  # after a crash, the archiver's writes are refused this long


@dataclass(frozen=True)
class DynamoDBRequest:
    """What a DynamoDB request does, from its wire form."""

    operation: str
    store: str | None
    sort_keys: tuple[str, ...]
    conditional: bool
    has_parts: bool  # a PutItem of a commit item that names parts
    forward: bool | None  # a Query's ScanIndexForward
    #: The sort keys a BatchWriteItem or TransactWriteItems puts (the rest it deletes).
    put_keys: tuple[str, ...] = ()

    @property
    def write(self) -> bool:
        return self.operation in WRITES

    @property
    def label(self) -> str:
        """A short name for counting: ``put_commit``, ``put_commit_parts``, ``delete_part``..."""
        verb = {
            "PutItem": "put",
            "DeleteItem": "delete",
            "UpdateItem": "update",
            "BatchWriteItem": "batch_write",
            "TransactWriteItems": "transact_write",
        }.get(self.operation, self.operation.lower())
        if self.operation == "BatchWriteItem":
            if any(key.startswith("b#") for key in self.put_keys):
                return "batch_write_tombstones"
            return "batch_write_part_deletes" if all(k.startswith("p#") for k in self.sort_keys) else verb
        if self.operation == "TransactWriteItems":
            return verb
        noun = item_kind(self.sort_keys[0]) if self.sort_keys else "other"
        if noun == "commit" and self.has_parts:
            noun = "commit_parts"
        return f"{verb}_{noun}"

    @property
    def archiver_step(self) -> str | None:
        """The archiver's step this write belongs to (only the archiver writes these), if any."""
        if self.operation == "PutItem" and self.sort_keys and self.sort_keys[0].startswith("a#"):
            return "index"
        if self.operation == "BatchWriteItem" and any(key.startswith("b#") for key in self.put_keys):
            return "retire"  # tombstones over archived commit records
        if self.operation == "DeleteItem" and self.sort_keys and self.sort_keys[0].startswith("b#"):
            return "retire"  # the layout before tombstones deleted the commit records
        # (Deletes of parts alone are not told apart: a push that lost its parent deletes its own.)
        return None


def item_kind(sort_key: str) -> str:
    """The item layout of :mod:`stratasync.storage.dynamodb`, by sort key."""
    if sort_key == "meta":
        return "meta"
    return {"b#": "commit", "p#": "part", "a#": "segment_index"}.get(sort_key[:2], "other")


def classify_dynamodb(request: ProxiedRequest) -> DynamoDBRequest:
    operation = request.headers.get("x-amz-target", "").rpartition(".")[2]
    try:
        body: Any = json.loads(request.body or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    keys: list[dict[str, Any]] = []
    puts: list[dict[str, Any]] = []
    conditional = "ConditionExpression" in body
    has_parts = False
    if operation == "PutItem":
        keys.append(body.get("Item", {}))
        has_parts = "parts" in body.get("Item", {})
    elif operation in ("DeleteItem", "UpdateItem", "GetItem"):
        keys.append(body.get("Key", {}))
    elif operation == "BatchWriteItem":
        for requests in body.get("RequestItems", {}).values():
            for entry in requests:
                if "DeleteRequest" in entry:
                    keys.append(entry["DeleteRequest"].get("Key") or {})
                if "PutRequest" in entry:
                    keys.append(entry["PutRequest"].get("Item") or {})
                    puts.append(keys[-1])
    elif operation == "TransactWriteItems":
        for entry in body.get("TransactItems", []):
            for kind, action in entry.items():
                keys.append(action.get("Key") or action.get("Item") or {})
                if kind in ("Put", "Update"):
                    puts.append(keys[-1])
                conditional = conditional or kind == "ConditionCheck" or "ConditionExpression" in action
    elif operation == "Query":
        values = body.get("ExpressionAttributeValues", {})
        keys.append({"pk": values.get(":pk", {}), "sk": values.get(":lo", {})})
    store = next((str(key["pk"]["S"]) for key in keys if "S" in key.get("pk", {})), None)
    sort_keys = tuple(str(key["sk"]["S"]) for key in keys if "S" in key.get("sk", {}))
    forward = bool(body.get("ScanIndexForward", True)) if operation == "Query" else None
    put_keys = tuple(str(key["sk"]["S"]) for key in puts if "S" in key.get("sk", {}))
    return DynamoDBRequest(operation, store, sort_keys, conditional, has_parts, forward, put_keys)


def s3_operation(request: ProxiedRequest) -> str:
    """``PutObject``, ``GetObject``, ``HeadObject`` or ``other`` (path-style addressing)."""
    parts = urlsplit(request.path)
    bucket, _, key = parts.path.lstrip("/").partition("/")
    if not bucket or not key or "uploadId" in parts.query:
        return "other"
    return {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject"}.get(request.method, "other")


def s3_store(request: ProxiedRequest) -> str | None:
    """The store a segment object belongs to (keys ``stores/<store id>/segments/...``)."""
    key = urlsplit(request.path).path.lstrip("/").partition("/")[2]
    parts = unquote(key).split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "stores" else None


class ArchiverCrashes:
    """A seeded schedule of archiver crashes, one per boundary per round, shared by both proxies.

    The next boundary in the schedule is armed; the ``crash_skip``-th archiver write it matches
    after the previous crash gets the crash. Then every archiver write is refused for
    ``crashed_seconds`` (the run is dead; the next trigger starts a new one after that).
    """

    def __init__(
        self,
        seed: int,
        plan: StorageFaultPlan,
        *,
        schedule: list[str] | None = None,
        store: str | None = None,
    ) -> None:
        """``schedule``: these boundaries in this order, each at the first write it matches, instead
        of the seeded rounds; ``store``: crash only the archiver's writes for this store."""
        self.plan = plan
        self.store = store
        self._rng = random.Random(f"{seed}:archiver-crashes")
        self.schedule = (
            list(schedule)
            if schedule is not None
            else [
                boundary
                for _ in range(plan.crash_rounds)
                for boundary in self._rng.sample(BOUNDARIES, len(BOUNDARIES))
            ]
        )
        self._skips = (0, 0) if schedule is not None else plan.crash_skip
        self._skip = self._rng.randint(*self._skips)
        self._dead_until = 0.0
        self._lock = threading.Lock()
        self.enabled = True
        self.crashed: Counter[str] = Counter()

    def decide(self, step: str, store: str | None) -> tuple[str, bool] | None:
        """For one archiver write of ``step`` (write, index, retire) for ``store``: ``(kind,
        forward_first)`` of the crash to inject, or None to let it through."""
        with self._lock:
            if not self.enabled or (self.store is not None and store != self.store):
                return None
            now = time.monotonic()
            if now < self._dead_until:
                return "archiver_write_refused_after_crash", False
            if not self.schedule or _AT[self.schedule[0]][0] != step:
                return None
            if self._skip > 0:
                self._skip -= 1
                return None
            boundary = self.schedule.pop(0)
            self._skip = self._rng.randint(*self._skips)
            self._dead_until = now + self.plan.crashed_seconds
            self.crashed[boundary] += 1
            return f"archiver_crash_{boundary}", _AT[boundary][1]


class DynamoDBStorageFaults:
    """The DynamoDB proxy's policy under the storage fault plan (see the module docstring)."""

    def __init__(
        self,
        seed: int,
        plan: StorageFaultPlan,
        crashes: ArchiverCrashes | None,
        *,
        probe_prefix: str = "probe-",
    ) -> None:
        self.plan = plan
        self.crashes = crashes
        self.probe_prefix = probe_prefix
        self.enabled = True
        self._rng = random.Random(f"{seed}:dynamodb-storage")
        self._lock = threading.Lock()

    def __call__(self, request: ProxiedRequest) -> Action | Reply | Fault:
        if not self.enabled:
            return Action.FORWARD
        call = classify_dynamodb(request)
        if call.operation not in DATA_PLANE:
            return Action.FORWARD
        step = call.archiver_step
        if step is not None and self.crashes is not None:
            crash = self.crashes.decide(step, call.store)
            if crash is not None:
                kind, forward_first = crash
                reply = dynamodb_reply(400, _DYNAMODB_ACCESS_DENIED, kind)
                return Fault((kind,), then=reply, forward_first=forward_first)
        plan = self.plan
        with self._lock:
            rolls = [self._rng.random() for _ in range(3)]
            delay = self._rng.uniform(*plan.delay_seconds)
            probe_delay = self._rng.uniform(*plan.probe_read_delay_seconds)
        if rolls[0] < plan.throttle:
            return throttled()
        kinds: list[str] = []
        wait = 0.0
        delay_share = plan.delay_segment_index if call.archiver_step == "index" else plan.delay_conditional
        if call.conditional and rolls[1] < delay_share:
            kinds.append(f"delayed_conditional_{call.label}")
            wait = delay
        elif (
            call.operation == "Query"
            and (call.store or "").startswith(self.probe_prefix)
            and rolls[1] < plan.delay_probe_reads
        ):
            kinds.append("delayed_probe_query")
            wait = probe_delay
        then = Action.FORWARD
        if call.write and rolls[2] < plan.lose_write_response:
            kinds.append(f"lost_response_{call.label}")
            then = Action.DROP_RESPONSE
        return Fault(tuple(kinds), then=then, delay=wait) if kinds else Action.FORWARD


class S3StorageFaults:
    """The S3 proxy's policy: lost PutObject answers, SlowDown, and the archiver's write crashes."""

    def __init__(self, seed: int, plan: StorageFaultPlan, crashes: ArchiverCrashes | None) -> None:
        self.plan = plan
        self.crashes = crashes
        self.enabled = True
        self._rng = random.Random(f"{seed}:s3-storage")
        self._lock = threading.Lock()

    def __call__(self, request: ProxiedRequest) -> Action | Reply | Fault:
        operation = s3_operation(request)
        if not self.enabled or operation == "other":
            return Action.FORWARD
        if operation == "PutObject" and self.crashes is not None:
            crash = self.crashes.decide("write", s3_store(request))
            if crash is not None:
                kind, forward_first = crash
                reply = Reply(403, dict(_S3_HEADERS), _S3_ACCESS_DENIED, kind=kind)
                return Fault((kind,), then=reply, forward_first=forward_first)
        with self._lock:
            slow, lose = self._rng.random(), self._rng.random()
        if slow < self.plan.s3_slow_down:
            return Reply(503, dict(_S3_HEADERS), _S3_SLOW_DOWN, kind=f"slow_down_{operation}")
        if operation == "PutObject" and lose < self.plan.lose_put_object_response:
            return Fault(("lost_response_put_object",), then=Action.DROP_RESPONSE)
        return Action.FORWARD


class ArchiverLag:
    """A DynamoDB proxy observer: how long after its commit each batch was retired by the archiver
    (tombstoned, or deleted under the layout before tombstones). The push/archiver races need an
    archiver that keeps up; this tells whether a run had one."""

    def __init__(self) -> None:
        self._committed: dict[tuple[str, str], float] = {}
        self._retired: set[tuple[str, str]] = set()
        self.lags: list[float] = []
        #: Commit puts that arrived after the archiver had retired their parent's batch, and
        #: were refused by its tombstone (the push/archiver race of issue 9, reached).
        self.late_puts_on_retired = 0
        self._lock = threading.Lock()

    def observe(self, exchange: Exchange) -> None:
        call = classify_dynamodb(exchange.request)
        if call.store is None:
            return
        if exchange.status != 200:
            if (
                exchange.status == 400
                and call.operation == "PutItem"
                and call.conditional
                and call.sort_keys[:1]
                and call.sort_keys[0][:2] == "b#"
                and b"ConditionalCheckFailed" in exchange.body
            ):
                with self._lock:
                    if (call.store, call.sort_keys[0]) in self._retired:
                        self.late_puts_on_retired += 1
            return
        with self._lock:
            if (
                call.operation == "PutItem"
                and call.conditional
                and call.sort_keys[:1]
                and call.sort_keys[0][:2] == "b#"
            ):
                self._committed.setdefault((call.store, call.sort_keys[0]), exchange.finished)
            elif call.archiver_step == "retire":
                keys = call.put_keys if call.operation == "BatchWriteItem" else call.sort_keys
                for key in keys:
                    self._retired.add((call.store, key))
                    committed = self._committed.pop((call.store, key), None)
                    if committed is not None:
                        self.lags.append(exchange.finished - committed)

    def summary(self) -> dict[str, float]:
        """Batches retired, and the median and 90th percentile of their lag in seconds."""
        with self._lock:
            lags = sorted(self.lags)
        if not lags:
            return {"retired": 0, "late_puts_on_retired": self.late_puts_on_retired}
        return {
            "retired": len(lags),
            "late_puts_on_retired": self.late_puts_on_retired,
            "median_s": round(lags[len(lags) // 2], 2),
            "p90_s": round(lags[int(len(lags) * 0.9)], 2),
        }
