"""An event source mapping for the dev server: the eventlog table's DynamoDB stream into the
fanout function, as Lambda's poller does it on AWS (and :class:`CommitFeed`, its stand-in when
the eventlog is in memory).

It reads the same stream AWS would (moto and DynamoDB Local both serve DynamoDB Streams), so
the fan-out is driven by the commits themselves and not by a hint from the push path: what a
crash between commit and notification would lose on AWS is not lost here either, and what
the fan-out does on AWS (reading the head and the log, not the record) it does here. Like an
event source mapping with ``ParallelizationFactor`` 1 and unlimited retries:

* per shard one batch at a time, in order; records filtered as the mapping's filter does
  (``eventName`` INSERT, ``dynamodb.Keys.sk.S`` prefix ``b#``), only non-empty batches invoke;
* a failed invocation is retried with the same batch (back-off up to 5 s) until it succeeds;
* it starts at ``LATEST`` (no live connection can predate the dev server); shards that open
  later (DynamoDB Local rolls them) are read from their start, after their parent.

It polls every ``poll_interval`` seconds while WebSocket connections are open (``busy``), else
every ``idle_interval``. Given a ``wake`` event that the storage sets when it writes a stream
record (the embedded moto does, :meth:`~stratasync.devserver.embedded_moto.EmbeddedMoto.
on_stream_record`), it reads ``read_delay`` after that happens and otherwise polls only every
``idle_interval``, as a safety net: the event is a hint, the records still come from GetRecords.
The delay stands for Lambda's poller, which reads a shard about four times a second: the commits
of that window come in one batch, and a push that fans out itself (the usual case, as on AWS) is
not slowed down by the stream's fan-out of the same commit competing with it for the emulator.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from stratasync.devserver.gateway import stream_event
from stratasync.storage.aws import client_config, error_code
from stratasync.storage.dynamodb_items import BATCH_PREFIX, batch_sk

logger = logging.getLogger(__name__)

Invoke = Callable[[dict[str, Any]], "Future[Any]"]


def commit_record_filter(record: dict[str, Any]) -> bool:
    """The event source mapping's filter: ``{"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk":
    {"S": [{"prefix": "b#"}]}}}}`` (new commit records of the eventlog)."""
    sort_key = record.get("dynamodb", {}).get("Keys", {}).get("sk", {}).get("S", "")
    return (
        record.get("eventName") == "INSERT"
        and isinstance(sort_key, str)
        and sort_key.startswith(BATCH_PREFIX)
    )


class StreamPoller:
    """Polls one table's stream into a function (see the module docstring)."""

    def __init__(
        self,
        endpoint_url: str,
        table_name: str,
        invoke: Invoke,
        *,
        busy: Callable[[], bool] = lambda: True,
        poll_interval: float = 0.01,
        idle_interval: float = 0.25,
        batch_size: int = 100,
        region: str = "us-east-1",
        after_poll: Callable[[], None] | None = None,
        wake: threading.Event | None = None,
        read_delay: float = 0.0,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.table_name = table_name
        self.invoke = invoke
        self.busy = busy
        self.poll_interval = poll_interval
        self.idle_interval = idle_interval
        self.batch_size = batch_size
        self.region = region
        self.after_poll = after_poll
        self.wake = wake
        self.read_delay = read_delay
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Invocations made and records delivered (for tests and the bench).
        self.invocations = 0
        self.records_delivered = 0

    def start(self) -> StreamPoller:
        dynamodb = boto3.client("dynamodb", endpoint_url=self.endpoint_url, config=client_config())
        self._streams = boto3.client(
            "dynamodbstreams", endpoint_url=self.endpoint_url, config=client_config()
        )
        self.stream_arn: str = dynamodb.describe_table(TableName=self.table_name)["Table"]["LatestStreamArn"]
        #: shard id -> its current iterator (None: to be opened from its start)
        self._iterators: dict[str, str | None] = {}
        self._last_seq: dict[str, str] = {}
        self._done: set[str] = set()
        self._parents: dict[str, str | None] = {}
        for shard in self._describe():
            if "EndingSequenceNumber" not in shard.get("SequenceNumberRange", {}):
                self._iterators[shard["ShardId"]] = self._iterator(shard["ShardId"], "LATEST")
            else:
                self._done.add(shard["ShardId"])
        self._thread = threading.Thread(target=self._run, name="devserver-stream-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.wake is not None:
            self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _describe(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self._streams.describe_stream(**kwargs)["StreamDescription"]
            shards.extend(description.get("Shards", []))
            last = description.get("LastEvaluatedShardId")
            if not last:
                break
            kwargs["ExclusiveStartShardId"] = last
        for shard in shards:
            self._parents[shard["ShardId"]] = shard.get("ParentShardId")
        return shards

    def _iterator(self, shard_id: str, kind: str, sequence_number: str | None = None) -> str:
        kwargs: dict[str, Any] = {
            "StreamArn": self.stream_arn,
            "ShardId": shard_id,
            "ShardIteratorType": kind,
        }
        if sequence_number is not None:
            kwargs["SequenceNumber"] = sequence_number
        iterator: str = self._streams.get_shard_iterator(**kwargs)["ShardIterator"]
        return iterator

    def _discover(self) -> None:
        for shard in self._describe():
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators and shard_id not in self._done:
                self._iterators[shard_id] = None  # new since we started: read it from its start

    def _run(self) -> None:
        last_discovery = time.monotonic()
        while not self._stop.is_set():
            try:
                got = self._poll_once()
                if time.monotonic() - last_discovery > 5:
                    self._discover()
                    last_discovery = time.monotonic()
            except (BotoCoreError, ClientError) as error:
                if self._stop.is_set():
                    return
                logger.warning("stream poller: %s", error)
                got = False
                time.sleep(0.5)
            if self.after_poll is not None:
                self.after_poll()
            if not got:
                self._pause()

    def _pause(self) -> None:
        if self.wake is None:
            self._stop.wait(self.poll_interval if self.busy() else self.idle_interval)
            return
        if self.wake.wait(self.idle_interval) and self.read_delay > 0:
            self._stop.wait(self.read_delay)  # the records written meanwhile come in the same batch
        self.wake.clear()

    def _poll_once(self) -> bool:
        got = False
        for shard_id in list(self._iterators):
            parent = self._parents.get(shard_id)
            if parent is not None and parent in self._iterators:
                continue  # a child waits until its parent is read to its end
            iterator = self._iterators[shard_id]
            if iterator is None:
                iterator = self._iterator(shard_id, "TRIM_HORIZON")
            try:
                response = self._streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
            except ClientError as error:
                if error_code(error) not in ("ExpiredIteratorException", "TrimmedDataAccessException"):
                    raise
                last = self._last_seq.get(shard_id)
                self._iterators[shard_id] = (
                    self._iterator(shard_id, "AFTER_SEQUENCE_NUMBER", last)
                    if last
                    else self._iterator(shard_id, "LATEST")
                )
                continue
            records = response.get("Records", [])
            if records:
                got = True
                self._deliver([record for record in records if commit_record_filter(record)])
                self._last_seq[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
            following = response.get("NextShardIterator")
            if following is None:  # the shard is closed and read to its end
                del self._iterators[shard_id]
                self._done.add(shard_id)
                self._discover()
            else:
                self._iterators[shard_id] = following
        return got

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if deliver_until_done(self.invoke, stream_event(records, self.stream_arn, self.region), self._stop):
            self.invocations += 1
            self.records_delivered += len(records)


def deliver_until_done(invoke: Invoke, event: dict[str, Any], stop: threading.Event) -> bool:
    """Invoke the function with ``event`` until an invocation succeeds, as an event source mapping
    retries a failed batch (back-off from 0.1 s, doubling up to 5 s); False when ``stop`` is set
    first."""
    delay = 0.1
    while not stop.is_set():
        try:
            invoke(event).result(timeout=300)
            return True
        except Exception as error:  # the function failed: retry the batch, as Lambda does
            logger.warning("fanout function failed (%s); retrying the batch in %.1f s", error, delay)
            stop.wait(delay)
            delay = min(delay * 2, 5.0)
    return False


class CommitFeed:
    """The stand-in for the eventlog's stream and its event source mapping under ``stratasync dev
    --memory``, where the eventlog is an :class:`~stratasync.storage.memory.InMemoryStorage` and
    there is no stream to read.

    The storage calls :meth:`record` for every batch it commits, under its lock, so in commit order
    and before anyone can read the commit (its ``on_commit``): no commit is missed, none is recorded
    twice, and none is recorded that did not happen. The feed hands them to the fanout function as
    the mapping would hand it the stream's records: ``KEYS_ONLY`` ``INSERT`` records of commit
    records (``pk`` the store, ``sk`` ``b#<parent>``), at most ``batch_size`` a batch, one batch at a
    time and in order, ``read_delay`` after the first record of a batch (as :class:`StreamPoller`
    waits after a wake), a failed batch retried until it succeeds. The guarantees the fan-out
    relies on are the stream's: every commit at least once, in order per store. Records wait in
    memory until delivered, like the eventlog itself: gone when the server stops.
    """

    def __init__(
        self,
        invoke: Invoke,
        *,
        table_name: str,
        batch_size: int = 100,
        read_delay: float = 0.1,
        region: str = "us-east-1",
    ) -> None:
        self.invoke = invoke
        self.batch_size = batch_size
        self.read_delay = read_delay
        self.region = region
        self.stream_arn = f"arn:aws:dynamodb:{region}:000000000000:table/{table_name}/stream/memory"
        self._pending: list[dict[str, Any]] = []
        self._sequence = 0
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Invocations made and records delivered (for tests and the bench).
        self.invocations = 0
        self.records_delivered = 0

    def record(self, store_id: str, parent_seq_num: int) -> None:
        """A batch was committed on ``parent_seq_num`` in ``store_id`` (never blocks)."""
        with self._ready:
            self._sequence += 1
            self._pending.append(
                {
                    "eventID": f"memory-{self._sequence}",
                    "eventName": "INSERT",
                    "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb",
                    "awsRegion": self.region,
                    "dynamodb": {
                        "ApproximateCreationDateTime": int(time.time()),
                        "Keys": {"pk": {"S": store_id}, "sk": {"S": batch_sk(parent_seq_num)}},
                        "SequenceNumber": f"{self._sequence:021d}",
                        "StreamViewType": "KEYS_ONLY",
                    },
                }
            )
            self._ready.notify()

    @property
    def pending(self) -> int:
        """Records recorded and not delivered yet."""
        with self._ready:
            return len(self._pending)

    def start(self) -> CommitFeed:
        self._thread = threading.Thread(target=self._run, name="devserver-commit-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._ready:
                while not self._pending and not self._stop.is_set():
                    self._ready.wait()
            if self._stop.wait(self.read_delay):
                return
            with self._ready:
                records = self._pending[: self.batch_size]
            event = stream_event(records, self.stream_arn, self.region)
            if deliver_until_done(self.invoke, event, self._stop):
                with self._ready:
                    del self._pending[: len(records)]
                self.invocations += 1
                self.records_delivered += len(records)
