"""Convergence under faults: N clients commit M events each into one store through ``stratasync dev``
on DynamoDB Local while the network and the servers misbehave; at the end all agree, and the
recorded history of the run checks out.

Set-up of one run (one seed)::

    clients --> [client proxy] --> stratasync dev (subprocess) --> [DynamoDB proxy] --> DynamoDB Local
                 drops acks,        SIGKILLed and restarted    |     throttles; with --storage-faults:
                 delivers twice,    mid-run                    |     loses answers of applied writes,
                 takes clients      (Lambda workers and the    |     delays conditional writes,
                 offline; records   archiver with it)          |     crashes the archiver at each step
                 the history                                   +-> [S3 proxy] --> SeaweedFS (or moto)
                                                                     (--storage-faults: loses PutObject
                                                                     answers, SlowDown, archiver crashes)

* N-1 clients are ``Store`` objects in this process (background sync threads, one writer thread
  each); one client runs in a subprocess (:mod:`tests.faults.client_process`) that is SIGKILLed
  at random moments and started again from its SQLite file.
* Every choice (pacing, offline periods, which requests are dropped, duplicated, throttled,
  delayed or crashed, when the dev server and the client process are killed) comes from
  ``random.Random`` seeded with the run's seed (per client, so one client's schedule does not
  depend on the others'). Thread scheduling is not seeded, so a seed fixes the fault plan, not
  the exact interleaving.
* Every run has a deadline; a run that does not converge in time fails with its seed. A run
  whose backend keeps answering ``UnknownError`` stops early.

**The storage tier** (:class:`StorageOptions`, ``--storage-faults``) adds the storage leg's
faults (:mod:`tests.faults.storage`), the archive (an S3 proxy in front of SeaweedFS or moto;
``--segment-events`` 1..5, so the archiver runs after almost every push), large events (a
batch compresses to more than 3.5 KB: the parts path), payloads with unicode edge cases,
raw-HTTP clients in a second store (lone surrogates; small batches at a quick pace; they re-send a
push whose answer was lost as it is, after a pause in which it may be archived;
:mod:`tests.faults.raw_client`), and fresh probe stores on which a first pull races the first push.

At the end every client must hold the identical eventlog (order, seqNums, clients, args) and
identical tables, with nothing pending, and the backend's log must hold every client event
exactly once, seqNums 1..N without gaps. Before that, the **history checker**
(:mod:`tests.faults.history`) checks every acknowledgement and every pull observation of the run
(recorded by the client proxy) against the final logs, read from 0 and then from every batch
start and every 5th seqNum: acked events lost or doubled, forks (one seqNum seen as two events),
gaps, acknowledged pushes refused on a retry, and ``UnknownError`` answers.

Many seeds::

    .venv/bin/python -m tests.faults.harness --seeds 50                    # the client-leg tier
    .venv/bin/python -m tests.faults.harness --storage-faults --seeds 100  # the storage tier
    .venv/bin/python -m tests.faults.harness --storage-faults --seeds 100 --keep-going --json

(see ``--help``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from stratasync.client import RetryPolicy, Store
from stratasync.client.schema import Event
from stratasync.client.todos import schema, todo_created
from tests.devserver_process import start_dev_process
from tests.emulators import free_port
from tests.faults.client_process import CLIENT_HEADER
from tests.faults.history import History, check_history
from tests.faults.proxy import Action, Fault, FaultProxy, ProxiedRequest, Reply
from tests.faults.raw_client import (
    STORE_SAFE_TEXTS,
    UNICODE_TEXTS,
    RawClient,
    RawRpcError,
    RawTransportError,
    race_first_pull_and_push,
    raw_event,
    run_raw_writer,
)
from tests.faults.storage import (
    DATA_PLANE,
    ArchiverCrashes,
    ArchiverLag,
    DynamoDBStorageFaults,
    S3StorageFaults,
    StorageFaultPlan,
    throttled,
)

_T = TypeVar("_T")
ROOT = Path(__file__).parents[2]
TABLE = "stratasync-faults"
BUCKET = "stratasync-faults"

#: A run stops early once the backend failed this many pulls with ``UnknownError`` (a healthy
#: one: none; a store it cannot read makes every client retry for ever).
ABORT_AFTER_PULL_ERRORS = 40
#: Of each final pull from a cursor, the first events are recorded (a fork shows at the start).
_FIRST_EVENTS_RECORDED = 12


class ConvergenceError(AssertionError):
    """A run ended with clients or the backend disagreeing, or did not finish in time."""

    #: The run's report, when the run got as far as checking its history.
    report: RunReport | None = None


@dataclass(frozen=True)
class FaultPlan:
    """How often each client-leg fault happens."""

    drop_response: float = 0.06  # per client request: forwarded, then the answer is lost
    duplicate: float = 0.06  # per client request: delivered twice
    throttle: float = 0.08  # per DynamoDB data-plane request: ProvisionedThroughputExceededException
    offline: float = 0.12  # per commit: the client goes offline for a while first
    offline_seconds: tuple[float, float] = (0.3, 1.5)
    pace_seconds: tuple[float, float] = (0.05, 0.5)  # between one client's commits
    restart_after: tuple[float, float] = (0.5, 2.5)  # dev server SIGKILL, seconds after the start
    restart_pause: tuple[float, float] = (0.1, 0.8)
    kills: tuple[int, int] = (1, 2)  # SIGKILLs of the client process
    kill_after: tuple[float, float] = (0.7, 1.8)  # seconds into each life of the client process
    raw_drop_response: float = 0.15  # per push of a raw-HTTP client: the answer is lost


@dataclass(frozen=True)
class StorageOptions:
    """The storage tier of a run (see the module docstring)."""

    #: The S3 endpoint (SeaweedFS or moto) the dev server archives to, through the S3 proxy.
    s3_endpoint: str
    #: The storage-leg faults; None: none (the client-leg faults and DynamoDB throttling only).
    faults: StorageFaultPlan | None = field(default_factory=StorageFaultPlan)
    #: ``stratasync dev --segment-events``; None: seeded, 1..5.
    segment_events: int | None = None
    #: Each commit of an in-process client is 2..4 events of 2,400 hex characters (multi-part batches).
    large: bool = True
    #: Unicode edge cases in the payloads (lone surrogates only from the raw clients).
    unicode: bool = True
    raw_clients: int = 4
    raw_events: int = 16
    #: Events per push and seconds between pushes of a raw client (seeded in these ranges).
    raw_batch_sizes: tuple[int, int] = (1, 4)
    raw_pace: tuple[float, float] = (0.02, 0.2)
    #: Fresh stores on which a first pull races the first push.
    probes: int = 6


@dataclass
class RunReport:
    seed: int
    clients: int
    events_per_client: int
    seconds: float = 0.0
    backend_events: int = 0
    client_faults: dict[str, int] = field(default_factory=dict)
    dynamodb_faults: dict[str, int] = field(default_factory=dict)
    s3_faults: dict[str, int] = field(default_factory=dict)
    dev_server_restarts: int = 0
    client_process_kills: int = 0
    rebases: int = 0
    segment_events: int | None = None
    segments_sealed: int = 0
    archiver_failures: dict[str, int] = field(default_factory=dict)
    raw_clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    #: Batches retired by the archiver, and how long after their commit (median, p90).
    archiver_lag: dict[str, float] = field(default_factory=dict)
    #: Seconds from the start until the writers were done, the final syncs, the checker's reads.
    phases: dict[str, float] = field(default_factory=dict)

    def faults(self) -> dict[str, int]:
        """Every injected fault by kind (prefixed by the leg it was injected on)."""
        shown: dict[str, int] = {}
        for prefix, counts in (
            ("", self.client_faults),
            ("dynamodb_", self.dynamodb_faults),
            ("s3_", self.s3_faults),
        ):
            for key, value in counts.items():
                if "forward" not in key:
                    shown[f"{prefix}{key}"] = value
        return shown

    def line(self) -> str:
        shown = ", ".join(f"{key} {value}" for key, value in sorted(self.faults().items()))
        archive = (
            f"; --segment-events {self.segment_events}: {self.segments_sealed} segments sealed, "
            f"{sum(self.archiver_failures.values())} archiver runs failed, batches retired "
            f"{self.archiver_lag.get('median_s', '-')} s (p90 {self.archiver_lag.get('p90_s', '-')} s) "
            f"after their commit, {self.archiver_lag.get('late_puts_on_retired', 0)} commit puts "
            "refused by a retired batch's tombstone"
            if self.segment_events
            else ""
        )
        history = self.history
        checked = (
            f"; history: {history.get('acked_events', 0)} acked events checked, "
            f"{history.get('unanswered_events', 0)} committed in pushes left unanswered, "
            f"lost {history.get('lost', 0)}, "
            f"forks {history.get('forks', 0)}, refused retries {history.get('refused_retries', 0)}, "
            f"server errors {history.get('server_errors', 0)}"
            if history
            else ""
        )
        return (
            f"seed {self.seed}: {self.clients} clients x {self.events_per_client} commits in "
            f"{self.seconds:.1f} s; backend log {self.backend_events} events; "
            f"{self.dev_server_restarts} dev server restart(s), {self.client_process_kills} client kill(s), "
            f"{self.rebases} rebases{archive}{checked}; faults: {shown}"
        )


class _Deadline:
    def __init__(self, seed: int, seconds: float, history: History | None = None) -> None:
        self.seed = seed
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.history = history

    def left(self, what: str) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise ConvergenceError(f"seed {self.seed}: {what}: over the {self.seconds:g} s deadline")
        if self.history is not None and self.history.server_errors("pull") >= ABORT_AFTER_PULL_ERRORS:
            raise ConvergenceError(
                f"seed {self.seed}: {what}: the backend failed {self.history.server_errors('pull')} "
                f"pulls with UnknownError, stopped early"
            )
        return remaining


class DevServerProcess:
    """``stratasync dev`` as a subprocess (own process group) on a fixed port, killable and restartable."""

    def __init__(self, dynamodb_endpoint: str, port: int, extra_args: tuple[str, ...] = ()) -> None:
        self.dynamodb_endpoint = dynamodb_endpoint
        self.port = port
        self.extra_args = extra_args
        self.url = f"http://127.0.0.1:{port}/"
        self._process: subprocess.Popen[str] | None = None
        #: Output lines of every life of the server (its reader threads keep appending).
        self.lines: list[list[str]] = []

    def start(self, timeout: float = 90.0) -> None:
        self._process, lines = start_dev_process(
            self.port,
            "--dynamodb-endpoint",
            self.dynamodb_endpoint,
            "--table",
            TABLE,
            "--workers",
            "2",
            *self.extra_args,
            timeout=timeout,
            new_session=True,  # its own process group: a kill takes its Lambda workers too
        )
        self.lines.append(lines)

    def output(self) -> list[str]:
        return [line for lines in self.lines for line in list(lines)]

    def kill(self) -> None:
        """SIGKILL the server and its worker processes, as a crash would."""
        if self._process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=20)
        self._process = None


@contextmanager
def _dynamodb_local() -> Iterator[str]:
    from tests import emulators

    with emulators.dynamodb_local() as endpoint:
        yield endpoint


@contextmanager
def _s3(kind: str) -> Iterator[str]:
    if kind == "moto":
        from stratasync.devserver.embedded_moto import EmbeddedMoto

        with EmbeddedMoto() as moto:
            yield moto.endpoint
        return
    from tests import emulators

    with emulators.seaweedfs() as endpoint:
        yield endpoint


class _ClientFaults:
    """The client proxy's policy: per-client seeded drops and duplicates, and offline periods."""

    def __init__(self, seed: int, plan: FaultPlan, clients: int) -> None:
        self.seed = seed
        self.plan = plan
        self.enabled = True
        self._rngs: dict[str, random.Random] = {}
        self._offline_until: dict[str, float] = {}
        self._pushes: Counter[str] = Counter()
        # Besides the random faults, one seeded client surely loses the ack of its first push and
        # has its second push (the retry) delivered twice, so every run has both cases.
        self.marked = f"c{random.Random(f'{seed}:marked').randrange(clients - 1)}"
        self._lock = threading.Lock()

    def go_offline(self, client: str, seconds: float) -> None:
        with self._lock:
            self._offline_until[client] = time.monotonic() + seconds

    def __call__(self, request: ProxiedRequest) -> Action | Reply | Fault:
        client = request.headers.get(CLIENT_HEADER, "?")
        if client.startswith("probe"):
            return Action.FORWARD  # the probes race on timing; faults would only blur it
        push = b'"SyncHttpRpc.Push"' in request.body
        with self._lock:
            if time.monotonic() < self._offline_until.get(client, 0.0):
                return Action.REFUSE
            if not self.enabled:
                return Action.FORWARD
            if push:
                self._pushes[client] += 1
                if client == self.marked and self._pushes[client] <= 2:
                    return Action.DROP_RESPONSE if self._pushes[client] == 1 else Action.DUPLICATE
            rng = self._rngs.setdefault(client, random.Random(f"{self.seed}:network:{client}"))
            roll = rng.random()
        drop = self.plan.raw_drop_response if push and client.startswith("r") else self.plan.drop_response
        if roll < drop:
            return Action.DROP_RESPONSE
        if roll < drop + self.plan.duplicate:
            return Action.DUPLICATE
        return Action.FORWARD


