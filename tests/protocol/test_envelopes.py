"""Exact sync-cf envelopes through the transport-neutral endpoint (in-memory storage)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stratasync.core import SyncService, handle_rpc
from stratasync.storage.memory import InMemoryEventStore

CREATED_AT = "2026-11-23T12:00:00.000Z"


@pytest.fixture
def service() -> SyncService:
    return SyncService(InMemoryEventStore(), clock=lambda: CREATED_AT)


def event(seq: int, parent: int | None = None, **overrides: Any) -> dict[str, Any]:
    value = {
        "name": "v1.TodoCreated",
        "args": {"id": f"t{seq}", "text": "milk"},
        "seqNum": seq,
        "parentSeqNum": seq - 1 if parent is None else parent,
        "clientId": "k3Jd9",
        "sessionId": "pQ2xZ",
    }
    value.update(overrides)
    return value


def request(tag: str, payload: Any, request_id: str = "7", **extra: Any) -> bytes:
    return json.dumps(
        {"_tag": "Request", "id": request_id, "tag": tag, "payload": payload, "headers": [], **extra}
    ).encode()


def push_body(batch: list[dict[str, Any]], backend_id: str | None = None, store: str = "s1") -> bytes:
    option = {"_tag": "None"} if backend_id is None else {"_tag": "Some", "value": backend_id}
    return request("SyncHttpRpc.Push", {"storeId": store, "batch": batch, "backendId": option})


def pull_body(cursor: tuple[str, int] | None = None, store: str = "s1") -> bytes:
    option: dict[str, Any] = {"_tag": "None"}
    if cursor is not None:
        option = {"_tag": "Some", "value": {"backendId": cursor[0], "eventSequenceNumber": cursor[1]}}
    return request("SyncHttpRpc.Pull", {"storeId": store, "cursor": option})


def call(service: SyncService, body: bytes, query: dict[str, str] | None = None) -> tuple[int, Any]:
    response = handle_rpc(
        service, body, query if query is not None else {"storeId": "s1", "transport": "http"}
    )
    return response.status, json.loads(response.body)


def failure(messages: Any) -> dict[str, Any]:
    assert len(messages) == 1
    exit_message = messages[0]
    assert exit_message["_tag"] == "Exit"
    assert exit_message["exit"]["_tag"] == "Failure"
    assert exit_message["exit"]["cause"]["_tag"] == "Fail"
    error: dict[str, Any] = exit_message["exit"]["cause"]["error"]
    return error


def test_ping(service: SyncService) -> None:
    body = request("SyncHttpRpc.Ping", {"storeId": "s1"}, traceId="abc", spanId="def", sampled=True)
    assert call(service, body) == (
        200,
        [
            {
                "_tag": "Exit",
                "requestId": "7",
                "exit": {"_tag": "Success", "value": {"_tag": "SyncMessage.Pong"}},
            }
        ],
    )


def test_empty_store_pull_is_one_empty_nomore_chunk(service: SyncService) -> None:
    backend_id = service.store.backend_id("s1")
    status, messages = call(service, pull_body())
    assert status == 200
    assert messages == [
        {
            "_tag": "Chunk",
            "requestId": "7",
            "values": [{"batch": [], "pageInfo": {"_tag": "NoMore"}, "backendId": backend_id}],
        },
        {"_tag": "Exit", "requestId": "7", "exit": {"_tag": "Success", "value": None}},
    ]


def test_push_then_pull_exact_envelopes(service: SyncService) -> None:
    batch = [event(1), event(2, args={"nested": [1, "ü", None]})]
    assert call(service, push_body(batch)) == (
        200,
        [{"_tag": "Exit", "requestId": "7", "exit": {"_tag": "Success", "value": {}}}],
    )
    backend_id = service.store.backend_id("s1")
    status, messages = call(service, pull_body((backend_id, 1)))
    assert status == 200
    metadata = {"_tag": "Some", "value": {"_tag": "SyncMessage.SyncMetadata", "createdAt": CREATED_AT}}
    assert messages[0] == {
        "_tag": "Chunk",
        "requestId": "7",
        "values": [
            {
                "batch": [{"eventEncoded": batch[1], "metadata": metadata}],
                "pageInfo": {"_tag": "NoMore"},
                "backendId": backend_id,
            }
        ],
    }


def test_pull_pages_of_100_with_remaining_counts(service: SyncService) -> None:
    head = 0
    for _ in range(25):
        call(service, push_body([event(seq) for seq in range(head + 1, head + 11)]))
        head += 10
    _, messages = call(service, pull_body())
    chunks = [message["values"][0] for message in messages[:-1]]
    assert [len(chunk["batch"]) for chunk in chunks] == [100, 100, 50]
    assert [chunk["pageInfo"] for chunk in chunks] == [
        {"_tag": "MoreKnown", "remaining": 150},
        {"_tag": "MoreKnown", "remaining": 50},
        {"_tag": "NoMore"},
    ]
    seqs = [item["eventEncoded"]["seqNum"] for chunk in chunks for item in chunk["batch"]]
    assert seqs == list(range(1, 251))


def test_pull_chunks_stay_near_900_kb() -> None:
    service = SyncService(InMemoryEventStore(), clock=lambda: CREATED_AT)
    text = "x" * 200_000
    for seq in range(1, 11):
        call(service, push_body([event(seq, args={"text": text})]))
    response = handle_rpc(service, pull_body(), {})
    chunks = json.loads(response.body)[:-1]
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(json.dumps(chunk["values"][0]).encode()) <= 900_000 + 1_000


def test_pull_response_is_capped_and_still_ends_with_nomore() -> None:
    service = SyncService(InMemoryEventStore(), clock=lambda: CREATED_AT, pull_response_bytes=1_000_000)
    text = "y" * 300_000
    for seq in range(1, 8):
        call(service, push_body([event(seq, args={"text": text})]))
    response = handle_rpc(service, pull_body(), {})
    assert response.pull is not None
    assert response.pull.truncated
    chunks = [message["values"][0] for message in json.loads(response.body)[:-1]]
    seqs = [item["eventEncoded"]["seqNum"] for chunk in chunks for item in chunk["batch"]]
    assert seqs == [1, 2, 3, 4]
    assert chunks[-1]["pageInfo"] == {"_tag": "NoMore"}
    backend_id = service.store.backend_id("s1")
    rest = json.loads(handle_rpc(service, pull_body((backend_id, 4)), {}).body)[:-1]
    assert [item["eventEncoded"]["seqNum"] for m in rest for item in m["values"][0]["batch"]] == [5, 6, 7]


def test_stale_parent_gets_server_ahead_error(service: SyncService) -> None:
    call(service, push_body([event(1), event(2)]))
    status, messages = call(service, push_body([event(1, client="other") | {"clientId": "other"}]))
    assert status == 200
    assert failure(messages) == {"_tag": "ServerAheadError", "minimumExpectedNum": 2, "providedNum": 0}


def test_upstream_gap_push_is_accepted(service: SyncService) -> None:
    # The upstream conformance suite pushes seqNum 100 on parent 0.
    assert call(service, push_body([event(100, parent=0)]))[1][0]["exit"]["_tag"] == "Success"
    assert failure(call(service, push_body([event(1, parent=0)]))[1])["minimumExpectedNum"] == 100


def test_retried_push_is_acknowledged_once(service: SyncService) -> None:
    batch = [event(1), event(2)]
    call(service, push_body(batch))
    call(service, push_body([event(3)]))
    assert call(service, push_body(batch))[1][0]["exit"] == {"_tag": "Success", "value": {}}
    _, messages = call(service, pull_body())
    assert [item["eventEncoded"]["seqNum"] for item in messages[0]["values"][0]["batch"]] == [1, 2, 3]


def test_backend_id_mismatch_on_push_and_pull(service: SyncService) -> None:
    backend_id = service.store.backend_id("s1")
    assert failure(call(service, push_body([event(1)], backend_id="wrong"))[1]) == {
        "_tag": "BackendIdMismatchError",
        "expected": backend_id,
        "received": "wrong",
    }
    assert failure(call(service, pull_body(("wrong", 0)))[1]) == {
        "_tag": "BackendIdMismatchError",
        "expected": backend_id,
        "received": "wrong",
    }
    # nothing was written by the refused push
    assert call(service, pull_body())[1][0]["values"][0]["batch"] == []


def assert_invalid(
    service: SyncService, body: bytes, fragment: str, query: dict[str, str] | None = None
) -> None:
    status, messages = call(service, body, query)
    assert status == 200
    error = failure(messages)
    assert error["_tag"] == "UnknownError"
    assert error["cause"]["name"] == "InvalidRequestError"
    assert fragment in error["cause"]["message"], error["cause"]["message"]
    assert "nothing was written" in error["note"]
    assert service.store.head("s1") == 0


@pytest.mark.parametrize(
    ("batch", "fragment"),
    [
        ([], "batch: List should have at least 1 item"),
        ([event(seq) for seq in range(1, 102)], "batch: List should have at most 100 items"),
        ([event(1), event(3, parent=2)], "batch[1]: parentSeqNum 2 must equal the previous event's seqNum 1"),
        ([event(2), event(1, parent=2)], "batch[1]: seqNum 1 must be greater than parentSeqNum 2"),
        ([event(1, name="")], "batch.0.name: String should have at least 1 character"),
        ([event(1, clientId=7)], "batch.0.clientId: Input should be a valid string"),
        ([event(1, sessionId=None)], "batch.0.sessionId: Input should be a valid string"),
        ([event(1, seqNum="1")], "batch.0.seqNum: Input should be a valid integer"),
        ([event(1, seqNum=True)], "batch.0.seqNum: Input should be a valid integer"),
        ([event(1, seqNum=1.5)], "batch.0.seqNum: Input should be a valid integer"),
        ([event(1, parentSeqNum=-1)], "batch.0.parentSeqNum: Input should be greater than or equal to 0"),
        ([{"name": "x"}], "batch.0.seqNum: Field required"),
    ],
)
def test_invalid_push_batches_are_refused_readably(
    service: SyncService, batch: list[dict[str, Any]], fragment: str
) -> None:
    assert_invalid(service, push_body(batch), fragment)


def test_oversize_body_is_refused(service: SyncService) -> None:
    body = push_body([event(1, args={"text": "z" * 900_000})])
    assert_invalid(service, body, "the limit is 900000")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (request("SyncHttpRpc.Nope", {"storeId": "s1"}), "unknown RPC tag 'SyncHttpRpc.Nope'"),
        (request("SyncHttpRpc.Pull", {"storeId": "s1"}), "cursor: Field required"),
        (request("SyncHttpRpc.Pull", {"storeId": "s1", "cursor": {"_tag": "Maybe"}}), "cursor"),
        (
            request("SyncHttpRpc.Push", {"storeId": "s1", "batch": "no"}),
            "batch: Input should be a valid list",
        ),
        (request("SyncHttpRpc.Ping", "s1"), "Input should be a valid dictionary"),
        (request("SyncHttpRpc.Ping", {"storeId": ""}), "storeId: String should have at least 1 character"),
        (request("SyncHttpRpc.Ping", {"storeId": "s2"}), "differs from 's1' in the query parameter storeId"),
    ],
)
def test_invalid_payloads_are_refused_readably(service: SyncService, body: bytes, fragment: str) -> None:
    assert_invalid(service, body, fragment)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "must be one JSON object"),
        (b'{"_tag": "Ack", "id": "1"}', "_tag 'Request'"),
        (b'{"_tag": "Request", "id": 7, "tag": "SyncHttpRpc.Ping"}', "'id' of decimal digits"),
        (b'{"_tag": "Request", "id": "7"}', "string 'tag'"),
        (b"", "not valid JSON"),
    ],
)
def test_broken_envelopes_get_a_defect_and_400(service: SyncService, body: bytes, fragment: str) -> None:
    status, messages = call(service, body)
    assert status == 400
    assert messages[0]["_tag"] == "Defect"
    assert fragment in messages[0]["defect"]["message"]


def test_storage_failures_are_unknown_errors_not_exceptions() -> None:
    class BrokenStore(InMemoryEventStore):
        def backend_id(self, store_id: str) -> str:
            raise RuntimeError("disk on fire")

    service = SyncService(BrokenStore())
    error = failure(call(service, pull_body())[1])
    assert error["_tag"] == "UnknownError"
    assert error["cause"] == {"name": "UnknownError", "message": "internal error: RuntimeError"}


def test_a_body_nested_deeper_than_the_recursion_limit_is_a_defect(service: SyncService) -> None:
    status, messages = call(service, b"[" * 100_000 + b"]" * 100_000)
    assert status == 400
    assert "nested too deeply" in messages[0]["defect"]["message"]
