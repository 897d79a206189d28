"""Exact sync-cf envelopes through the transport-neutral endpoint (in-memory storage)."""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

import pytest

from stratasync.core import RpcResponse, SyncService, handle_rpc
from stratasync.storage.memory import InMemoryStorage

CREATED_AT = "2026-11-23T12:00:00.000Z"


@pytest.fixture
def service() -> SyncService:
    return SyncService(InMemoryStorage(), clock=lambda: CREATED_AT)


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
    service = SyncService(InMemoryStorage(), clock=lambda: CREATED_AT)
    text = "x" * 200_000
    for seq in range(1, 11):
        call(service, push_body([event(seq, args={"text": text})]))
    response = handle_rpc(service, pull_body(), {})
    chunks = json.loads(response.body)[:-1]
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(json.dumps(chunk["values"][0]).encode()) <= 900_000 + 1_000


def _pulled(response: RpcResponse) -> tuple[list[int], list[dict[str, Any]]]:
    body = gzip.decompress(response.body) if response.content_encoding == "gzip" else response.body
    pages = [message["values"][0] for message in json.loads(body)[:-1]]
    return [item["eventEncoded"]["seqNum"] for page in pages for item in page["batch"]], pages


def test_a_capped_pull_response_never_claims_it_is_complete() -> None:
    """Issue 9 #8: a response cut short by the size cap ends with MoreKnown and the exact count."""
    service = SyncService(InMemoryStorage(), clock=lambda: CREATED_AT, pull_response_bytes=1_000_000)
    for seq in range(1, 8):
        call(service, push_body([event(seq, args={"text": os.urandom(150_000).hex()})]))
    response = handle_rpc(service, pull_body(), {})
    assert response.pull is not None
    assert response.pull.truncated
    seqs, pages = _pulled(response)
    assert seqs == [1, 2]
    assert pages[-1]["pageInfo"] == {"_tag": "MoreKnown", "remaining": 5}
    assert len(response.body) <= 1_000_000
    backend_id = service.store.backend_id("s1")
    seqs, pages = _pulled(handle_rpc(service, pull_body((backend_id, 2)), {}))
    assert seqs == [3, 4]
    assert pages[-1]["pageInfo"] == {"_tag": "MoreKnown", "remaining": 3}


def test_a_gzip_pull_is_capped_by_its_compressed_size_and_carries_far_more() -> None:
    """LiveStore's one-request non-live pull: 60 events of 120 KB (7.2 MB of JSON) in one answer."""
    service = SyncService(InMemoryStorage(), clock=lambda: CREATED_AT)
    text = "x" * 120_000
    for first in range(1, 61, 6):
        call(service, push_body([event(seq, args={"text": text}) for seq in range(first, first + 6)]))
    plain = handle_rpc(service, pull_body(), {})
    assert plain.content_encoding is None
    assert plain.pull is not None
    assert plain.pull.truncated  # 7.2 MB of text does not fit in 4.5 MB
    compressed = handle_rpc(service, pull_body(), {}, {"accept-encoding": "gzip, deflate, br"})
    assert compressed.content_encoding == "gzip"
    seqs, pages = _pulled(compressed)
    assert seqs == list(range(1, 61))
    assert pages[-1]["pageInfo"] == {"_tag": "NoMore"}
    assert all(len(page["batch"]) <= 100 for page in pages)
    assert len(compressed.body) < 200_000


@pytest.mark.parametrize(
    ("header", "gzipped"),
    [
        ("gzip", True),
        ("deflate, gzip;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("br", False),
        ("", False),
    ],
)
def test_gzip_only_when_the_request_accepts_it(service: SyncService, header: str, gzipped: bool) -> None:
    call(service, push_body([event(1)]))
    response = handle_rpc(service, pull_body(), {}, {"accept-encoding": header})
    assert (response.content_encoding == "gzip") is gzipped
    assert _pulled(response)[0] == [1]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "1" * 400])
def test_numbers_json_cannot_hold_are_refused_and_nothing_is_written(
    service: SyncService, value: str
) -> None:
    """Issue 9 #4: such a push used to be stored and served back as NaN/Infinity, breaking every pull."""
    body = push_body([event(1, args={"n": 0})]).replace(b'"n": 0', b'"n": ' + value.encode())
    assert value.encode() in body
    status, messages = call(service, body)
    assert status == 200
    error = failure(messages)
    assert error["cause"]["name"] == "InvalidRequestError"
    assert "not JSON" in error["cause"]["message"]
    assert service.store.head("s1") == 0
    status, messages = call(service, pull_body())
    assert json.loads(json.dumps(messages)) == messages  # the log stays readable JSON


@pytest.mark.parametrize(
    ("text", "served"),
    [
        ("\\ud83d", b'"\\ud83d"'),  # half an emoji, as JSON.stringify writes it
        ("\\ude00", b'"\\ude00"'),
        ("a\\ud83d\\ud83db", b'"a\\ud83d\\ud83db"'),
        ("\\ude00\\ud83d", b'"\\ude00\\ud83d"'),  # a pair in the wrong order is two lone halves
        ("\\ud83d\\ude00", '"\U0001f600"'.encode()),  # a whole pair is the emoji itself
        ("\\u2028\\u0000 \\u00e9", '"\u2028\\u0000 \u00e9"'.encode()),
    ],
)
def test_lone_surrogates_are_accepted_and_served_back_byte_faithfully(
    service: SyncService, text: str, served: bytes
) -> None:
    """Issue 9 #5: half an emoji (JS allows it, JSON.stringify escapes it) used to be an UnknownError."""
    body = push_body([event(1, args={"text": "PLACEHOLDER"})]).replace(b"PLACEHOLDER", text.encode())
    _, messages = call(service, body)
    assert messages[0]["exit"]["_tag"] == "Success", messages
    response = handle_rpc(service, pull_body(), {})
    response.body.decode()  # valid UTF-8
    assert b'"text":' + served + b"}" in response.body


def test_a_seqnum_jump_that_would_leave_no_room_is_refused(service: SyncService) -> None:
    _, messages = call(service, push_body([event(2**53 - 1, parent=0)]))
    error = failure(messages)
    assert error["cause"]["name"] == "InvalidRequestError"
    assert "1,000,000" in error["cause"]["message"]
    assert service.store.head("s1") == 0
    assert call(service, push_body([event(1_000_000, parent=0)]))[1][0]["exit"]["_tag"] == "Success"
    assert call(service, push_body([event(1_000_001, parent=1_000_000)]))[1][0]["exit"]["_tag"] == "Success"


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
        (b'{"_tag": "Request", "id": 7, "tag": "SyncHttpRpc.Ping"}', "decimal digits as a string"),
        (b'{"_tag": "Request", "id": "\\u00b2", "tag": "SyncHttpRpc.Ping"}', "decimal digits as a string"),
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
    class BrokenStore(InMemoryStorage):
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
