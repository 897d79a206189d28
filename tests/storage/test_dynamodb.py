"""The DynamoDB adapter: the conformance suite on moto (server mode) and on DynamoDB Local,
plus what only this adapter has (parts, retries, empty last pages, ALL_OLD on conflict)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from stratasync.storage import (
    AppendOutcome,
    EventLogStorage,
    HeadMismatchError,
    StorageError,
    StorageUnavailableError,
)
from stratasync.storage.dynamodb import DynamoDBStorage, make_client
from stratasync.testing.event_log import EventLogStorageConformance, make_batch
from tests.conftest import TABLE


class TestDynamoDBOnMoto(EventLogStorageConformance):
    @pytest.fixture(autouse=True)
    def _endpoint(self, moto_endpoint: str) -> None:
        self.endpoint = moto_endpoint

    def create_store(self) -> EventLogStorage:
        return DynamoDBStorage(TABLE, make_client(self.endpoint))


@pytest.mark.dynamodb_local
class TestDynamoDBOnDynamoDBLocal(EventLogStorageConformance):
    @pytest.fixture(autouse=True)
    def _endpoint(self, dynamodb_local_endpoint: str) -> None:
        self.endpoint = dynamodb_local_endpoint

    def create_store(self) -> EventLogStorage:
        return DynamoDBStorage(TABLE, make_client(self.endpoint))


class ClientWrapper:
    """A DynamoDB client that lets a test intercept calls (faults, races, page shapes)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[str] = []
        self.hooks: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append(name)
            hook = self.hooks.get(name)
            if hook is not None:
                return hook(method, **kwargs)
            return method(**kwargs)

        return call


def throttled(operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, operation
    )


@pytest.fixture
def wrapped(moto_endpoint: str) -> tuple[DynamoDBStorage, ClientWrapper]:
    wrapper = ClientWrapper(make_client(moto_endpoint))
    return DynamoDBStorage(TABLE, wrapper, time_budget_seconds=1.0), wrapper  # type: ignore[arg-type]


def test_empty_last_page_is_followed_until_the_end(wrapped: tuple[DynamoDBStorage, ClientWrapper]) -> None:
    store, wrapper = wrapped
    for parent in range(6):
        store.append("pages", make_batch(parent, 1))
    store.table.page_items = 3

    def real_dynamodb_paging(method: Any, **kwargs: Any) -> Any:
        page = method(**kwargs)
        # Real DynamoDB: a page that exactly fills Limit carries a LastEvaluatedKey, then comes an empty page.
        forward = kwargs.get("ScanIndexForward", True)
        if forward and "LastEvaluatedKey" not in page and len(page["Items"]) == kwargs["Limit"]:
            last = page["Items"][-1]
            page["LastEvaluatedKey"] = {"pk": last["pk"], "sk": last["sk"]}
        return page

    wrapper.hooks["query"] = real_dynamodb_paging
    wrapper.calls.clear()
    assert [event.seq_num for event in store.read("pages", 0)] == [1, 2, 3, 4, 5, 6]
    assert wrapper.calls.count("query") == 3  # two full pages and the empty last one


def test_throttling_is_retried_within_the_budget(wrapped: tuple[DynamoDBStorage, ClientWrapper]) -> None:
    store, wrapper = wrapped
    failures = {"left": 3}

    def flaky(method: Any, **kwargs: Any) -> Any:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise throttled("PutItem")
        return method(**kwargs)

    wrapper.hooks["put_item"] = flaky
    store.append("throttled", make_batch(0, 2))
    assert store.head("throttled") == 2
    assert wrapper.calls.count("put_item") >= 4


def test_persistent_throttling_ends_as_storage_unavailable(
    wrapped: tuple[DynamoDBStorage, ClientWrapper],
) -> None:
    store, wrapper = wrapped

    def always(method: Any, **kwargs: Any) -> Any:
        raise throttled("Query")

    wrapper.hooks["query"] = always
    with pytest.raises(StorageUnavailableError, match="still failing"):
        store.head("busy")


def test_other_driver_errors_become_storage_errors_with_the_request_id(moto_endpoint: str) -> None:
    store = DynamoDBStorage("no-such-table", make_client(moto_endpoint))
    with pytest.raises(StorageError, match="ResourceNotFoundException") as failed:
        store.head("s")
    assert failed.value.request_id
    assert failed.value.request_id in str(failed.value)
    assert f"no table 'no-such-table' at {moto_endpoint}" in str(failed.value)  # which one, where


