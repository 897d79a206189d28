"""The history checker and the storage-leg request classifier on made-up histories and requests
(no emulators: these run in milliseconds)."""

from __future__ import annotations

import json
from typing import Any

from tests.faults.history import History, check_history
from tests.faults.proxy import ProxiedRequest
from tests.faults.storage import ArchiverCrashes, StorageFaultPlan, classify_dynamodb, s3_store


def event(seq: int, text: str, client: str = "a") -> dict[str, Any]:
    return {
        "name": "v1.Note",
        "args": {"id": f"{client}-{text}", "text": text},
        "seqNum": seq,
        "parentSeqNum": seq - 1,
        "clientId": client,
        "sessionId": "s",
    }


def test_a_clean_history_checks_out() -> None:
    history = History()
    log = [event(1, "x"), event(2, "y", "b")]
    history.record_push("s", "a", log[:1], "Success", 0.0, 0.1)
    history.record_push("s", "b", [event(1, "y", "b")], "ServerAheadError", 0.2, 0.3)
    history.record_push("s", "b", log[1:], "Success", 0.4, 0.5)
    history.record_pull("s", "c", 0, log, 0.6)
    report = check_history(history, {"s": log})
    assert report.violations == 0, report.details()
    assert (report.acked_events, report.observations) == (2, 2)


def test_an_acked_event_missing_from_the_final_log_is_lost() -> None:
    history = History()
    history.record_push("s", "a", [event(1, "x")], "Success", 0.0, 0.1)
    history.record_push("s", "b", [event(2, "gone", "b")], "Success", 0.2, 0.3)
    report = check_history(history, {"s": [event(1, "x"), event(2, "other", "c")]})
    assert report.lost == 1
    assert report.forks == 0  # forks are about what pulls showed; no pull showed "gone"
    assert "acked at seqNum 2 is not there (the log holds another event)" in report.details()


def test_two_observations_of_one_seqnum_that_disagree_are_a_fork_even_if_transient() -> None:
    history = History()
    history.record_pull("s", "a", 1, [event(2, "hidden", "a")], 0.0)  # a commit item seen once
    report = check_history(history, {"s": [event(1, "x"), event(2, "y", "b")]})
    assert report.forks == 1
    assert "from cursor 1" in report.details()


def test_gaps_doubles_refused_retries_and_server_errors() -> None:
    history = History()
    acked = [event(1, "x")]
    history.record_push("s", "a", acked, "Success", 0.0, 0.1)
    history.record_push("s", "a", acked, "ServerAheadError", 0.5, 0.6)  # the same batch, retried
    history.record_push("s", "a", acked, "ServerAheadError", 0.7, 0.8)  # (counted once per batch)
    history.record_push("s", "a", [event(2, "z")], "UnknownError:UnknownError", 0.9, 1.0, "boom N")
    history.record_push("s", "a", [event(2, "q")], "UnknownError:StorageUnavailableError", 1.1, 1.2)
    report = check_history(history, {"s": [event(1, "x"), {**event(3, "x"), "parentSeqNum": 2}]})
    assert report.gaps == 1
    assert report.duplicated == 1  # the event acked at 1 is in the log twice
    assert report.refused_retries == 1
    assert report.server_errors == 1  # StorageUnavailableError is "retry later", not a failure
    assert report.error_causes["push UnknownError:UnknownError: boom N"] == 1


def test_an_unreadable_final_log_fails_the_check() -> None:
    report = check_history(History(), {}, {"s": "UnknownError: storage error: ..."})
    assert report.unreadable == 1
    assert report.violations == 1


def request(operation: str, body: dict[str, Any]) -> ProxiedRequest:
    headers = {"x-amz-target": f"DynamoDB_20120810.{operation}"}
    return ProxiedRequest("POST", "/", headers, json.dumps(body).encode())


def key(sort_key: str) -> dict[str, Any]:
    return {"pk": {"S": "store-1"}, "sk": {"S": sort_key}}


def test_requests_are_told_apart_by_what_they_write() -> None:
    commit = classify_dynamodb(
        request(
            "PutItem",
            {"Item": {**key("b#0000000000000003"), "parts": {"N": "1"}}, "ConditionExpression": "x"},
        )
    )
    assert (commit.store, commit.conditional, commit.label, commit.archiver_step) == (
        "store-1",
        True,
        "put_commit_parts",
        None,
    )
    index = classify_dynamodb(
        request("PutItem", {"Item": key("a#0000000000000000"), "ConditionExpression": "x"})
    )
    assert (index.label, index.archiver_step) == ("put_segment_index", "index")
    tombstones = classify_dynamodb(
        request(
            "BatchWriteItem", {"RequestItems": {"t": [{"PutRequest": {"Item": key("b#0000000000000001")}}]}}
        )
    )
    assert (tombstones.label, tombstones.archiver_step) == ("batch_write_tombstones", "retire")
    part_deletes = classify_dynamodb(
        request("BatchWriteItem", {"RequestItems": {"t": [{"DeleteRequest": {"Key": key("p#1#abc#0")}}]}})
    )
    assert (part_deletes.label, part_deletes.archiver_step) == ("batch_write_part_deletes", None)
    query = classify_dynamodb(
        request(
            "Query",
            {
                "ExpressionAttributeValues": {":pk": {"S": "store-1"}, ":lo": {"S": "b#0"}},
                "ScanIndexForward": False,
            },
        )
    )
    assert (query.store, query.forward, query.write) == ("store-1", False, False)
    put_object = ProxiedRequest("PUT", "/bucket/stores/store-1/segments/1-2-abc.gz", {}, b"")
    assert s3_store(put_object) == "store-1"


def test_the_crash_schedule_hits_each_boundary_once_and_then_refuses_the_dead_run() -> None:
    crashes = ArchiverCrashes(7, StorageFaultPlan(crashed_seconds=60), schedule=["after_index"], store="s")
    assert crashes.decide("write", "s") is None  # not the armed boundary's write
    assert crashes.decide("index", "other") is None  # another store
    assert crashes.decide("index", "s") == ("archiver_crash_after_index", True)  # applied, then dead
    assert crashes.decide("retire", "s") == ("archiver_write_refused_after_crash", False)
    assert crashes.crashed == {"after_index": 1}


def test_a_pull_answer_that_skips_events_after_its_cursor_is_broken() -> None:
    history = History()
    log = [event(1, "x"), event(2, "y"), event(3, "z")]
    history.record_pull("s", "a", 1, log[2:], 0.0)  # after 1, but starts at 3
    report = check_history(history, {"s": log})
    assert report.broken_answers == 1
    assert "after 1 answered seqNums 3" in report.details()
