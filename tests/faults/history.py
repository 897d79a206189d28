"""The history checker: every acknowledgement and every pull observation of a run, checked at the end.

The history is recorded where answers leave the dev server: :meth:`History.observe` is the
client proxy's observer (:class:`~tests.faults.proxy.FaultProxy`), so it sees every client's
requests (the in-process stores, the client subprocess, the raw-HTTP clients, the probes) and
every answer the dev server gave, including answers the fault plan then lost or duplicated.

* An **acknowledgement** is a push answered ``Success``: its events, at their seqNums.
* An **observation** is one event of a pull answer: seqNum -> digest of the event's JSON, from
  any client, any cursor, at any time (and the checker's own final pulls from every cursor).

:func:`check_history` then demands, per store:

* every acknowledged event is in the final log exactly once, at the seqNum it was acknowledged at
  (else it is *lost*, or *duplicated*);
* no two observations of one seqNum ever disagree (else a *fork*, even a transient one);
* the final log is seqNums 1..N with each event's parent the one before (else a *gap*), and every
  pull answer runs on from its cursor without skipping or repeating a seqNum (else a *broken
  answer*);
* a push of a batch that was acknowledged before it started is acknowledged again, never
  refused with ``ServerAheadError`` (a *refused retry*, counted once per batch);
* no request is answered with an ``UnknownError`` other than ``StorageUnavailableError`` (a
  *server error*: the backend failed where it should have answered).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.faults.proxy import Exchange

#: ``UnknownError`` causes that are an honest "try again later", not a failure of the backend.
RETRYABLE_ERRORS = frozenset({"StorageUnavailableError"})
#: Examples kept per kind of violation, for the failure message.
_EXAMPLES = 5


def event_digest(event: Mapping[str, Any]) -> str:
    """A digest of one event's JSON (all fields, canonical form; lone surrogates stay escapes)."""
    text = json.dumps(event, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def event_identity(event: Mapping[str, Any]) -> str:
    """The event without its place in the log: the same event rebased has the same identity."""
    return event_digest({key: value for key, value in event.items() if key not in ("seqNum", "parentSeqNum")})


@dataclass(frozen=True)
class PushAttempt:
    store: str
    client: str
    parent: int
    digests: tuple[str, ...]
    outcome: str  # "Success", "ServerAheadError", "UnknownError:<name>", ...
    started: float
    finished: float


@dataclass(frozen=True)
class Seen:
    """The first observation of one digest at one seqNum."""

    client: str
    cursor: int
    at: float


@dataclass
class HistoryReport:
    stores: int = 0
    pushes: int = 0
    pulls: int = 0
    acked_events: int = 0
    #: Events of the final log never acknowledged, pushed in a push the backend gave no answer to
    #: (it died with the push in flight, after the commit): their client learns of them by pulling.
    unanswered_events: int = 0
    #: Events of the final log neither acknowledged nor pushed unanswered (should not happen).
    unaccounted_events: int = 0
    observations: int = 0
    lost: int = 0
    duplicated: int = 0
    forks: int = 0
    gaps: int = 0
    refused_retries: int = 0
    server_errors: int = 0
    #: Stores whose final log could not be read at all.
    unreadable: int = 0
    #: Exchanges the recorder could not make sense of (the history is incomplete).
    unrecorded: int = 0
    #: Pull answers that skipped or repeated events after their cursor.
    broken_answers: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    #: Error answers by RPC, kind and message (see :attr:`History.causes`).
    error_causes: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def violations(self) -> int:
        return (
            self.lost
            + self.duplicated
            + self.forks
            + self.gaps
            + self.refused_retries
            + self.server_errors
            + self.unreadable
            + self.unrecorded
            + self.broken_answers
        )

    def example(self, kind: str, text: str) -> None:
        shown = self.examples.setdefault(kind, [])
        if len(shown) < _EXAMPLES:
            shown.append(text)

    def line(self) -> str:
        return (
            f"history: {self.stores} store(s), {self.pushes} pushes, {self.pulls} pulls, "
            f"{self.acked_events} acked events checked, {self.observations} observations; "
            f"lost {self.lost}, duplicated {self.duplicated}, forks {self.forks}, gaps {self.gaps}, "
            f"refused retries {self.refused_retries}, server errors {self.server_errors}, "
            f"unreadable logs {self.unreadable}"
            + (f", unrecorded {self.unrecorded}" if self.unrecorded else "")
        )

    def details(self) -> str:
        return "\n".join(f"  {kind}: {text}" for kind, texts in self.examples.items() for text in texts)


class History:
    """Acknowledgements, observations and push attempts, recorded from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: (store, seqNum) -> digest -> the acknowledged event's identity.
        self.acks: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
        #: (store, digest) of every event in a push the backend gave no answer to.
        self.unanswered: set[tuple[str, str]] = set()
        #: (store, seqNum) -> digest -> its first observation.
        self.seen: dict[tuple[str, int], dict[str, Seen]] = defaultdict(dict)
        self.attempts: list[PushAttempt] = []
        self.pulls = 0
        self.observations = 0
        #: Answers that were errors, by tag (and ``cause.name`` for ``UnknownError``).
        self.errors: Counter[str] = Counter()
        self._errors_by_rpc: Counter[tuple[str, str]] = Counter()
        self.error_examples: list[str] = []
        #: Error answers by RPC, kind and message (store ids and numbers blanked out).
        self.causes: Counter[str] = Counter()
        self.stores: set[str] = set()
        #: Exchanges the observer failed on (a harness bug: the history is incomplete).
        self.unrecorded = 0
        #: Pull answers whose events do not run on from the cursor without a gap or a repeat.
        self.broken_answers = 0

    # -- recording -------------------------------------------------------------------------------

    def observe(self, exchange: Exchange) -> None:
        """The client proxy's observer: one sync-cf request and the dev server's answer (an
        exchange this cannot make sense of is counted, and fails the check)."""
        try:
            self._observe(exchange)
        except Exception as error:
            with self._lock:
                self.unrecorded += 1
                if len(self.error_examples) < 20:
                    self.error_examples.append(f"unrecorded: {type(error).__name__}: {error}")

    def _observe(self, exchange: Exchange) -> None:
        request = exchange.request
        if request.method != "POST" or urlsplit(request.path).path not in ("", "/"):
            return
        try:
            envelope = json.loads(request.body)
            payload = envelope["payload"]
            tag = envelope["tag"]
        except (ValueError, KeyError, TypeError):
            return
        store = payload.get("storeId") if isinstance(payload, dict) else None
        if not isinstance(store, str):
            query = parse_qs(urlsplit(request.path).query)
            store = query.get("storeId", ["?"])[0]
        client = request.headers.get("x-fault-client", "?")
        if exchange.status == 0:  # the backend died with the request in flight: no answer
            if tag == "SyncHttpRpc.Push":
                with self._lock:
                    self.stores.add(store)
                    self.unanswered.update(
                        (store, event_digest(event)) for event in payload.get("batch") or []
                    )
            return
        body = exchange.body
        if any(name.lower() == "content-encoding" and "gzip" in value for name, value in exchange.headers):
            body = gzip.decompress(body)
        try:
            messages = json.loads(body)
        except ValueError:
            messages = None
        if exchange.status != 200 or not isinstance(messages, list):
            rpc = {"SyncHttpRpc.Push": "push", "SyncHttpRpc.Pull": "pull"}.get(tag, str(tag))
            self._error(f"http_{exchange.status}", f"{rpc} of {client} on {store}: {exchange.body[:200]!r}")
            return
        outcome = _outcome(messages)
        if tag == "SyncHttpRpc.Push":
            batch = payload.get("batch") or []
            self.record_push(
                store, client, batch, outcome, exchange.started, exchange.finished, _cause_of(messages)
            )
        elif tag == "SyncHttpRpc.Pull":
            cursor = _cursor_of(payload)
            if outcome == "Success":
                events = [
                    item["eventEncoded"]
                    for message in messages
                    if message.get("_tag") == "Chunk"
                    for value in message["values"]
                    for item in value["batch"]
                ]
                self.record_pull(store, client, cursor, events, exchange.finished)
            else:
                self._error(
                    outcome,
                    f"pull of {client} on {store} after {cursor}: {_failure_text(messages)}",
                    _cause_of(messages),
                )

    def record_push(
        self,
        store: str,
        client: str,
        batch: Sequence[Mapping[str, Any]],
        outcome: str,
        started: float,
        finished: float,
        cause: str = "",
    ) -> None:
        if not batch:
            return
        digests = tuple(event_digest(event) for event in batch)
        attempt = PushAttempt(
            store, client, int(batch[0]["parentSeqNum"]), digests, outcome, started, finished
        )
        with self._lock:
            self.stores.add(store)
            self.attempts.append(attempt)
            if outcome == "Success":
                for event, digest in zip(batch, digests, strict=True):
                    self.acks[(store, int(event["seqNum"]))][digest] = event_identity(event)
        if outcome not in ("Success", "ServerAheadError"):
            self._error(outcome, f"push of {client} on {store} at parent {attempt.parent}: {cause}", cause)

    def record_pull(
        self, store: str, client: str, cursor: int, events: Iterable[Mapping[str, Any]], at: float
    ) -> None:
        events = list(events)
        seqs = [int(event["seqNum"]) for event in events]
        with self._lock:
            self.stores.add(store)
            self.pulls += 1
            if seqs != list(range(cursor + 1, cursor + 1 + len(seqs))):
                self.broken_answers += 1
                if len(self.error_examples) < 20:
                    shown = _ranges(seqs)
                    self.error_examples.append(
                        f"broken answer: {store}: a pull of {client} after {cursor} answered seqNums {shown}"
                    )
            for event in events:
                self.observations += 1
                seen = self.seen[(store, int(event["seqNum"]))]
                digest = event_digest(event)
                if digest not in seen:
                    seen[digest] = Seen(client, cursor, at)

    def server_errors(self, rpc: str = "") -> int:
        """How many answers so far were the backend failing (see :func:`is_server_error`), of
        pulls or pushes only with ``rpc`` ``"pull"`` or ``"push"``."""
        with self._lock:
            return sum(
                count
                for (kind, of), count in self._errors_by_rpc.items()
                if is_server_error(kind) and of.startswith(rpc)
            )

    def _error(self, kind: str, text: str, cause: str = "") -> None:
        rpc = text.partition(" ")[0]
        with self._lock:
            self.errors[kind] += 1
            self._errors_by_rpc[(kind, rpc)] += 1
            self.causes[f"{rpc} {kind}: {cause}" if cause else f"{rpc} {kind}"] += 1
            if len(self.error_examples) < 20:
                self.error_examples.append(f"{kind}: {text}")


def _outcome(messages: Sequence[Any]) -> str:
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("_tag") == "Defect":
            return "Defect"
        if message.get("_tag") == "Exit":
            exit_ = message.get("exit", {})
            if exit_.get("_tag") == "Success":
                return "Success"
            error = exit_.get("cause", {}).get("error", {})
            tag = str(error.get("_tag", "Failure"))
            if tag == "UnknownError":
                return f"UnknownError:{error.get('cause', {}).get('name', '?')}"
            return tag
    return "NoExit"


def _cause_of(messages: Sequence[Any]) -> str:
    """The failure's message with store ids, numbers and positions blanked out (for counting)."""
    for message in messages:
        if isinstance(message, dict) and message.get("_tag") == "Exit":
            error = message.get("exit", {}).get("cause", {}).get("error", {})
            text = str(error.get("cause", {}).get("message", "")) if isinstance(error, dict) else ""
            return blank_out(text)
    return ""


def blank_out(text: str) -> str:
    """``text`` with quoted names and numbers blanked out, shortened (to count alike messages)."""
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'", "'…'", text))[:120]


def _failure_text(messages: Sequence[Any]) -> str:
    return json.dumps(messages[-1], ensure_ascii=True)[:300] if messages else "no messages"


def _cursor_of(payload: Mapping[str, Any]) -> int:
    cursor = payload.get("cursor") or {}
    if cursor.get("_tag") == "Some":
        return int(cursor["value"]["eventSequenceNumber"])
    return 0


def is_server_error(kind: str) -> bool:
    """Whether an error answer means the backend failed (not a refusal, not "retry later")."""
    if kind.startswith("UnknownError:"):
        return kind.partition(":")[2] not in RETRYABLE_ERRORS
    return kind in ("Defect", "NoExit") or kind.startswith("http_5")


def check_history(
    history: History,
    final_logs: Mapping[str, Sequence[Mapping[str, Any]]],
    unreadable: Mapping[str, str] | None = None,
) -> HistoryReport:
    """Check the recorded history against each store's final backend log (events from seqNum 1);
    ``unreadable``: stores whose final log could not be read, with the reason."""
    report = HistoryReport(
        stores=len(final_logs) + len(unreadable or {}),
        pushes=len(history.attempts),
        pulls=history.pulls,
        observations=history.observations,
        unrecorded=history.unrecorded,
        broken_answers=history.broken_answers,
    )
    for store, reason in (unreadable or {}).items():
        report.unreadable += 1
        report.example("unreadable", f"{store}: {reason}")
    final_digest: dict[tuple[str, int], str] = {}
    identities: Counter[tuple[str, str]] = Counter()
    for store, log in final_logs.items():
        seqs = [int(event["seqNum"]) for event in log]
        parents = [int(event["parentSeqNum"]) for event in log]
        if seqs != list(range(1, len(log) + 1)) or parents != [seq - 1 for seq in seqs]:
            report.gaps += 1
            report.example("gap", f"{store}: {len(seqs)} events, seqNums {_ranges(seqs)}")
        for event in log:
            final_digest[(store, int(event["seqNum"]))] = event_digest(event)
            identities[(store, event_identity(event))] += 1

    for (store, seq), acked in history.acks.items():
        if store not in final_logs:
            continue
        for digest, identity in acked.items():
            report.acked_events += 1
            if final_digest.get((store, seq)) != digest:
                report.lost += 1
                where = "holds another event" if (store, seq) in final_digest else "has no such seqNum"
                report.example(
                    "lost", f"{store}: the event acked at seqNum {seq} is not there (the log {where})"
                )
            elif identities[(store, identity)] > 1:
                report.duplicated += 1
                report.example(
                    "duplicated", f"{store}: the event acked at {seq} is in the log more than once"
                )

    acked_digests = {(store, digest) for (store, _), acked in history.acks.items() for digest in acked}
    for store, log in final_logs.items():
        for event in log:
            committed = (store, event_digest(event))
            if committed in acked_digests:
                continue
            if committed in history.unanswered:
                report.unanswered_events += 1
            else:
                report.unaccounted_events += 1
                report.example("unaccounted", f"{store}: seqNum {event['seqNum']} was committed, never acked")

    for (store, seq), seen in history.seen.items():
        if store not in final_logs:
            continue
        versions = set(seen)
        if (store, seq) in final_digest:
            versions.add(final_digest[(store, seq)])
        if len(versions) > 1:
            report.forks += 1
            who = ", ".join(f"{s.client} from cursor {s.cursor}" for s in seen.values())
            report.example("fork", f"{store}: seqNum {seq} seen as {len(versions)} different events ({who})")

    acked_batches: dict[tuple[str, int, tuple[str, ...]], float] = {}
    for attempt in history.attempts:
        if attempt.outcome == "Success":
            key = (attempt.store, attempt.parent, attempt.digests)
            acked_batches[key] = min(acked_batches.get(key, attempt.finished), attempt.finished)
    refused: set[tuple[str, int, tuple[str, ...]]] = set()
    for attempt in history.attempts:
        if attempt.outcome != "ServerAheadError":
            continue
        key = (attempt.store, attempt.parent, attempt.digests)
        acked_at = acked_batches.get(key)
        if acked_at is not None and acked_at < attempt.started and key not in refused:
            refused.add(key)
            report.example(
                "refused retry",
                f"{attempt.store}: {attempt.client}'s batch at parent {attempt.parent} was acked, "
                f"and its retry {attempt.started - acked_at:.1f} s later got ServerAheadError",
            )
    report.refused_retries = len(refused)

    report.errors_by_kind = dict(history.errors)
    report.error_causes = dict(history.causes)
    for reason in (unreadable or {}).values():
        cause = f"final read: {blank_out(reason.partition('message')[2] or reason)}"
        report.error_causes[cause] = report.error_causes.get(cause, 0) + 1
    report.server_errors = sum(count for kind, count in history.errors.items() if is_server_error(kind))
    for text in history.error_examples:
        kind = text.partition(": ")[0]
        if kind in ("unrecorded", "broken answer"):
            report.example(kind, text.partition(": ")[2])
        elif is_server_error(kind):
            report.example("server error", text)
    return report


def _ranges(seqs: Sequence[int]) -> str:
    if not seqs:
        return "none"
    parts: list[str] = []
    start = previous = seqs[0]
    for seq in [*seqs[1:], None]:
        if seq is not None and seq == previous + 1:
            previous = seq
            continue
        parts.append(f"{start}" if start == previous else f"{start}..{previous}")
        if seq is not None:
            start = previous = seq
    return ", ".join(parts[:8]) + (" ..." if len(parts) > 8 else "")