class _DynamoDBFaults:
    """The DynamoDB proxy's policy without the storage tier: a seeded share of data-plane
    requests is throttled."""

    def __init__(self, seed: int, plan: FaultPlan) -> None:
        self.plan = plan
        self.enabled = True
        self._rng = random.Random(f"{seed}:dynamodb")
        self._lock = threading.Lock()

    def __call__(self, request: ProxiedRequest) -> Action | Reply | Fault:
        operation = request.headers.get("x-amz-target", "").rpartition(".")[2]
        with self._lock:
            throttle = self.enabled and operation in DATA_PLANE and self._rng.random() < self.plan.throttle
        return throttled() if throttle else Action.FORWARD


def _forward_all(request: ProxiedRequest) -> Action:
    return Action.FORWARD


def _log_of(store: Store) -> list[tuple[int, str, str, str]]:
    return [(e.seq_num, e.client_id, e.name, json.dumps(e.args, sort_keys=True)) for e in store.events()]


def _table_of(store: Store) -> list[tuple[object, ...]]:
    return [tuple(row) for row in store.query("SELECT * FROM todos ORDER BY id")]


def _commit_of(seed: int, name: str, number: int, storage: StorageOptions | None) -> list[Event]:
    """What one in-process client commits as its ``number``-th commit (ids ``name-number[.k]``)."""
    if storage is None:
        return [todo_created(id=f"{name}-{number}", text=f"{name} todo {number}")]
    rng = random.Random(f"{seed}:commit:{name}:{number}")
    count = rng.randint(2, 4) if storage.large else 1
    events = []
    for part in range(count):
        text = f"{name} todo {number}.{part}"
        if storage.unicode:
            text += " " + rng.choice(STORE_SAFE_TEXTS)
        if storage.large:
            text += " " + rng.randbytes(1200).hex()  # incompressible: 2..4 of them pass 3.5 KB compressed
        events.append(todo_created(id=f"{name}-{number}" + (f".{part}" if part else ""), text=text))
    return events


