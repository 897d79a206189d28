"""Convergence under faults: N clients commit M events each into one store through ``stratasync dev``
on DynamoDB Local while the network and the servers misbehave; at the end all agree.

Set-up of one run (one seed)::

    clients --> [client proxy] --> stratasync dev (subprocess) --> [DynamoDB proxy] --> DynamoDB Local
                 drops acks,          SIGKILLed and restarted         throttles a share of
                 delivers twice,      on the same port mid-run        data-plane requests
                 takes clients offline

* N-1 clients are ``Store`` objects in this process (background sync threads, one writer thread
  each); one client runs in a subprocess (:mod:`tests.faults.client_process`) that is SIGKILLed
  at random moments and started again from its SQLite file.
* Every choice (pacing, offline periods, which requests are dropped, duplicated or throttled,
  when the dev server and the client process are killed) comes from ``random.Random`` seeded
  with the run's seed (per client, so one client's schedule does not depend on the others').
  Thread scheduling is not seeded, so a seed fixes the fault plan, not the exact interleaving.
* Every run has a deadline; a run that does not converge in time fails with its seed.

At the end every client must hold the identical eventlog (order, seqNums, clients, args) and
identical tables, with nothing pending, and the backend's log must hold exactly N x M events,
seqNums 1..N x M without gaps, each client event exactly once.

Many seeds: ``.venv/bin/python -m tests.faults.harness --seeds 50`` (see ``--help``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stratasync.client import RetryPolicy, Store, SyncHttpTransport
from stratasync.client.todos import schema, todo_created
from tests.devserver_process import start_dev_process
from tests.emulators import free_port
from tests.faults.client_process import CLIENT_HEADER
from tests.faults.proxy import Action, FaultProxy, ProxiedRequest, Reply

ROOT = Path(__file__).parents[2]
TABLE = "stratasync-faults"

#: DynamoDB operations that the service throttles (control-plane calls such as CreateTable are not).
DATA_PLANE = {"GetItem", "PutItem", "DeleteItem", "UpdateItem", "Query", "BatchGetItem", "BatchWriteItem"}
THROTTLING_BODY = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    }
).encode()


class ConvergenceError(AssertionError):
    """A run ended with clients or the backend disagreeing, or did not finish in time."""


@dataclass(frozen=True)
class FaultPlan:
    """How often each fault happens."""

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


@dataclass
class RunReport:
    seed: int
    clients: int
    events_per_client: int
    seconds: float = 0.0
    backend_events: int = 0
    client_faults: dict[str, int] = field(default_factory=dict)
    dynamodb_faults: dict[str, int] = field(default_factory=dict)
    dev_server_restarts: int = 0
    client_process_kills: int = 0
    rebases: int = 0

    def line(self) -> str:
        faults = {**self.client_faults, **{f"dynamodb_{k}": v for k, v in self.dynamodb_faults.items()}}
        shown = ", ".join(f"{key} {value}" for key, value in sorted(faults.items()) if "forward" not in key)
        return (
            f"seed {self.seed}: {self.clients} clients x {self.events_per_client} events converged in "
            f"{self.seconds:.1f} s; backend log {self.backend_events} events; "
            f"{self.dev_server_restarts} dev server restart(s), {self.client_process_kills} client kill(s), "
            f"{self.rebases} rebases; faults: {shown}"
        )


class _Deadline:
    def __init__(self, seed: int, seconds: float) -> None:
        self.seed = seed
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self, what: str) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise ConvergenceError(f"seed {self.seed}: {what}: over the {self.seconds:g} s deadline")
        return remaining


class DevServerProcess:
    """``stratasync dev`` as a subprocess (own process group) on a fixed port, killable and restartable."""

    def __init__(self, dynamodb_endpoint: str, port: int) -> None:
        self.dynamodb_endpoint = dynamodb_endpoint
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self._process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 90.0) -> None:
        self._process, _ = start_dev_process(
            self.port,
            "--dynamodb-endpoint",
            self.dynamodb_endpoint,
            "--table",
            TABLE,
            "--workers",
            "2",
            timeout=timeout,
            new_session=True,  # its own process group: a kill takes its Lambda workers too
        )

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

    def __call__(self, request: ProxiedRequest) -> Action | Reply:
        client = request.headers.get(CLIENT_HEADER, "?")
        with self._lock:
            if time.monotonic() < self._offline_until.get(client, 0.0):
                return Action.REFUSE
            if not self.enabled:
                return Action.FORWARD
            if b'"SyncHttpRpc.Push"' in request.body:
                self._pushes[client] += 1
                if client == self.marked and self._pushes[client] <= 2:
                    return Action.DROP_RESPONSE if self._pushes[client] == 1 else Action.DUPLICATE
            rng = self._rngs.setdefault(client, random.Random(f"{self.seed}:network:{client}"))
            roll = rng.random()
        if roll < self.plan.drop_response:
            return Action.DROP_RESPONSE
        if roll < self.plan.drop_response + self.plan.duplicate:
            return Action.DUPLICATE
        return Action.FORWARD


class _DynamoDBFaults:
    """The DynamoDB proxy's policy: a seeded share of data-plane requests is throttled."""

    def __init__(self, seed: int, plan: FaultPlan) -> None:
        self.plan = plan
        self.enabled = True
        self._rng = random.Random(f"{seed}:dynamodb")
        self._lock = threading.Lock()

    def __call__(self, request: ProxiedRequest) -> Action | Reply:
        operation = request.headers.get("x-amz-target", "").rpartition(".")[2]
        with self._lock:
            throttle = self.enabled and operation in DATA_PLANE and self._rng.random() < self.plan.throttle
        if not throttle:
            return Action.FORWARD
        return Reply(
            400,
            {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": uuid.uuid4().hex},
            THROTTLING_BODY,
            kind="throttled",
        )


def _log_of(store: Store) -> list[tuple[int, str, str, str]]:
    return [(e.seq_num, e.client_id, e.name, json.dumps(e.args, sort_keys=True)) for e in store.events()]


def _table_of(store: Store) -> list[tuple[object, ...]]:
    return [tuple(row) for row in store.query("SELECT * FROM todos ORDER BY id")]


def run_seed(
    seed: int,
    dynamodb_endpoint: str,
    *,
    clients: int = 16,
    events: int = 10,
    plan: FaultPlan | None = None,
    deadline_seconds: float = 180.0,
    workdir: Path | None = None,
    out: object = None,
) -> RunReport:
    """One seeded run; returns its report or raises :class:`ConvergenceError`."""
    assert clients >= 2
    plan = plan or FaultPlan()
    rng = random.Random(seed)
    deadline = _Deadline(seed, deadline_seconds)
    report = RunReport(seed=seed, clients=clients, events_per_client=events)
    store_id = f"faults-{seed}-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    client_faults = _ClientFaults(seed, plan, clients)
    dynamodb_faults = _DynamoDBFaults(seed, plan)
    retry = RetryPolicy(initial_seconds=0.02, max_seconds=0.3)
    with ExitStack() as stack:
        folder = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="faults-")))
        dynamodb_proxy = stack.enter_context(FaultProxy(dynamodb_endpoint, dynamodb_faults))
        server = DevServerProcess(dynamodb_proxy.url.rstrip("/"), free_port())
        server.start()
        stack.callback(server.kill)
        client_proxy = stack.enter_context(FaultProxy(server.url, client_faults))

        names = [f"c{index}" for index in range(clients)]
        in_process, killed = names[:-1], names[-1]
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

        def writer(name: str) -> None:
            try:
                pace = random.Random(f"{seed}:writer:{name}")
                store = stores[name]
                for number in range(events):
                    if pace.random() < plan.offline:
                        client_faults.go_offline(name, pace.uniform(*plan.offline_seconds))
                    store.commit(todo_created(id=f"{name}-{number}", text=f"{name} todo {number}"))
                    time.sleep(pace.uniform(*plan.pace_seconds))
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
                        return
                    if process.returncode != -signal.SIGKILL:
                        raise RuntimeError(f"client process failed ({process.returncode}):\n{output}")
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=writer, args=(name,), daemon=True) for name in in_process]
        threads.append(threading.Thread(target=client_process_lives, daemon=True))
        for thread in threads:
            thread.start()

        time.sleep(rng.uniform(*plan.restart_after))
        server.kill()
        time.sleep(rng.uniform(*plan.restart_pause))
        server.start()
        report.dev_server_restarts += 1

        for thread in threads:
            thread.join(deadline.left("writers"))
            if thread.is_alive():
                raise ConvergenceError(f"seed {seed}: a writer did not finish before the deadline")
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
                try:
                    store.sync(timeout=deadline.left("final sync"))
                except Exception as error:
                    message = f"seed {seed}: final sync of a client failed: {error!r}"
                    raise ConvergenceError(message) from error

        with SyncHttpTransport(server.url, store_id) as direct:
            backend_log = [
                (event["seqNum"], event["clientId"], event["name"], json.dumps(event["args"], sort_keys=True))
                for page in direct.pull(None)
                for event in page.events
            ]
        report.backend_events = len(backend_log)
        report.seconds = round(time.monotonic() - started, 1)
        report.client_faults = dict(client_proxy.counts)
        report.dynamodb_faults = dict(dynamodb_proxy.counts)
        report.rebases = sum(store.rebase_generation for store in stores.values())
        _check(seed, stores, backend_log, names, events)
    return report


