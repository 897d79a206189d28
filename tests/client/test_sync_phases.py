"""The sync loop's phases one by one: pull, merge (apply_pulled's outcome), push, confirm, reset."""

from __future__ import annotations

from typing import Any

import pytest

from stratasync.client import BackendIdMismatchError, RetryPolicy, Store
from stratasync.client.todos import schema, todo_created
from tests.client.fakes import ScriptedTransport, always_ahead, engine, wire_event

FAST = RetryPolicy(initial_seconds=0.001, max_seconds=0.01)


def created(seq: int, todo_id: str, client: str = "peer") -> dict[str, Any]:
    return wire_event(seq, seq - 1, "v1.TodoCreated", {"id": todo_id, "text": todo_id}, client)


def test_pull_learns_the_backend_id_and_asks_from_the_upstream_head() -> None:
    transport = ScriptedTransport([created(1, "a")], backend_id="b-1")
    with Store(schema, "s", transport=transport, retry=FAST) as store:
        pages = engine(store).pull()
        assert [event["seqNum"] for page in pages for event in page.events] == [1]
        assert store.backend_id == "b-1"
        assert store.upstream_head == 0  # pulled, not merged yet


def test_apply_pulled_reports_noop_applied_confirmed_and_rebased() -> None:
    with Store(schema, "s", transport=ScriptedTransport(), retry=FAST) as store:
        rebaser = store._rebaser
        assert rebaser.apply_pulled([], []).noop
        outcome = rebaser.apply_pulled([created(1, "a")], [None])
        assert (outcome.applied, outcome.confirmed, outcome.rebased) == (1, 0, 0)
        assert rebaser.apply_pulled([created(1, "a")], [None]).noop  # a page seen before
        store.commit(todo_created(id="mine", text="mine"), todo_created(id="mine2", text="mine2"))
        mine = [event.encoded() for event in store.pending_events()]
        outcome = rebaser.apply_pulled([mine[0]], ["2026-01-01T00:00:00Z"])
        assert (outcome.applied, outcome.confirmed, outcome.rebased) == (0, 1, 0)
        outcome = rebaser.apply_pulled([created(3, "theirs")], [None])
        assert (outcome.applied, outcome.confirmed, outcome.rebased) == (1, 0, 1)
        assert [(e.seq_num, e.args["id"], e.pending) for e in store.events()] == [
            (1, "a", False),
            (2, "mine", False),
            (3, "theirs", False),
            (4, "mine2", True),
        ]
        assert store.events()[1].created_at == "2026-01-01T00:00:00Z"
        assert store.rebase_generation == 1


def test_push_pending_returns_false_when_the_backend_is_ahead_and_confirms_otherwise() -> None:
    transport = ScriptedTransport(on_push=always_ahead)
    with Store(schema, "s", transport=transport, retry=FAST) as store:
        store.commit(todo_created(id="a", text="a"))
        assert engine(store).push_pending() is False
        assert len(store.pending_events()) == 1
        transport.on_push = None
        assert engine(store).push_pending() is True
        assert store.pending_events() == []
        assert store.upstream_head == 1


def test_confirm_pushed_refuses_a_chunk_that_is_no_longer_pending() -> None:
    with Store(schema, "s", transport=ScriptedTransport(), retry=FAST) as store:
        store.commit(todo_created(id="a", text="a"))
        chunk = store.pending_events()
        store._rebaser.apply_pulled([created(1, "theirs")], [None])  # rebased: "a" is #2 now
        assert store._rebaser.confirm_pushed(chunk) is False
        assert [e.seq_num for e in store.pending_events()] == [2]


def test_reset_phase_keeps_pending_events_and_forgets_the_backend() -> None:
    transport = ScriptedTransport([created(1, "a")], backend_id="b-1")
    with Store(schema, "s", transport=transport, retry=FAST) as store:
        store.sync()
        store.commit(todo_created(id="mine", text="mine"))
        engine(store).reset(BackendIdMismatchError("b-2", "b-1"))
        assert store.backend_id is None
        assert store.upstream_head == 0
        assert [(e.seq_num, e.args["id"]) for e in store.pending_events()] == [(1, "mine")]
        store.on_backend_reset = "fail"
        with pytest.raises(Exception, match="reset"):
            engine(store).reset(BackendIdMismatchError("b-3", "b-2"))