def _join(threads: list[threading.Thread], deadline: _Deadline, what: str) -> None:
    for thread in threads:
        while thread.is_alive():
            thread.join(min(1.0, deadline.left(what)))


def _sync_until_done(store: Store, deadline: _Deadline) -> None:
    while True:
        try:
            store.sync(timeout=min(10.0, deadline.left("final sync")))
            return
        except Exception as error:
            try:
                deadline.left("final sync")
            except ConvergenceError as late:
                raise ConvergenceError(f"{late}; a client's final sync failed: {error!r}") from error


def read_final_logs(
    url: str, store_ids: list[str], history: History
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Each store's log from seqNum 1 (straight from the dev server), then a pull from the start
    of every batch (where a hidden commit item would show) and from every 5th event in between;
    the first events of each answer are recorded as observations."""
    logs: dict[str, list[dict[str, Any]]] = {}
    unreadable: dict[str, str] = {}
    for store_id in store_ids:
        reader = RawClient(url, store_id, "final")
        try:
            items = _retrying(lambda reader=reader: reader.pull_all_items(0))  # type: ignore[misc]
            log = [event for event, _ in items]
            history.record_pull(store_id, "final", 0, log, time.monotonic())
            stamps = [stamp for _, stamp in items]
            batch_starts = {index for index in range(1, len(log)) if stamps[index] != stamps[index - 1]}
            for cursor in sorted(batch_starts | set(range(5, len(log), 5))):
                page = _retrying(lambda cursor=cursor, reader=reader: reader.pull_items(cursor))  # type: ignore[misc]
                events = [event for event, _ in page[:_FIRST_EVENTS_RECORDED]]
                history.record_pull(store_id, "final", cursor, events, time.monotonic())
            logs[store_id] = log
        except (RawRpcError, RawTransportError) as error:
            unreadable[store_id] = str(error)
        finally:
            reader.close()
    return logs, unreadable


def _retrying(read: Callable[[], _T]) -> _T:
    """A final read, retried a few times on transport errors and StorageUnavailable only."""
    for attempt in range(6):
        try:
            return read()
        except RawTransportError:
            if attempt == 5:
                raise
        except RawRpcError as error:
            if error.tag != "UnknownError:StorageUnavailableError" or attempt == 5:
                raise
        time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


def _segments_of(url: str, store_id: str) -> int:
    """How many segments the store's archive holds now (``GET /archive``)."""
    after, count = 0, 0
    with httpx.Client(timeout=30) as http:
        while True:
            body = http.get(url.rstrip("/") + "/archive", params={"storeId": store_id, "after": after}).json()
            count += len(body.get("segments", []))
            if not body.get("more"):
                return count
            after = body["pullFrom"]


def run_seed(
    seed: int,
    dynamodb_endpoint: str,
    *,
    clients: int = 16,
    events: int = 10,
    plan: FaultPlan | None = None,
    deadline_seconds: float = 180.0,
    workdir: Path | None = None,
    storage: StorageOptions | None = None,
) -> RunReport:
    """One seeded run; returns its report or raises :class:`ConvergenceError` (whose message
    holds the report's figures and the history checker's findings)."""
    assert clients >= 2
    plan = plan or FaultPlan()
    rng = random.Random(seed)
    history = History()
    deadline = _Deadline(seed, deadline_seconds, history)
    report = RunReport(seed=seed, clients=clients, events_per_client=events)
    tag = f"{seed}-{uuid.uuid4().hex[:6]}"
    store_id = f"faults-{tag}"
    raw_store_id = f"raw-{tag}"
    probe_ids = [f"probe-{tag}-{index}" for index in range(storage.probes if storage else 0)]
    started = time.monotonic()
    client_faults = _ClientFaults(seed, plan, clients)
    storage_plan = storage.faults if storage is not None else None
    crashes = ArchiverCrashes(seed, storage_plan) if storage_plan is not None else None
    dynamodb_faults: Callable[[ProxiedRequest], Action | Reply | Fault]
    if storage_plan is not None:
        dynamodb_faults = DynamoDBStorageFaults(seed, storage_plan, crashes)
    else:
        dynamodb_faults = _DynamoDBFaults(seed, plan)
    retry = RetryPolicy(initial_seconds=0.02, max_seconds=0.3)
    if storage is not None:
        report.segment_events = storage.segment_events or random.Random(f"{seed}:segments").randint(1, 5)
    failure: ConvergenceError | None = None
    with ExitStack() as stack:
        if workdir is not None:
            folder = workdir / tag  # a fresh folder per run: a store file holds one store id
            folder.mkdir(parents=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="faults-")))
        lag = ArchiverLag()
        dynamodb_proxy = stack.enter_context(
            FaultProxy(dynamodb_endpoint, dynamodb_faults, observer=lag.observe)
        )
        extra: tuple[str, ...] = ()
        s3_proxy: FaultProxy | None = None
        if storage is not None:
            s3_policy = (
                S3StorageFaults(seed, storage_plan, crashes) if storage_plan is not None else _forward_all
            )
            s3_proxy = stack.enter_context(FaultProxy(storage.s3_endpoint, s3_policy, preserve_host=True))
            extra = (
                "--s3-endpoint",
                s3_proxy.url.rstrip("/"),
                "--bucket",
                BUCKET,
                "--segment-events",
                str(report.segment_events),
            )
        server = DevServerProcess(dynamodb_proxy.url.rstrip("/"), free_port(), extra)
        server.start()
        stack.callback(server.kill)
        client_proxy = stack.enter_context(FaultProxy(server.url, client_faults, observer=history.observe))

        names = [f"c{index}" for index in range(clients)]
        in_process, killed = names[:-1], names[-1]
        expected = {f"{killed}-{number}" for number in range(events)}
        for name in in_process:
            for number in range(events):
                expected |= {
                    str(event.args.model_dump()["id"]) for event in _commit_of(seed, name, number, storage)
                }
        stores: dict[str, Store] = {}
        for name in in_process:
            stores[name] = Store(
                schema,
                store_id,
                str(folder / f"{name}.db"),
                backend_url=client_proxy.url,
                headers={CLIENT_HEADER: name},
                poll_interval=0.5,
                retry=retry,
            )
            stack.callback(stores[name].close)
        for store in stores.values():
            store.start_sync()

        failures: list[BaseException] = []
        finished: dict[str, float] = {}  # when the last thread of each kind was done

        def done(kind: str) -> None:
            finished[kind] = round(time.monotonic() - started, 1)

        running: list[subprocess.Popen[str]] = []

        def kill_running() -> None:
            for process in running:
                if process.poll() is None:
                    process.kill()

        stack.callback(kill_running)

        def writer(name: str) -> None:
            try:
                pace = random.Random(f"{seed}:writer:{name}")
                store = stores[name]
                for number in range(events):
                    if pace.random() < plan.offline:
                        client_faults.go_offline(name, pace.uniform(*plan.offline_seconds))
                    store.commit(*_commit_of(seed, name, number, storage))
                    time.sleep(pace.uniform(*plan.pace_seconds))
                done("store_writers")
            except BaseException as error:
                failures.append(error)

        def client_process_lives() -> None:
            """The killed client: SIGKILL it at seeded moments, start it again, let it finish."""
            try:
                kill_rng = random.Random(f"{seed}:kills")
                kills = kill_rng.randint(*plan.kills)
                life = 0
                while True:
                    process = subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "tests.faults.client_process",
                            client_proxy.url,
                            str(folder / f"{killed}.db"),
                            store_id,
                            killed,
                            str(events),
                            str(seed),
                            str(life),
                        ],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                        cwd=ROOT,
                    )
                    running.append(process)
                    try:
                        if life < kills:
                            try:
                                process.wait(timeout=kill_rng.uniform(*plan.kill_after))
                            except subprocess.TimeoutExpired:
                                process.send_signal(signal.SIGKILL)
                                report.client_process_kills += 1
                        output, _ = process.communicate(timeout=deadline.left("client process"))
                    finally:
                        if process.poll() is None:
                            process.kill()
                            process.wait()
                    life += 1
                    if process.returncode == 0 and output.rstrip().endswith("done"):
                        done("client_process")
                        return
                    if process.returncode != -signal.SIGKILL:
                        raise RuntimeError(f"client process failed ({process.returncode}):\n{output}")
            except BaseException as error:
                failures.append(error)

        def raw_writer(index: int) -> None:
            assert storage is not None
            name = f"r{index}"
            client = RawClient(client_proxy.url, raw_store_id, name)
            try:
                texts = UNICODE_TEXTS if storage.unicode else ("plain",)
                text_rng = random.Random(f"{seed}:raw-text:{name}")
                planned = [
                    raw_event(
                        name,
                        number,
                        texts[(number + index) % len(texts)]
                        + (" " + text_rng.randbytes(900).hex() if storage.large else ""),
                    )
                    for number in range(storage.raw_events)
                ]
                stats = run_raw_writer(
                    client,
                    planned,
                    random.Random(f"{seed}:raw:{name}"),
                    time_left=lambda: deadline.left(f"raw client {name}"),
                    batch_sizes=storage.raw_batch_sizes,
                    pace=storage.raw_pace,
                )
                report.raw_clients[name] = asdict(stats)
                done("raw_writers")
            except BaseException as error:
                failures.append(error)
            finally:
                client.close()

        def probes() -> None:
            probe_rng = random.Random(f"{seed}:probes")
            try:
                for probe_id in probe_ids:
                    time.sleep(probe_rng.uniform(0.1, 0.8))
                    race_first_pull_and_push(client_proxy.url, probe_id, probe_rng, probe_rng.randint(1, 3))
                done("probes")
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=writer, args=(name,), daemon=True) for name in in_process]
        threads.append(threading.Thread(target=client_process_lives, daemon=True))
        if storage is not None:
            threads += [
                threading.Thread(target=raw_writer, args=(index,), daemon=True)
                for index in range(storage.raw_clients)
            ]
            threads.append(threading.Thread(target=probes, daemon=True))
        for thread in threads:
            thread.start()

        try:
            time.sleep(rng.uniform(*plan.restart_after))
            server.kill()
            time.sleep(rng.uniform(*plan.restart_pause))
            server.start()
            report.dev_server_restarts += 1
            done("restarted")

            _join(threads, deadline, "writers")
            report.phases["writers"] = round(time.monotonic() - started, 1)
            report.phases.update(finished)
            if failures:
                raise ConvergenceError(f"seed {seed}: a client failed: {failures[0]!r}") from failures[0]

            # The killed client's store joins the others for the final rounds, from its file.
            stores[killed] = Store(
                schema,
                store_id,
                str(folder / f"{killed}.db"),
                backend_url=client_proxy.url,
                headers={CLIENT_HEADER: killed},
                retry=retry,
            )
            stack.callback(stores[killed].close)
            # Faults stay on while the clients catch up: drops, duplicates and throttling go on.
            for store in stores.values():
                store.stop_sync()
            for _ in range(2):  # everyone pushes what is left, then everyone pulls everything
                for store in stores.values():
                    _sync_until_done(store, deadline)
        except ConvergenceError as error:
            failure = error
        report.phases["final_sync"] = round(time.monotonic() - started, 1)

        # The checker's own reads go without faults (the archiver may still be running).
        client_faults.enabled = False
        for policy in (dynamodb_faults, s3_proxy.policy if s3_proxy else None):
            if isinstance(policy, (DynamoDBStorageFaults, S3StorageFaults, _DynamoDBFaults)):
                policy.enabled = False
        if crashes is not None:
            crashes.enabled = False
        checked_stores = [store_id, raw_store_id, *probe_ids] if storage is not None else [store_id]
        logs, unreadable = read_final_logs(server.url, checked_stores, history)
        checked = check_history(history, logs, unreadable)
        report.phases["final_reads"] = round(time.monotonic() - started, 1)
        report.history = {key: value for key, value in asdict(checked).items() if key != "examples"}
        report.backend_events = len(logs.get(store_id, []))
        report.seconds = round(time.monotonic() - started, 1)
        report.client_faults = dict(client_proxy.counts)
        report.dynamodb_faults = dict(dynamodb_proxy.counts)
        report.s3_faults = dict(s3_proxy.counts) if s3_proxy is not None else {}
        report.rebases = sum(store.rebase_generation for store in stores.values())
        report.archiver_lag = lag.summary()
        output = server.output()
        if workdir is not None:
            (folder / "devserver.log").write_text("".join(output))
        report.segments_sealed = (
            sum(_segments_of(server.url, sid) for sid in (store_id, raw_store_id)) if storage else 0
        )
        report.archiver_failures = dict(
            Counter(
                re.sub(r"\d+", "N", line.partition("archiver failed: ")[2].strip())[:90]
                for line in output
                if "archiver failed: " in line
            )
        )
        if checked.violations:
            found = ConvergenceError(
                f"seed {seed}: the history check failed: {checked.line()}\n{checked.details()}\n"
                f"{report.line()}" + (f"\n(and: {failure})" if failure else "")
            )
            found.report = report
            raise found
        if failure is not None:
            failure.args = (f"{failure}\n{checked.line()}\n{report.line()}",)
            failure.report = report
            raise failure
        backend_log = [
            (event["seqNum"], event["clientId"], event["name"], json.dumps(event["args"], sort_keys=True))
            for event in logs[store_id]
        ]
        _check(seed, stores, backend_log, expected)
    return report