def test_any_5xx_is_retried_even_with_a_code_botocore_does_not_know(
    wrapped: tuple[DynamoDBStorage, ClientWrapper],
) -> None:
    store, wrapper = wrapped
    failures = {"left": 2}

    def flaky(method: Any, **kwargs: Any) -> Any:
        if failures["left"] > 0:
            failures["left"] -= 1
            response: Any = {
                "Error": {"Code": "SomethingNew", "Message": "try again"},
                "ResponseMetadata": {"HTTPStatusCode": 503, "RequestId": "req-503"},
            }
            raise ClientError(response, "Query")
        return method(**kwargs)

    wrapper.hooks["query"] = flaky
    assert store.head("five-oh-three") == 0
    assert failures["left"] == 0


def test_losing_writer_learns_the_winners_head_without_another_read(
    wrapped: tuple[DynamoDBStorage, ClientWrapper], moto_endpoint: str
) -> None:
    store, wrapper = wrapped
    rival = DynamoDBStorage(TABLE, make_client(moto_endpoint))

    def rival_commits_first(method: Any, **kwargs: Any) -> Any:
        if kwargs.get("ConditionExpression") == "attribute_not_exists(sk)":
            rival.append("race", make_batch(0, 4, client="rival"))
        return method(**kwargs)

    store.backend_id("race")  # the store exists, its backend id is cached (as in a warm Lambda)
    wrapper.calls.clear()
    wrapper.hooks["put_item"] = rival_commits_first
    with pytest.raises(HeadMismatchError) as refused:
        store.append("race", make_batch(0, 1))
    assert refused.value.head == 4
    # head query; an empty store has no commit record to check the cached backend id against, so
    # its meta item is read (a store's first push only); the failed put: no extra round trip after it
    assert wrapper.calls == ["query", "get_item", "put_item"]


def test_crash_between_parts_and_commit_leaves_nothing_visible(
    wrapped: tuple[DynamoDBStorage, ClientWrapper],
) -> None:
    store, wrapper = wrapped
    big = make_batch(0, 100, text_bytes=8_800)

    def crash_on_commit(method: Any, **kwargs: Any) -> Any:
        if kwargs.get("ConditionExpression") == "attribute_not_exists(sk)":
            raise KeyboardInterrupt("process killed")  # nothing after this line runs
        return method(**kwargs)

    store.backend_id("crash")  # the store's meta item exists (its first request created it)
    wrapper.hooks["put_item"] = crash_on_commit
    with pytest.raises(KeyboardInterrupt):
        store.append("crash", big)
    assert wrapper.calls.count("put_item") >= 2  # overflow part(s), then the commit that never happened
    del wrapper.hooks["put_item"]
    assert store.head("crash") == 0
    assert list(store.read("crash", 0)) == []
    store.append("crash", big)  # the client retries: it commits cleanly
    assert [event.seq_num for event in store.read("crash", 0)] == list(range(1, 101))


@pytest.mark.parametrize("text_bytes", [20, 8_800], ids=["inline", "multipart"])
def test_a_lost_answer_to_an_applied_commit_is_this_push_s_own_commit(
    wrapped: tuple[DynamoDBStorage, ClientWrapper], text_bytes: int
) -> None:
    """The commit put is applied, its answer is lost, the budgeted retry meets the item it wrote:
    that is this push's own commit (its parts stay), not a rival's and not an old retry."""
    store, wrapper = wrapped
    store_id = f"lost-answer-{text_bytes}"
    batch = make_batch(0, 100, text_bytes=text_bytes)
    lost = {"answers": 0}

    def applied_then_lost(method: Any, **kwargs: Any) -> Any:
        result = method(**kwargs)
        if kwargs.get("ConditionExpression") and lost["answers"] == 0:
            lost["answers"] += 1
            raise ConnectionClosedError(endpoint_url="http://dynamodb.test")
        return result

    wrapper.hooks["put_item"] = applied_then_lost
    assert store.append(store_id, batch) is AppendOutcome.COMMITTED
    assert lost["answers"] == 1
    assert "batch_write_item" not in wrapper.calls  # no part was deleted
    assert [(event.seq_num, event.event_json) for event in store.read(store_id, 0)] == list(batch.events)
    assert store.append(store_id, batch) is AppendOutcome.ALREADY_COMMITTED  # the client's own retry