def _check(
    seed: int,
    stores: dict[str, Store],
    backend_log: list[tuple[int, str, str, str]],
    names: list[str],
    events: int,
) -> None:
    def fail(message: str) -> None:
        raise ConvergenceError(f"seed {seed}: {message}")

    total = len(names) * events
    if [entry[0] for entry in backend_log] != list(range(1, total + 1)):
        seqs = [entry[0] for entry in backend_log]
        fail(f"backend log is not seqNums 1..{total}: {len(seqs)} events, first {seqs[:5]}, last {seqs[-5:]}")
    ids = Counter(json.loads(entry[3])["id"] for entry in backend_log)
    doubled = sorted(key for key, count in ids.items() if count > 1)
    if doubled:
        fail(f"events on the backend more than once: {doubled[:10]}")
    expected = {f"{name}-{number}" for name in names for number in range(events)}
    if set(ids) != expected:
        missing, extra = sorted(expected - set(ids)), sorted(set(ids) - expected)
        fail(f"backend misses {missing[:10]}, has extra {extra[:10]}")
    reference_table: list[tuple[object, ...]] | None = None
    for name, store in stores.items():
        if store.pending_events():
            fail(f"{name} still has {len(store.pending_events())} pending events")
        if _log_of(store) != backend_log:
            fail(f"{name}'s eventlog differs from the backend's")
        table = _table_of(store)
        if len(table) != total:
            fail(f"{name}'s todos table has {len(table)} rows, not {total}")
        if reference_table is None:
            reference_table = table
        elif table != reference_table:
            fail(f"{name}'s todos table differs from {names[0]}'s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faults.harness",
        description="Run the convergence-under-faults harness for many seeds"
        " (needs java and DynamoDB Local).",
    )
    parser.add_argument("--seeds", type=int, default=10, help="how many seeds (default 10)")
    parser.add_argument("--first-seed", type=int, default=1, help="the first seed (default 1)")
    parser.add_argument("--clients", type=int, default=16, help="clients per run (default 16)")
    parser.add_argument("--events", type=int, default=10, help="events per client (default 10)")
    parser.add_argument("--deadline", type=float, default=180.0, help="seconds per run (default 180)")
    parser.add_argument("--keep-going", action="store_true", help="run every seed even after a failure")
    args = parser.parse_args(argv)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    failed: list[int] = []
    with _dynamodb_local() as endpoint:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            try:
                report = run_seed(
                    seed, endpoint, clients=args.clients, events=args.events, deadline_seconds=args.deadline
                )
            except ConvergenceError as error:
                print(f"FAILED {error}", flush=True)
                failed.append(seed)
                if not args.keep_going:
                    break
                continue
            print(report.line(), flush=True)
            print("  " + json.dumps(asdict(report)), flush=True)
    ran = args.seeds if args.keep_going or not failed else failed[-1] - args.first_seed + 1
    print(f"{ran - len(failed)} of {ran} seeds converged" + (f"; failed seeds: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