def _check(
    seed: int,
    stores: dict[str, Store],
    backend_log: list[tuple[int, str, str, str]],
    expected: set[str],
) -> None:
    def fail(message: str) -> None:
        raise ConvergenceError(f"seed {seed}: {message}")

    total = len(expected)
    if [entry[0] for entry in backend_log] != list(range(1, total + 1)):
        seqs = [entry[0] for entry in backend_log]
        fail(f"backend log is not seqNums 1..{total}: {len(seqs)} events, first {seqs[:5]}, last {seqs[-5:]}")
    ids = Counter(json.loads(entry[3])["id"] for entry in backend_log)
    doubled = sorted(key for key, count in ids.items() if count > 1)
    if doubled:
        fail(f"events on the backend more than once: {doubled[:10]}")
    if set(ids) != expected:
        missing, extra = sorted(expected - set(ids)), sorted(set(ids) - expected)
        fail(f"backend misses {missing[:10]}, has extra {extra[:10]}")
    reference_table: list[tuple[object, ...]] | None = None
    reference = ""
    for name, store in stores.items():
        if store.pending_events():
            fail(f"{name} still has {len(store.pending_events())} pending events")
        if _log_of(store) != backend_log:
            fail(f"{name}'s eventlog differs from the backend's")
        table = _table_of(store)
        if len(table) != total:
            fail(f"{name}'s todos table has {len(table)} rows, not {total}")
        if reference_table is None:
            reference_table, reference = table, name
        elif table != reference_table:
            fail(f"{name}'s todos table differs from {reference}'s")


