"""A sync-cf client over plain HTTP, for what the harness needs and the :class:`Store` does not do.

* It sends any text, lone surrogates included: requests are JSON with ``ensure_ascii`` escapes
  (``"\\ud83d"``), as the Python client writes them.
* It retries a push whose answer was lost *as it is*, before pulling (as a client that
  reconnects and re-sends its in-flight push does), after a pause in which the archiver may seal
  that batch: the retry of an acknowledged batch must be acknowledged again.
* :func:`race_first_pull_and_push` races a first pull (no cursor) with the first push on a fresh
  store.

Every request goes through the client proxy, whose observer records the history; these helpers
only drive the traffic.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from tests.faults.client_process import CLIENT_HEADER

#: Payload texts that once broke pushes, or could: lone surrogates (high and low) as JSON escapes,
#: a surrogate pair, non-BMP characters, the JS line terminators, NUL, a BOM, a literal backslash-u.
UNICODE_TEXTS = (
    "\ud83d",
    "lone low \udc00 here",
    "pair \ud83d\ude00 as escapes",
    "\U0001f600\U0001f9ea non-BMP",
    "line\u2028separator\u2029paragraph",
    "nul \u0000 inside",
    "\ufeffbom first",
    "literal \\u0000 and \\ud83d",
)


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a surrogate code point (which SQLite's UTF-8 cannot store)."""
    return any(0xD800 <= ord(char) <= 0xDFFF for char in text)


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` sent as JSON holds a lone surrogate (a pair of escapes is one character)."""
    return has_surrogate(json.loads(json.dumps(text)))


#: The texts without surrogates (what the Python Store can materialize into SQLite today).
STORE_SAFE_TEXTS = tuple(text for text in UNICODE_TEXTS if not has_surrogate(text))


class RawTransportError(Exception):
    """No answer (connection refused or dropped, timeout) or not an RPC answer."""


class RawRpcError(Exception):
    """The RPC failed: ``tag`` is the error's tag (``UnknownError:<cause name>`` for UnknownError)."""

    def __init__(self, tag: str, wire: Any) -> None:
        super().__init__(f"{tag}: {json.dumps(wire, ensure_ascii=True)[:300]}")
        self.tag = tag
        self.wire = wire


class RawClient:
    """Ping-less push and pull for one store, over httpx."""

    def __init__(self, url: str, store_id: str, name: str, *, timeout: float = 20.0) -> None:
        self.url = f"{url}?storeId={quote(store_id, safe='')}&transport=http"
        self.store_id = store_id
        self.name = name
        self.backend_id: str | None = None
        self._http = httpx.Client(timeout=timeout)
        self._ids = 0
        self._headers = {
            "content-type": "application/json",
            "x-livestore-store-id": store_id,
            CLIENT_HEADER: name,
        }

    def close(self) -> None:
        self._http.close()

    def _rpc(self, tag: str, fields: dict[str, Any]) -> list[dict[str, Any]]:
        self._ids += 1
        body = {
            "_tag": "Request",
            "id": str(self._ids),
            "tag": tag,
            "payload": {"storeId": self.store_id, **fields},
            "headers": [],
        }
        try:
            response = self._http.post(self.url, content=json.dumps(body), headers=self._headers)
            messages = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise RawTransportError(f"{tag}: {type(error).__name__}: {error}") from error
        if not isinstance(messages, list):
            raise RawTransportError(f"{tag}: HTTP {response.status_code}: {str(messages)[:200]}")
        for message in messages:
            if message.get("_tag") == "Exit":
                exit_ = message["exit"]
                if exit_.get("_tag") == "Success":
                    return messages
                wire = exit_.get("cause", {}).get("error", {})
                tag_name = str(wire.get("_tag", "Failure"))
                if tag_name == "UnknownError":
                    tag_name += ":" + str(wire.get("cause", {}).get("name", "?"))
                raise RawRpcError(tag_name, wire)
        raise RawTransportError(f"{tag}: no Exit in {str(messages)[:200]}")

    def pull(self, after: int) -> list[dict[str, Any]]:
        """The events of one pull response after ``after`` (0 with no backend id yet: no cursor)."""
        return [event for event, _ in self.pull_items(after)]

    def pull_items(self, after: int) -> list[tuple[dict[str, Any], str | None]]:
        """Like :meth:`pull`, with each event's ``createdAt`` (one per committed batch)."""
        cursor: dict[str, Any] = {"_tag": "None"}
        if self.backend_id is not None:
            cursor = {"_tag": "Some", "value": {"backendId": self.backend_id, "eventSequenceNumber": after}}
        elif after:
            raise ValueError("a cursor needs the backend id: pull from 0 first")
        messages = self._rpc("SyncHttpRpc.Pull", {"cursor": cursor})
        items: list[tuple[dict[str, Any], str | None]] = []
        for message in messages:
            if message.get("_tag") == "Chunk":
                for value in message["values"]:
                    self.backend_id = value["backendId"]
                    for item in value["batch"]:
                        metadata = item.get("metadata", {})
                        stamp = (
                            metadata.get("value", {}).get("createdAt")
                            if metadata.get("_tag") == "Some"
                            else None
                        )
                        items.append((item["eventEncoded"], stamp))
        return items

    def pull_all(self, after: int) -> list[dict[str, Any]]:
        """Pull until an answer brings nothing new (a response may stop at its size cap)."""
        return [event for event, _ in self.pull_all_items(after)]

    def pull_all_items(self, after: int) -> list[tuple[dict[str, Any], str | None]]:
        items: list[tuple[dict[str, Any], str | None]] = []
        while True:
            page = self.pull_items(after)
            if not page:
                return items
            items += page
            after = int(page[-1][0]["seqNum"])

    def push(self, batch: Sequence[dict[str, Any]]) -> None:
        """Push; raises :class:`RawRpcError` (``ServerAheadError``...) or :class:`RawTransportError`."""
        option = {"_tag": "Some", "value": self.backend_id} if self.backend_id else {"_tag": "None"}
        self._rpc("SyncHttpRpc.Push", {"batch": list(batch), "backendId": option})


@dataclass
class RawWriterStats:
    pushes: int = 0
    acked: int = 0
    retried_as_is: int = 0  # pushes re-sent unchanged after a lost answer
    refused: int = 0  # ServerAheadError answers
    abandoned: int = 0  # events given up after the backend failed their push 3 times in a row
    errors: dict[str, int] = field(default_factory=dict)


def raw_event(name: str, number: int, text: str) -> dict[str, Any]:
    return {"name": "v1.RawNote", "args": {"id": f"{name}-{number}", "text": text}}


def run_raw_writer(
    client: RawClient,
    events: Sequence[dict[str, Any]],
    rng: random.Random,
    *,
    time_left: Callable[[], float],
    batch_sizes: tuple[int, int] = (1, 6),
    retry_pause: tuple[float, float] = (0.1, 3.0),
    pace: tuple[float, float] = (0.05, 0.4),
) -> RawWriterStats:
    """Commit ``events`` (name and args) in batches of seeded sizes, each at the head it knows.

    A push whose answer is lost is sent again unchanged after a pause (up to 3 times); a refused
    or failed one makes it catch up, where it finds its batch if an earlier attempt committed it.
    A batch the backend fails (``UnknownError``) 3 times in a row is given up (``abandoned``).
    ``time_left()`` raises when the run's deadline has passed.
    """
    stats = RawWriterStats()
    session = f"raw-{client.name}"

    def catch_up(after: int) -> list[dict[str, Any]]:
        attempt = 0
        while True:
            time_left()
            try:
                return client.pull_all(after)
            except (RawTransportError, RawRpcError) as error:
                tag = error.tag if isinstance(error, RawRpcError) else "transport"
                stats.errors[f"pull_{tag}"] = stats.errors.get(f"pull_{tag}", 0) + 1
                attempt += 1
                time.sleep(rng.uniform(0, min(1.0, 0.05 * 2**attempt)))

    head = len(catch_up(0))
    queue = list(events)
    failing = 0  # pushes of this batch the backend failed (UnknownError) in a row
    chunk: list[dict[str, Any]] = []
    while queue:
        time_left()
        if not failing:  # else the same batch again (at the head it knows now)
            chunk = queue[: rng.randint(*batch_sizes)]
            # An event with a lone surrogate goes alone, so a backend that fails it fails no other.
            alone = [has_lone_surrogate(json.dumps(event, ensure_ascii=False)) for event in chunk]
            if any(alone):
                chunk = chunk[:1] if alone[0] else chunk[: alone.index(True)]
        batch = [
            {
                **event,
                "seqNum": head + 1 + i,
                "parentSeqNum": head + i,
                "clientId": client.name,
                "sessionId": session,
            }
            for i, event in enumerate(chunk)
        ]
        outcome = "lost"
        for attempt in range(4):
            stats.pushes += 1
            try:
                client.push(batch)
            except RawTransportError:
                if attempt < 3:
                    stats.retried_as_is += 1
                    time.sleep(rng.uniform(*retry_pause))
                continue
            except RawRpcError as error:
                outcome = error.tag
                break
            outcome = "Success"
            break
        if outcome == "Success":
            stats.acked += len(batch)
            head = batch[-1]["seqNum"]
            queue = queue[len(chunk) :]
            failing = 0
            time.sleep(rng.uniform(*pace))
            continue
        if outcome == "ServerAheadError":
            stats.refused += 1
        elif outcome != "lost":
            stats.errors[f"push_{outcome}"] = stats.errors.get(f"push_{outcome}", 0) + 1
            failing += 1
            time.sleep(rng.uniform(0.05, 0.3))
        new = catch_up(head)
        if any(event["args"] == chunk[0]["args"] and event["clientId"] == client.name for event in new):
            queue = queue[len(chunk) :]  # an attempt whose answer was lost did commit it
            failing = 0
        elif failing >= 3:
            stats.abandoned += len(chunk)  # the backend keeps failing this batch: give it up
            queue = queue[len(chunk) :]
            failing = 0
        if new:
            head = int(new[-1]["seqNum"])
    return stats


def race_first_pull_and_push(url: str, store_id: str, rng: random.Random, events: int = 1) -> None:
    """On a fresh store, a first pull (no cursor) and the first push, started together."""
    puller, pusher = RawClient(url, store_id, "probe-pull"), RawClient(url, store_id, "probe-push")
    start = threading.Barrier(2)
    offsets = rng.uniform(0, 0.02), rng.uniform(0, 0.04)

    def pull() -> None:
        start.wait()
        time.sleep(offsets[0])
        with suppress(RawTransportError, RawRpcError):  # the proxy's observer records the answer
            puller.pull(0)

    def push() -> None:
        start.wait()
        time.sleep(offsets[1])
        batch = [
            {
                **raw_event("probe", number, f"probe {number}"),
                "seqNum": number + 1,
                "parentSeqNum": number,
                "clientId": "probe",
                "sessionId": "probe",
            }
            for number in range(events)
        ]
        for _ in range(3):
            try:
                pusher.push(batch)
                return
            except RawTransportError:
                time.sleep(0.2)
            except RawRpcError:
                return

    threads = [threading.Thread(target=pull, daemon=True), threading.Thread(target=push, daemon=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    puller.close()
    pusher.close()
