"""Values that are legal somewhere and not everywhere (issue 9): non-finite numbers never get into
the eventlog; lone surrogates (half an emoji, legal in JS strings) never wedge sync."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import BaseModel

from stratasync.client import RetryPolicy, Store, Table, Write, sql, synced_event
from stratasync.client.schema import Schema
from stratasync.client.todos import schema, todo_created
from tests.client.fakes import ScriptedTransport, wire_event

FAST = RetryPolicy(initial_seconds=0.001, max_seconds=0.01)
HALF_EMOJI = "\ud83d"  # the high half of U+1F600, alone


class Reading(BaseModel):
    id: str
    value: float
    count: int = 0
    extra: list[dict[str, float]] = []


reading_taken = synced_event("v1.ReadingTaken", Reading)
readings = Table("readings", "CREATE TABLE readings (id TEXT PRIMARY KEY, value REAL, count INTEGER)")


def _reading(args: Reading) -> list[Write]:  # the raw-SQL form of a materializer
    return [sql("INSERT INTO readings (id, value, count) VALUES (?, ?, ?)", args.id, args.value, args.count)]


numbers = Schema(events=[reading_taken], tables=[readings], materializers={reading_taken: _reading})


@pytest.mark.parametrize(
    "args",
    [
        {"value": math.nan},
        {"value": math.inf},
        {"value": -math.inf},
        {"value": 1.0, "count": 10**400},  # JSON readers (JS, doubles) decode it as Infinity
        {"value": 1.0, "extra": [{"deep": math.nan}]},
    ],
    ids=["nan", "inf", "-inf", "huge-int", "nested-nan"],
)
def test_commit_refuses_args_that_strict_json_cannot_carry(args: dict[str, Any]) -> None:
    transport = ScriptedTransport()
    with Store(numbers, "s", transport=transport, retry=FAST) as store:
        with pytest.raises(ValueError, match=r"v1\.ReadingTaken"):
            store.commit(reading_taken(id="bad", **args))
        assert store.events() == []
        assert store.query("SELECT * FROM readings") == []
        store.commit(reading_taken(id="fine", value=1e308, count=2**62))  # large but finite: fine
        store.sync()
        assert [event["args"]["id"] for event in transport.upstream] == ["fine"]
        assert all(math.isfinite(v) for e in transport.upstream for v in [e["args"]["value"]])


def eventlog_json(store: Store) -> list[str]:
    return [row[0] for row in store._db.conn.execute("SELECT event FROM __ss_eventlog ORDER BY seq")]


def test_a_lone_surrogate_pulled_from_upstream_is_materialized_and_kept_exactly() -> None:
    cut = {"id": "s", "text": f"half {HALF_EMOJI} an emoji"}
    pair = {"id": "t", "text": "a whole \ud83d\ude00"}  # both halves, as JS sends an emoji
    upstream = [
        wire_event(1, 0, "v1.TodoCreated", cut, "js" + HALF_EMOJI),
        wire_event(2, 1, "v1.TodoCreated", pair),
    ]
    transport = ScriptedTransport(upstream)
    with Store(schema, "s", transport=transport, retry=FAST) as store:
        store.commit(todo_created(id="mine", text="local"))  # and a pending event to rebase on top
        store.sync(timeout=10)
        assert store.pending_events() == []
        rows = store.query("SELECT id, text FROM todos ORDER BY rowid")
        # Table values: each lone surrogate is stored as U+FFFD (sqlite3 cannot bind it).
        assert [tuple(row) for row in rows] == [
            ("s", "half \ufffd an emoji"),
            ("t", "a whole \U0001f600"),
            ("mine", "local"),
        ]
        # The eventlog keeps the event as it came, escape and all.
        first = eventlog_json(store)[0]
        assert '"text":"half \\ud83d an emoji"' in first
        assert '"clientId":"js\\ud83d"' in first
        event = store.events()[0]
        assert event.args["text"] == f"half {HALF_EMOJI} an emoji"
        assert event.client_id == "js" + HALF_EMOJI
        assert event.encoded() == json.loads(json.dumps(upstream[0]))
        # A lookup with the same string finds the row it materialized.
        found = store.query("SELECT id FROM todos WHERE text = ?", params=(event.args["text"],))
        assert [row[0] for row in found] == ["s"]
    assert transport.pushes[-1][0]["parentSeqNum"] == 2


def test_a_lone_surrogate_committed_locally_is_pushed_as_the_same_escape() -> None:
    transport = ScriptedTransport()
    with Store(schema, "s", transport=transport, retry=FAST) as store:
        store.commit(todo_created(id="s", text=f"cut {HALF_EMOJI}"))
        assert store.query("SELECT text FROM todos")[0][0] == "cut \ufffd"
        assert '"text":"cut \\ud83d"' in eventlog_json(store)[0]
        assert store.pending_events()[0].args["text"] == f"cut {HALF_EMOJI}"
        store.sync()
        assert store.pending_events() == []
    # On the wire as JSON.stringify sends it: the escape, not a replacement character.
    assert '"text": "cut \\ud83d"' in transport.push_bodies[0]
    assert transport.upstream[0]["args"]["text"] == f"cut {HALF_EMOJI}"
    with Store(schema, "s", transport=transport, retry=FAST) as other:
        other.sync()
        assert other.events()[0].args["text"] == f"cut {HALF_EMOJI}"
        assert other.query("SELECT text FROM todos")[0][0] == "cut \ufffd"


def test_half_an_emoji_syncs_between_two_python_clients_through_the_real_backend_core() -> None:
    """End to end through SyncService: the backend accepts the escape and serves it back as is."""
    from stratasync.core import SyncService
    from stratasync.storage.memory import InMemoryStorage
    from tests.client.fakes import InProcessTransport

    service = SyncService(InMemoryStorage())
    writer = Store(schema, "emoji", transport=InProcessTransport(service, "emoji"), retry=FAST)
    reader = Store(schema, "emoji", transport=InProcessTransport(service, "emoji"), retry=FAST)
    writer.commit(todo_created(id="half", text=f"smile {HALF_EMOJI}!"))
    writer.sync(timeout=10)
    reader.sync(timeout=10)
    assert [event.args for event in reader.events()] == [{"id": "half", "text": f"smile {HALF_EMOJI}!"}]
    assert reader.query("SELECT text FROM todos")[0][0] == "smile \ufffd!"
    assert not writer.pending_events()
    writer.close()
    reader.close()
