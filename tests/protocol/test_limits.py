"""Each limit: the largest allowed request passes, one byte or one item more is refused, nothing written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stratasync.core import SyncService, handle_rpc
from stratasync.core.limits import Limits
from stratasync.storage.memory import InMemoryStorage
from tests.protocol.test_envelopes import event, push_body, request


def answer(service: SyncService, body: bytes, store: str = "s1") -> dict[str, Any]:
    exit_message = json.loads(handle_rpc(service, body, {"storeId": store}).body)[-1]["exit"]
    result: dict[str, Any] = exit_message
    return result


def refused(service: SyncService, body: bytes, fragment: str, store: str = "s1") -> None:
    exit_message = answer(service, body, store)
    assert exit_message["_tag"] == "Failure", exit_message
    error = exit_message["cause"]["error"]
    assert error["cause"]["name"] == "InvalidRequestError"
    assert fragment in error["cause"]["message"], error["cause"]["message"]
    assert service.store.head(store) == 0


def accepted(service: SyncService, body: bytes, store: str = "s1") -> None:
    assert answer(service, body, store)["_tag"] == "Success"


def fresh(**limits: int) -> SyncService:
    return SyncService(InMemoryStorage(), limits=Limits(**limits))


def padded_push(total_bytes: int) -> bytes:
    """A one-event push body of exactly ``total_bytes`` bytes."""
    base = push_body([event(1, args={"text": ""})])
    return push_body([event(1, args={"text": "x" * (total_bytes - len(base))})])


def test_body_size_limit() -> None:
    assert len(padded_push(900_000)) == 900_000
    accepted(fresh(), padded_push(900_000))
    refused(fresh(), padded_push(900_001), "request body is 900001 bytes; the limit is 900000")


def test_events_per_push_limit() -> None:
    accepted(fresh(max_events_per_push=10), push_body([event(seq) for seq in range(1, 11)]))
    refused(
        fresh(max_events_per_push=10),
        push_body([event(seq) for seq in range(1, 12)]),
        "batch has 11 events; the limit is 10",
    )
    refused(fresh(), push_body([event(seq) for seq in range(1, 102)]), "List should have at most 100 items")


def one_event_of(size: int) -> dict[str, Any]:
    base = len(json.dumps(event(1, args={"text": ""}), separators=(",", ":")))
    return event(1, args={"text": "y" * (size - base)})


def test_event_size_limit() -> None:
    accepted(fresh(max_event_bytes=1_000), push_body([one_event_of(1_000)]))
    refused(
        fresh(max_event_bytes=1_000),
        push_body([one_event_of(1_001)]),
        "batch[0]: event is 1001 bytes encoded; the limit is 1000",
    )


def test_event_name_length_limit() -> None:
    accepted(fresh(), push_body([event(1, name="n" * 128)]))
    refused(
        fresh(),
        push_body([event(1, name="n" * 129)]),
        "batch[0]: event name is 129 characters; the limit is 128",
    )


def test_store_id_length_limit() -> None:
    longest, too_long = "s" * 128, "s" * 129
    accepted(fresh(), request("SyncHttpRpc.Ping", {"storeId": longest}), store=longest)
    refused(
        fresh(),
        request("SyncHttpRpc.Ping", {"storeId": too_long}),
        "storeId is 129 characters; the limit is 128",
        store=too_long,
    )


@pytest.mark.parametrize("store_id", ["a/b", "-leading", "has space", "tab\there", "ünï"])
def test_store_id_format(store_id: str) -> None:
    refused(
        fresh(),
        request("SyncHttpRpc.Ping", {"storeId": store_id}),
        "storeId may hold letters",
        store=store_id,
    )


def test_limits_cannot_exceed_the_protocol() -> None:
    with pytest.raises(ValueError, match="max_events_per_push"):
        Limits(max_events_per_push=101)
    with pytest.raises(ValueError, match="max_request_bytes"):
        Limits(max_request_bytes=900_001)
