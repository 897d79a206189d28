"""Reset and delete against writers in flight, on the storage leg (moto server mode).

The commit invariant rests on commit records never being deleted; reset and delete delete them.
These attack what could go wrong then: a push whose conditional put is delayed across the reset, a
warm process whose cached backend id outlives it, an archiver run that began before it, and a
write that outlives even the grace period (refused loudly, never served)."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

import pytest

from stratasync.core.sealing import Archiver
from stratasync.core.service import SyncService
from stratasync.operations import Connection, Journal, Target, connect
from stratasync.operations.erase import DELETE_STEPS, RESET_STEPS, erase
from stratasync.protocol.errors import BackendIdMismatchError, ServerAheadError
from stratasync.protocol.messages import Cursor
from stratasync.storage import BackendChangedError, StorageError, StoreFencedError
from stratasync.storage.dynamodb import DynamoDBStorage, make_client
from stratasync.storage.dynamodb_items import is_fence
from stratasync.storage.tiered import TieredEventLog
from tests.conftest import TABLE
from tests.operations.helpers import event, fill, items_of, new_store, push, target, versioned_bucket
from tests.storage.test_dynamodb import ClientWrapper


@pytest.fixture
def t(moto_endpoint: str) -> Target:
    versioned_bucket(moto_endpoint)
    return target(moto_endpoint, moto_endpoint, TABLE)


@pytest.fixture
def conn(t: Target) -> Connection:
    return connect(t)


def reset(conn: Connection, store_id: str, grace: float = 0.0) -> Any:
    return erase(conn, store_id, Journal("reset", store_id, RESET_STEPS), kind="reset", grace_seconds=grace)


def warm_service(t: Target, client: Any = None) -> SyncService:
    """A sync function's service, as a warm Lambda holds it (its own storage object and cache)."""
    storage = DynamoDBStorage(t.table, client if client is not None else make_client(t.dynamodb_endpoint))
    return SyncService(TieredEventLog(storage, connect(t).segments))


def cursor(backend_id: str, seq: int) -> Cursor:
    return Cursor(backendId=backend_id, eventSequenceNumber=seq)


# -- a stale cached backend id -----------------------------------------------------------------------


@pytest.mark.parametrize("new_incarnation_has_events", [False, True])
def test_a_warm_process_does_not_serve_or_accept_the_old_backend_id_after_a_reset(
    t: Target, conn: Connection, new_incarnation_has_events: bool
) -> None:
    store_id = new_store()
    fill(conn, store_id, 12)
    warm = warm_service(t)
    old = warm.pull(store_id, None).backend_id  # cached now, as in a warm Lambda
    assert warm.store.backend_id(store_id) == old

    new = reset(conn, store_id).new_backend_id
    assert new != old
    if new_incarnation_has_events:
        push(SyncService(connect(t).log), store_id, [event(1, client="new")], backend_id=new)

    # A client of the old incarnation is told to reset, on push and on pull: never acknowledged.
    with pytest.raises(BackendIdMismatchError) as pushed:
        push(warm, store_id, [event(13)], backend_id=old)
    assert pushed.value.expected == new
    with pytest.raises(BackendIdMismatchError) as pulled:
        warm.pull(store_id, cursor(old, 12))
    assert pulled.value.expected == new
    assert warm.store.backend_id(store_id) == new  # the cache is right again
    # A push naming no backend id is checked against the new incarnation, like any other.
    expected_head = 1 if new_incarnation_has_events else 0
    result = push(warm, store_id, [event(expected_head + 1, client="after")])
    assert result.head == expected_head + 1
    seen = [stored.event_json for stored in connect(t).log.read(store_id, 0)]
    assert len(seen) == expected_head + 1
    assert all('"seqNum":13' not in text for text in seen)
    assert connect(t).storage.current(store_id).backend_id == new


def test_a_warm_process_after_a_delete_serves_and_accepts_nothing_of_the_erased_store(
    t: Target, conn: Connection
) -> None:
    store_id = new_store()
    fill(conn, store_id, 8)
    warm = warm_service(t)
    old = warm.pull(store_id, None).backend_id  # cached, as in a warm Lambda
    erase(conn, store_id, Journal("delete", store_id, DELETE_STEPS), kind="delete", grace_seconds=0)
    with pytest.raises(BackendIdMismatchError):
        push(warm, store_id, [event(9)], backend_id=old)
    with pytest.raises(BackendIdMismatchError):
        warm.pull(store_id, cursor(old, 8))
    # The id is free again: a request starts a new, empty store (never the erased one's id or events).
    pulled = warm.pull(store_id, None)
    assert pulled.empty
    assert pulled.backend_id != old
    assert [key for key in items_of(connect(t), store_id) if key != "meta"] == []


def test_a_warm_archiver_does_not_write_into_the_next_incarnation(t: Target, conn: Connection) -> None:
    store_id = new_store()
    fill(conn, store_id, 60)
    warm = DynamoDBStorage(t.table, make_client(t.dynamodb_endpoint))
    warm.backend_id(store_id)  # cached
    reset(conn, store_id)
    fill(conn, store_id, 30)  # the new incarnation has events to seal
    sealed = Archiver(warm, conn.segments, conn.policy).archive(store_id).sealed
    assert sealed  # it seals the new incarnation's events, under the new backend id
    index = list(conn.admin.segments(store_id))
    assert {segment.key for segment in index} == {segment.key for segment in sealed}
    manifest_backend = conn.segments.get_with_metadata(sealed[0].key)[1]["backend-id"]
    assert manifest_backend == conn.storage.current(store_id).backend_id


# -- a commit put delayed across a reset -----------------------------------------------------------