def _plan_with(overrides: list[str]) -> StorageFaultPlan:
    """The default storage fault plan with ``FIELD=VALUE`` overrides (numbers, or ``a,b`` ranges)."""
    values: dict[str, Any] = {}
    for override in overrides:
        name, _, text = override.partition("=")
        if name not in StorageFaultPlan.__dataclass_fields__:
            raise SystemExit(f"--set: StorageFaultPlan has no field {name!r}")
        numbers = [float(part) for part in text.split(",")]
        values[name] = tuple(numbers) if len(numbers) > 1 else numbers[0]
        if name in ("crash_rounds",):
            values[name] = int(numbers[0])
        elif name == "crash_skip":
            values[name] = tuple(int(number) for number in numbers)
    return replace(StorageFaultPlan(), **values)


def _seed_folder(workdir: Path | None, seed: int) -> Path | None:
    if workdir is None:
        return None
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def _add_up(totals: Counter[str], report: RunReport) -> None:
    totals.update(report.faults())
    totals.update({f"history_{k}": v for k, v in report.history.items() if isinstance(v, int)})
    totals.update(
        {
            "dev_server_restarts": report.dev_server_restarts,
            "client_process_kills": report.client_process_kills,
        }
    )
    totals.update({"segments_sealed": report.segments_sealed})
    totals.update({"archiver_runs_failed": sum(report.archiver_failures.values())})
    totals.update({"late_puts_on_retired": int(report.archiver_lag.get("late_puts_on_retired", 0))})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faults.harness",
        description="Run the convergence-under-faults harness for many seeds"
        " (needs java and DynamoDB Local; the storage tier also SeaweedFS, or --s3 moto).",
    )
    parser.add_argument("--seeds", type=int, default=10, help="how many seeds (default 10)")
    parser.add_argument("--first-seed", type=int, default=1, help="the first seed (default 1)")
    parser.add_argument("--clients", type=int, help="clients per run (default 16; storage tier 6)")
    parser.add_argument("--events", type=int, help="commits per client (default 10; storage tier 6)")
    parser.add_argument("--deadline", type=float, default=180.0, help="seconds per run (default 180)")
    parser.add_argument("--keep-going", action="store_true", help="run every seed even after a failure")
    parser.add_argument(
        "--storage-faults",
        action="store_true",
        help="the storage tier: faults between the dev server and DynamoDB/S3, the archive, large and"
        " unicode payloads, raw-HTTP clients, first-pull probes",
    )
    parser.add_argument(
        "--segment-events", type=int, help="storage tier: --segment-events (default seeded 1..5)"
    )
    parser.add_argument(
        "--s3", choices=("seaweedfs", "moto"), default="seaweedfs", help="storage tier: S3 server"
    )
    parser.add_argument("--no-large", action="store_true", help="storage tier: small events only")
    parser.add_argument("--no-unicode", action="store_true", help="storage tier: no unicode edge cases")
    parser.add_argument("--probes", type=int, default=6, help="storage tier: fresh stores raced per run")
    parser.add_argument("--raw-clients", type=int, default=4, help="storage tier: raw-HTTP clients")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="storage tier: override a StorageFaultPlan field, e.g. --set lose_write_response=0 (repeatable)",
    )
    parser.add_argument("--raw-events", type=int, default=16, help="storage tier: events per raw-HTTP client")
    parser.add_argument("--json", action="store_true", help="print each run's report as JSON too")
    parser.add_argument(
        "--workdir", type=Path, help="keep each run's SQLite files and dev server log in WORKDIR/<seed>-<tag>"
    )
    args = parser.parse_args(argv)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    clients = args.clients or (6 if args.storage_faults else 16)
    events = args.events or (6 if args.storage_faults else 10)
    failed: list[int] = []
    totals: Counter[str] = Counter()
    ran = 0
    with ExitStack() as stack:
        try:
            endpoint = stack.enter_context(_dynamodb_local())
            s3_endpoint = stack.enter_context(_s3(args.s3)) if args.storage_faults else None
        except pytest.skip.Exception as missing:  # an emulator is not installed
            print(f"cannot run: {missing}", file=sys.stderr)
            return 2
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            storage = None
            if s3_endpoint is not None:
                storage = StorageOptions(
                    s3_endpoint,
                    faults=_plan_with(args.set),
                    segment_events=args.segment_events,
                    large=not args.no_large,
                    unicode=not args.no_unicode,
                    probes=args.probes,
                    raw_clients=args.raw_clients,
                    raw_events=args.raw_events,
                )
            ran += 1
            try:
                report = run_seed(
                    seed,
                    endpoint,
                    clients=clients,
                    events=events,
                    deadline_seconds=args.deadline,
                    storage=storage,
                    workdir=_seed_folder(args.workdir, seed),
                )
            except ConvergenceError as failure:
                print(f"FAILED {failure}", flush=True)
                failed.append(seed)
                if failure.report is not None:
                    _add_up(totals, failure.report)
                    if args.json:
                        print("  " + json.dumps(asdict(failure.report)), flush=True)
                if not args.keep_going:
                    break
                continue
            except Exception as error:  # the harness itself failed (a dev server that would not start...)
                print(f"FAILED seed {seed}: the harness failed: {type(error).__name__}: {error}", flush=True)
                failed.append(seed)
                if not args.keep_going:
                    break
                continue
            print(report.line(), flush=True)
            if args.json:
                print("  " + json.dumps(asdict(report)), flush=True)
            _add_up(totals, report)
            if storage is not None and report.segments_sealed == 0:
                # It converged, but the archiver never sealed: the push/archiver races went untried.
                print(f"WARNING seed {seed}: no segment was sealed (see archiver failures)", flush=True)
                totals["runs_without_a_sealed_segment"] += 1
    print(f"{ran - len(failed)} of {ran} seeds converged" + (f"; failed seeds: {failed}" if failed else ""))
    if totals:
        print("totals over all seeds run: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
