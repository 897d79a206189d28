"""The fan-out function's reading of DynamoDB stream records (no AWS: the records as Lambda gets them)."""

from __future__ import annotations

from typing import Any

from stratasync.handlers.fanout import NewCommits, stores_with_commits


def _record(store: str, sk: str, *, event: str = "INSERT", created: float | None = None) -> dict[str, Any]:
    change: dict[str, Any] = {"Keys": {"pk": {"S": store}, "sk": {"S": sk}}}
    if created is not None:
        change["ApproximateCreationDateTime"] = created
    return {"eventName": event, "dynamodb": change}


def test_only_new_commit_records_name_a_store_in_order_with_the_oldest_time() -> None:
    records = [
        _record("b", "b#00000000000000000005", created=1_700_000_010),
        _record("a", "b#00000000000000000001", created=1_700_000_005),
        _record("b", "b#00000000000000000007", created=1_700_000_003),
        _record("c", "meta"),  # not a commit record
        _record("d", "b#00000000000000000002", event="MODIFY", created=1),  # a tombstone write
        _record("e", "b#00000000000000000002", event="REMOVE", created=1),
        _record("a", "b#00000000000000000002"),  # no stream time: the oldest known is kept
    ]
    assert stores_with_commits(records) == {
        "b": NewCommits(first_parent=5, last_parent=7, oldest_created=1_700_000_003.0),
        "a": NewCommits(first_parent=1, last_parent=2, oldest_created=1_700_000_005.0),
    }


def test_a_store_without_stream_times_is_still_served() -> None:
    assert stores_with_commits([_record("a", "b#00000000000000000001")]) == {"a": NewCommits(1, 1, None)}


def test_the_new_events_start_at_the_lowest_parent_and_the_newest_commit_is_the_highest() -> None:
    records = [_record("a", "b#00000000000000000009"), _record("a", "b#00000000000000000004")]
    commits = stores_with_commits(records)["a"]
    assert (commits.first_parent, commits.last_parent) == (4, 9)


def test_a_sort_key_that_is_not_a_commit_record_names_no_store() -> None:
    assert stores_with_commits([_record("a", "b#last"), _record("a", "b#"), _record("a", "b#-1")]) == {}