def _commit_put(kwargs: dict[str, Any]) -> bool:
    return bool(kwargs.get("ConditionExpression")) and kwargs["Item"]["sk"]["S"].startswith("b#")


@pytest.mark.parametrize("kind", ["reset", "delete"])
def test_a_commit_put_delayed_across_a_reset_or_delete_is_refused_and_never_lands(
    t: Target, conn: Connection, kind: str
) -> None:
    """Writer A reads the head; its conditional put is held up. Meanwhile an operator fences the
    store and starts waiting out writes in flight. A's put arrives during the wait: it loses to the
    fence, so A's client is never acknowledged; and the new incarnation holds nothing of it."""
    store_id = new_store()
    fill(conn, store_id, 10)
    wrapper = ClientWrapper(make_client(t.dynamodb_endpoint))
    writer = warm_service(t, wrapper)
    old = writer.store.backend_id(store_id)
    operation: dict[str, Any] = {}

    def run_operation() -> None:
        steps = RESET_STEPS if kind == "reset" else DELETE_STEPS
        operation["result"] = erase(
            connect(t), store_id, Journal(kind, store_id, steps), kind=kind, grace_seconds=1.5
        )

    def delayed(method: Any, **kwargs: Any) -> Any:
        if _commit_put(kwargs) and "thread" not in operation:
            operation["thread"] = threading.Thread(target=run_operation)
            operation["thread"].start()
            deadline = time.monotonic() + 30
            while not is_fence(connect(t).admin.head_record(store_id) or {}):  # fenced, now waiting
                assert time.monotonic() < deadline
                time.sleep(0.05)
        return method(**kwargs)

    wrapper.hooks["put_item"] = delayed
    with pytest.raises(StoreFencedError):
        push(writer, store_id, [event(11, client="A")], backend_id=old)
    operation["thread"].join(timeout=60)
    assert "result" in operation
    after = connect(t)
    if kind == "reset":
        assert items_of(after, store_id) == ["meta"]
        assert list(after.log.read(store_id, 0)) == []
    else:
        assert items_of(after, store_id) == []


def test_a_push_on_an_older_head_delayed_across_the_fence_loses_to_the_record_still_there(
    t: Target, conn: Connection
) -> None:
    """The writer read head H; B committed on H after; the fence went on B's head. The writer's put
    at H meets B's record (still there during the grace period), not the fence: refused too."""
    store_id = new_store()
    fill(conn, store_id, 5)
    wrapper = ClientWrapper(make_client(t.dynamodb_endpoint))
    writer = warm_service(t, wrapper)
    backend_id = writer.store.backend_id(store_id)
    state: dict[str, Any] = {}

    def delayed(method: Any, **kwargs: Any) -> Any:
        if _commit_put(kwargs) and not state:
            state["b"] = push(SyncService(connect(t).log), store_id, [event(6, client="B")])
            state["fence"] = connect(t).admin.fence(store_id, "reset", backend_id)
        return method(**kwargs)

    wrapper.hooks["put_item"] = delayed
    with pytest.raises((ServerAheadError, StoreFencedError)):
        push(writer, store_id, [event(6, client="A")], backend_id=backend_id)
    assert int(state["fence"]["last"]["N"]) == 6
    connect(t).admin.unfence(store_id)
    texts = [stored.event_json for stored in connect(t).log.read(store_id, 0)]
    assert len(texts) == 6
    assert '"clientId":"B"' in texts[-1]


# -- a write that outlives the grace period ----------------------------------------------------------


@pytest.fixture
def stray(t: Target, conn: Connection) -> tuple[str, str]:
    """A store reset with a commit put of the old incarnation landing afterwards (past any grace
    period: the one case the fence cannot rule out by itself)."""
    store_id = new_store()
    fill(conn, store_id, 3)
    wrapper = ClientWrapper(make_client(t.dynamodb_endpoint))
    writer = DynamoDBStorage(t.table, cast("Any", wrapper))
    old = writer.backend_id(store_id)

    def late(method: Any, **kwargs: Any) -> Any:
        if _commit_put(kwargs):
            reset(connect(t), store_id)
        return method(**kwargs)

    wrapper.hooks["put_item"] = late
    from stratasync.storage import EventBatch

    writer.append(store_id, EventBatch(3, [(4, '{"late":true}')], "2026-01-01T00:00:00.000Z", backend_id=old))
    return store_id, old


def test_a_write_that_outlives_the_grace_period_is_refused_loudly_never_served(
    t: Target, stray: tuple[str, str]
) -> None:
    store_id, old = stray
    fresh = SyncService(connect(t).log)
    with pytest.raises(StorageError, match="a write of an earlier incarnation landed after a reset"):
        fresh.pull(store_id, None)
    from stratasync.operations.inspect import inspect_store

    report = inspect_store(connect(t), store_id)
    assert not report.consistent
    assert any(old in problem for problem in report.problems)
    # Resetting again clears it (with a longer grace period).
    reset(connect(t), store_id)
    assert list(connect(t).log.read(store_id, 0)) == []
    assert SyncService(connect(t).log).pull(store_id, None).empty


def test_storage_refuses_a_batch_checked_against_another_incarnation(t: Target, conn: Connection) -> None:
    store_id = new_store()
    fill(conn, store_id, 2)
    from stratasync.storage import EventBatch

    batch = EventBatch(2, [(3, '{"x":1}')], "2026-01-01T00:00:00.000Z", backend_id="not-this-one")
    with pytest.raises(BackendChangedError) as changed:
        conn.storage.append(store_id, batch)
    assert changed.value.backend_id == conn.storage.backend_id(store_id)
