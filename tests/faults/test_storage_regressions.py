"""Deterministic storage-leg scenarios, one per defect the storage tier exists to find, and an
archiver crash at every step boundary.

One ``stratasync dev --segment-events 2`` (a subprocess) on DynamoDB Local and SeaweedFS, each
behind a :class:`~tests.faults.proxy.FaultProxy` whose policy a test sets: it holds one request
until the test releases it, or loses one answer, picked by what the request writes. Clients are
raw-HTTP (:class:`~tests.faults.raw_client.RawClient`) through a client proxy whose observer records
the history, and every test ends with the history checker (:mod:`tests.faults.history`) over the
final logs read from every batch start.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from stratasync.storage.dynamodb import make_client
from stratasync.storage.dynamodb_items import batch_sk
from tests.emulators import free_port
from tests.faults.harness import BUCKET, TABLE, DevServerProcess, read_final_logs
from tests.faults.history import History, HistoryReport, check_history
from tests.faults.proxy import Action, Exchange, Fault, FaultProxy, Policy, ProxiedRequest, Reply
from tests.faults.raw_client import (
    UNICODE_TEXTS,
    RawClient,
    RawRpcError,
    RawTransportError,
)
from tests.faults.storage import (
    BOUNDARIES,
    ArchiverCrashes,
    ArchiverLag,
    DynamoDBStorageFaults,
    S3StorageFaults,
    StorageFaultPlan,
    classify_dynamodb,
    s3_store,
)

pytestmark = [pytest.mark.faults, pytest.mark.dynamodb_local, pytest.mark.seaweedfs]

Decision = Action | Reply | Fault
#: No random faults at all: the crash tests inject only their one crash.
QUIET = StorageFaultPlan(
    throttle=0,
    lose_write_response=0,
    delay_conditional=0,
    delay_segment_index=0,
    delay_probe_reads=0,
    lose_put_object_response=0,
    s3_slow_down=0,
    crashed_seconds=0.5,
)


def _forward(request: ProxiedRequest) -> Decision:
    return Action.FORWARD


class Rig:
    """The dev server and its three proxies; tests swap the policies and read the history."""

    def __init__(self, dynamodb_endpoint: str, s3_endpoint: str, stack: ExitStack) -> None:
        self.dynamodb_endpoint = dynamodb_endpoint
        self.history = History()
        self.dynamodb_policy: Any = _forward
        self.s3_policy: Any = _forward
        self.client_policy: Any = _forward
        self.lag = ArchiverLag()
        dynamodb = stack.enter_context(
            FaultProxy(dynamodb_endpoint, lambda r: self.dynamodb_policy(r), observer=self._observe_dynamodb)
        )
        s3 = stack.enter_context(FaultProxy(s3_endpoint, lambda r: self.s3_policy(r), preserve_host=True))
        extra = ("--s3-endpoint", s3.url.rstrip("/"), "--bucket", BUCKET, "--segment-events", "2")
        self.server = DevServerProcess(dynamodb.url.rstrip("/"), free_port(), extra)
        self.server.start()
        stack.callback(self.server.kill)
        self.proxy = stack.enter_context(
            FaultProxy(self.server.url, lambda r: self.client_policy(r), observer=self._observe)
        )

    def _observe(self, exchange: Exchange) -> None:
        self.history.observe(exchange)

    def _observe_dynamodb(self, exchange: Exchange) -> None:
        self.lag.observe(exchange)

    def reset(self) -> None:
        self.history = History()
        self.lag = ArchiverLag()
        self.dynamodb_policy = self.s3_policy = self.client_policy = _forward

    def client(self, store_id: str, name: str) -> RawClient:
        return RawClient(self.proxy.url, store_id, name)

    def check(self, *store_ids: str) -> HistoryReport:
        """The history checker over the final logs (read from every batch start)."""
        logs, unreadable = read_final_logs(self.server.url, list(store_ids), self.history)
        return check_history(self.history, logs, unreadable)

    def hot_parents(self, store_id: str) -> list[int]:
        """Parents of the store's live commit records (not yet retired: no tombstone ``seg``),
        read from DynamoDB directly, not through the proxy."""
        response = make_client(self.dynamodb_endpoint).query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :b)",
            ExpressionAttributeValues={":pk": {"S": store_id}, ":b": {"S": "b#"}},
            ConsistentRead=True,
        )
        return [int(item["sk"]["S"][2:]) for item in response["Items"] if "seg" not in item]

    def archived_through(self, store_id: str) -> int:
        url = self.server.url.rstrip("/") + "/archive"
        pull_from: int = httpx.get(url, params={"storeId": store_id}, timeout=30).json()["pullFrom"]
        return pull_from

    def wait_archived(self, store_id: str, through: int, seconds: float = 30) -> None:
        """Until a segment covers ``through`` and its hot batches are retired (the archiver is async)."""
        deadline = time.monotonic() + seconds
        while (
            self.archived_through(store_id) < through or min(self.hot_parents(store_id), default=0) < through
        ):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{store_id} not archived through {through}: hot parents {self.hot_parents(store_id)}"
                )
            time.sleep(0.1)


@pytest.fixture(scope="module")
def rig(dynamodb_local_endpoint: str, seaweedfs_endpoint: str) -> Iterator[Rig]:
    with ExitStack() as stack:
        yield Rig(dynamodb_local_endpoint, seaweedfs_endpoint, stack)


@pytest.fixture
def quiet_rig(rig: Rig) -> Iterator[Rig]:
    rig.reset()
    yield rig
    rig.reset()


def fresh(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}"


def batch(client: str, parent: int, count: int, text: str = "x") -> list[dict[str, Any]]:
    return [
        {
            "name": "v1.RawNote",
            "args": {"id": uuid.uuid4().hex, "text": text},
            "seqNum": parent + 1 + index,
            "parentSeqNum": parent + index,
            "clientId": client,
            "sessionId": f"{client}-session",
        }
        for index in range(count)
    ]


def outcome_of(push: Any) -> str:
    try:
        push()
    except RawRpcError as error:
        return error.tag
    except RawTransportError:
        return "lost"
    return "Success"


def assert_clean(report: HistoryReport) -> None:
    assert report.violations == 0, f"{report.line()}\n{report.details()}"
    assert report.acked_events > 0


def test_a_delayed_commit_put_does_not_land_on_an_archived_parent(quiet_rig: Rig) -> None:
    """Issue 9, defect 1 (push/archiver race): a writer read head 1 and its commit put is delayed;
    meanwhile b commits on parent 1, c on top, and the archiver seals 1..2 and retires their
    batches. The delayed put must not land (it did on the key the archiver had deleted: an
    acknowledged batch forked the log, and the next archiver run deleted it)."""
    rig = quiet_rig
    store = fresh("race")
    gate, held = threading.Event(), threading.Event()

    def hold_the_first_put_on_parent_1(request: ProxiedRequest) -> Decision:
        call = classify_dynamodb(request)
        if call.store == store and call.conditional and batch_sk(1) in call.sort_keys and not held.is_set():
            held.set()
            return Fault(("held_commit_put",), until=gate)
        return Action.FORWARD

    rig.dynamodb_policy = hold_the_first_put_on_parent_1
    x, a, b, c = (rig.client(store, name) for name in ("x", "a", "b", "c"))
    x.push(batch("x", 0, 1))
    outcome: dict[str, str] = {}
    pusher = threading.Thread(target=lambda: outcome.update(a=outcome_of(lambda: a.push(batch("a", 1, 1)))))
    pusher.start()
    assert held.wait(15), "a's commit put never came"  # a read head 1 and its put is on its way
    b.push(batch("b", 1, 1))  # b commits on parent 1
    c.push(batch("c", 2, 2))  # c commits on top; the archiver seals 1..2 and retires their batches
    rig.wait_archived(store, 2)
    gate.set()  # a's delayed put arrives
    pusher.join(30)
    assert_clean(rig.check(store))
    # It arrived after b's batch was retired, and the tombstone refused it (the race was reached).
    assert rig.lag.late_puts_on_retired == 1, rig.lag.summary()


def test_a_lost_answer_to_a_multi_part_commit_put_keeps_the_batch_readable(quiet_rig: Rig) -> None:
    """Issue 9, defect 2: the answer to an applied multi-part commit put is lost. The retry meets
    its own commit record and must keep its parts (it deleted them as "unreachable" and answered
    already committed: the record named parts that were gone, and every later pull failed)."""
    rig = quiet_rig
    store = fresh("parts")
    lost = threading.Event()

    def lose_the_first_multi_part_commit_answer(request: ProxiedRequest) -> Decision:
        call = classify_dynamodb(request)
        if call.store == store and call.has_parts and call.conditional and not lost.is_set():
            lost.set()
            return Fault(("lost_response_put_commit_parts",), then=Action.DROP_RESPONSE)
        return Action.FORWARD

    rig.dynamodb_policy = lose_the_first_multi_part_commit_answer
    client = rig.client(store, "big")
    large = batch("big", 0, 6)
    for event in large:  # incompressible: 6 x 2,000 random hex characters zip to about 6 KB
        event["args"]["text"] = os.urandom(1000).hex()
    assert outcome_of(lambda: client.push(large)) == "Success"
    assert lost.is_set(), "the commit put was not a multi-part one"
    assert_clean(rig.check(store))


def test_retrying_an_acknowledged_push_after_its_batch_was_archived_is_acknowledged(quiet_rig: Rig) -> None:
    """Issue 9, defect 3: a push is acknowledged (the answer lost on the way), its batch archived,
    and the same push sent again: it must be acknowledged again (it got ServerAheadError)."""
    rig = quiet_rig
    store = fresh("retry")
    first = threading.Event()

    def lose_the_first_push_answer(request: ProxiedRequest) -> Decision:
        if (
            request.headers.get("x-fault-client") == "r"
            and b"SyncHttpRpc.Push" in request.body
            and not first.is_set()
        ):
            first.set()
            return Action.DROP_RESPONSE
        return Action.FORWARD

    rig.client_policy = lose_the_first_push_answer
    retrier, other = rig.client(store, "r"), rig.client(store, "o")
    pushed = batch("r", 0, 2)
    assert outcome_of(lambda: retrier.push(pushed)) == "lost"  # committed; the answer was lost
    other.push(batch("o", 2, 2))  # the archiver seals 1..2 and retires their batch
    rig.wait_archived(store, 2)
    outcome = outcome_of(lambda: retrier.push(pushed))  # the retry, unchanged
    report = rig.check(store)
    assert outcome == "Success", f"the retry got {outcome}"
    assert_clean(report)


def test_a_first_pull_racing_the_first_push_is_answered(quiet_rig: Rig) -> None:
    """Issue 9, defect 7: a store's first pull races its first push; with every query of the store
    held 0.3 s, the push commits between the pull's reads. The pull must be answered (it got
    UnknownError: "events after 0 up to 0 are neither hot nor archived")."""
    rig = quiet_rig
    store = fresh("first")
    held: list[str] = []

    def hold_every_query_of_the_store(request: ProxiedRequest) -> Decision:
        call = classify_dynamodb(request)
        if call.store == store and call.operation == "Query":
            held.append(call.sort_keys[0] if call.sort_keys else "")
            return Fault(("held_query",), delay=0.3)
        return Action.FORWARD

    rig.dynamodb_policy = hold_every_query_of_the_store
    puller, pusher = rig.client(store, "p"), rig.client(store, "w")
    outcome: dict[str, str] = {}
    reader = threading.Thread(target=lambda: outcome.update(pull=outcome_of(lambda: puller.pull(0))))
    reader.start()
    time.sleep(0.15)  # the pull is at its first query; the push commits while its reads are held
    pusher.push(batch("w", 0, 1))
    reader.join(30)
    assert held, "no query was held"
    assert outcome["pull"] == "Success"
    assert_clean(rig.check(store))


@pytest.mark.parametrize(
    "text", UNICODE_TEXTS, ids=[text.encode("unicode_escape").decode()[:24] for text in UNICODE_TEXTS]
)
def test_payloads_with_unicode_edge_cases_round_trip(quiet_rig: Rig, text: str) -> None:
    """Lone surrogates (JSON escapes such as ``\\ud83d``) once failed pushes with UnknownError."""
    rig = quiet_rig
    store = fresh("unicode")
    client = rig.client(store, "u")
    events = batch("u", 0, 1, text=text) + batch("u", 1, 1, text=f"{text} and after")
    assert outcome_of(lambda: client.push(events)) == "Success"
    assert_clean(rig.check(store))  # the event read back is the one pushed, escape for escape


def _by_store(policies: dict[str, Policy], store_of: Callable[[ProxiedRequest], str | None]) -> Policy:
    """One proxy policy that hands each request to the policy of the store it is for."""

    def policy(request: ProxiedRequest) -> Decision:
        chosen = policies.get(store_of(request) or "")
        return Action.FORWARD if chosen is None else chosen(request)

    return policy


def _crash_and_recover(rig: Rig, store: str, crashes: ArchiverCrashes, boundary: str) -> None:
    writer, reader = rig.client(store, "w"), rig.client(store, "rd")
    reader.pull(0)
    head = 0
    for _ in range(4):  # 1..2 sealable when 3 lands: the archiver runs, and crashes at the boundary
        writer.push(batch("w", head, 1))
        head += 1
        reader.pull(max(0, head - 2))
        time.sleep(0.2)
    deadline = time.monotonic() + 30
    while not crashes.crashed[boundary]:
        assert time.monotonic() < deadline, f"{boundary}: the archiver never reached the boundary"
        time.sleep(0.1)
    time.sleep(QUIET.crashed_seconds)
    for _ in range(4):  # later runs finish what the crashed one left
        writer.push(batch("w", head, 1))
        head += 1
        reader.pull(max(0, head - 3))
    rig.wait_archived(store, 6)


def test_an_archiver_crash_at_each_step_leaves_the_log_whole(quiet_rig: Rig) -> None:
    """One store per boundary, all at once (each store's archiver crashes once, at its boundary;
    then later runs finish the job): every log whole, every acked event there once."""
    rig = quiet_rig
    stores = {boundary: fresh(f"crash-{boundary.replace('_', '-')}") for boundary in BOUNDARIES}
    crashes = {b: ArchiverCrashes(0, QUIET, schedule=[b], store=stores[b]) for b in BOUNDARIES}
    rig.dynamodb_policy = _by_store(
        {stores[b]: DynamoDBStorageFaults(0, QUIET, crashes[b]) for b in BOUNDARIES},
        lambda request: classify_dynamodb(request).store,
    )
    rig.s3_policy = _by_store(
        {stores[b]: S3StorageFaults(0, QUIET, crashes[b]) for b in BOUNDARIES}, s3_store
    )
    failures: dict[str, BaseException] = {}

    def run(boundary: str) -> None:
        try:
            _crash_and_recover(rig, stores[boundary], crashes[boundary], boundary)
        except BaseException as error:
            failures[boundary] = error

    threads = [threading.Thread(target=run, args=(b,), daemon=True) for b in BOUNDARIES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not [t for t in threads if t.is_alive()], "a crash scenario did not finish in 90 s"
    assert not failures, "; ".join(f"{b}: {e!r}" for b, e in failures.items())
    assert {b: crashes[b].crashed[b] for b in BOUNDARIES} == dict.fromkeys(BOUNDARIES, 1)
    for boundary in BOUNDARIES:
        report = rig.check(stores[boundary])
        assert report.violations == 0, f"{boundary}: {report.line()}\n{report.details()}"
        assert report.acked_events == 8, f"{boundary}: {report.line()}"
