"""The archive end to end: ``stratasync dev`` seals segments through the push path (the sync
Lambda invokes the archiver Lambda), pulls stay seamless, ``GET /archive`` hands out presigned
URLs, ``stratasync archive`` seals on demand; and the manifest endpoint's refusals."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from stratasync.auth import AccessControl, TokenVerifier
from stratasync.cli import main
from stratasync.core.manifest import handle_manifest
from stratasync.core.service import SyncService
from stratasync.devserver import DevServer
from stratasync.storage.memory import InMemorySegmentStorage, InMemoryStorage
from stratasync.storage.tiered import TieredEventLog
from tests.devserver_process import running_dev_server


def push(url: str, store_id: str, parent: int, count: int) -> list[dict[str, Any]]:
    events = [
        {
            "name": "v1.TodoCreated",
            "args": {"id": uuid.uuid4().hex, "text": f"todo {seq}"},
            "seqNum": seq,
            "parentSeqNum": seq - 1,
            "clientId": "c1",
            "sessionId": "s1",
        }
        for seq in range(parent + 1, parent + count + 1)
    ]
    request = {
        "_tag": "Request",
        "id": "1",
        "tag": "SyncHttpRpc.Push",
        "headers": [],
        "payload": {"storeId": store_id, "batch": events, "backendId": {"_tag": "None"}},
    }
    answer = httpx.post(f"{url}?storeId={store_id}&transport=http", json=request, timeout=30).json()
    assert answer[-1]["exit"]["_tag"] == "Success", answer
    return events


def pull(url: str, store_id: str, cursor: int, backend_id: str | None) -> list[dict[str, Any]]:
    """Every page of one pull response (PullResponse values)."""
    option: dict[str, Any] = {"_tag": "None"}
    if backend_id is not None:
        option = {"_tag": "Some", "value": {"backendId": backend_id, "eventSequenceNumber": cursor}}
    request = {
        "_tag": "Request",
        "id": "2",
        "tag": "SyncHttpRpc.Pull",
        "headers": [],
        "payload": {"storeId": store_id, "cursor": option},
    }
    answer = httpx.post(f"{url}?storeId={store_id}&transport=http", json=request, timeout=30).json()
    assert answer[-1]["exit"]["_tag"] == "Success", answer
    return [value for message in answer if message["_tag"] == "Chunk" for value in message["values"]]


def assert_seamless(url: str, store_id: str, events: list[dict[str, Any]]) -> None:
    backend_id = pull(url, store_id, 0, None)[0]["backendId"]
    for cursor in range(0, len(events) + 1):
        pages = pull(url, store_id, cursor, backend_id if cursor else None)
        got = [item["eventEncoded"] for page in pages for item in page["batch"]]
        assert got == events[cursor:], f"cursor {cursor}"
        remaining = len(got)
        for page in pages:
            remaining -= len(page["batch"])
            expected = {"_tag": "NoMore"} if remaining == 0 else {"_tag": "MoreKnown", "remaining": remaining}
            assert page["pageInfo"] == expected


def wait_for(condition: Any, what: str, seconds: float = 60) -> None:
    """Poll until ``condition()`` holds (the archiver runs asynchronously, as in AWS)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


def manifest_of(url: str, store_id: str, after: int = 0) -> dict[str, Any]:
    response = httpx.get(f"{url}archive", params={"storeId": store_id, "after": after}, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    "mode", [(), ("--in-process",), ("--memory",)], ids=["worker-processes", "in-process", "memory"]
)
def test_dev_server_archives_through_the_push_path_and_pulls_stay_seamless(mode: tuple[str, ...]) -> None:
    """In process too: the archiver's trigger goes through the Lambda ``Invoke`` API and its
    segments to the embedded moto's S3 without a socket; the presigned GET still over HTTP. With
    ``--memory`` the hot tier it retires is the in-memory eventlog."""
    store_id = f"dev-archive-{uuid.uuid4().hex[:6]}"
    with running_dev_server("--segment-events", "10", *mode) as (url, lines):
        events: list[dict[str, Any]] = []
        for _ in range(20):
            events += push(url, store_id, len(events), 3)
        wait_for(lambda: manifest_of(url, store_id)["pullFrom"] >= 48, "four sealed segments")
        sealed = [line for line in lines if "sealed segment" in line and repr(store_id) in line]
        assert len(sealed) >= 4, "".join(lines)
        assert_seamless(url, store_id, events)
        manifest = manifest_of(url, store_id)
        assert manifest["format"] == "stratasync-segment-1"
        first = manifest["segments"][0]
        assert (first["parentSeqNum"], first["firstSeqNum"], first["lastSeqNum"]) == (0, 1, 12)
        body = httpx.get(first["url"], timeout=30).content
        assert hashlib.sha256(body).hexdigest() == first["sha256"]
        assert len(body) == first["size"]
        lines_of = gzip.decompress(body).decode().split("\n")
        assert [json.loads(line.split(" ", 2)[2]) for line in lines_of] == events[:12]
        later = manifest_of(url, store_id, after=30)
        assert later["segments"][0]["firstSeqNum"] == 25
        assert later["pullFrom"] == manifest["pullFrom"]


def test_archive_command_seals_on_demand(dev_server: DevServer, capsys: pytest.CaptureFixture[str]) -> None:
    store_id = f"cli-archive-{uuid.uuid4().hex[:6]}"
    events: list[dict[str, Any]] = []
    for _ in range(8):
        events += push(dev_server.url, store_id, len(events), 4)
    assert manifest_of(dev_server.url, store_id)["segments"] == []  # 10,000 events per segment there
    endpoints = [
        "--dynamodb-endpoint",
        str(dev_server.dynamodb_endpoint),
        "--s3-endpoint",
        str(dev_server.s3_endpoint),
    ]
    args = ["archive", "--store", store_id, *endpoints, "--segment-events", "10", "--json"]
    assert main(args) == 0
    output = capsys.readouterr().out
    assert output.count("sealed segment of store") == 2, output
    assert json.loads(output.splitlines()[-1])["stores"][0]["sealed"][1]["lastSeqNum"] == 24
    assert main(args) == 0  # again: nothing more is sealable, nothing changes
    assert "0 segment(s) sealed" in capsys.readouterr().out
    assert [s["lastSeqNum"] for s in manifest_of(dev_server.url, store_id)["segments"]] == [12, 24]
    assert_seamless(dev_server.url, store_id, events)


def test_manifest_refusals() -> None:
    store = InMemoryStorage()
    service = SyncService(store)
    segments = TieredEventLog(store, InMemorySegmentStorage())
    assert handle_manifest(service, None, {"storeId": "s"}, {}, expires_in=60)[0] == 404
    assert handle_manifest(service, segments, {}, {}, expires_in=60)[0] == 400
    assert handle_manifest(service, segments, {"storeId": "s\x01"}, {}, expires_in=60)[0] == 400
    assert handle_manifest(service, segments, {"storeId": "s", "after": "-1"}, {}, expires_in=60)[0] == 400
    # Issue 9 #6: "²".isdigit() is true and int() then raised (HTTP 500). Any input gets a 4xx.
    for after in ("\u00b2", "\u0663", "1\u00b2", "\uff11", " 1", "1_0", "+1", "1" * 17, "", "\ud83d"):
        assert (
            handle_manifest(service, segments, {"storeId": "s", "after": after}, {}, expires_in=60)[0] == 400
        )
    status, body = handle_manifest(service, segments, {"storeId": "s"}, {}, expires_in=60)
    assert (status, body["segments"], body["pullFrom"]) == (200, [], 0)
    guarded = SyncService(store, access=AccessControl(TokenVerifier(hs256_secret="k" * 32)))
    assert handle_manifest(guarded, segments, {"storeId": "s"}, {}, expires_in=60)[0] == 401
    other = jwt.encode({"stores": ["other"], "exp": int(time.time()) + 60}, "k" * 32, algorithm="HS256")
    bearer = {"authorization": f"Bearer {other}"}
    assert handle_manifest(guarded, segments, {"storeId": "s"}, bearer, expires_in=60)[0] == 403
    mine = jwt.encode({"stores": ["s"], "exp": int(time.time()) + 60}, "k" * 32, algorithm="HS256")
    bearer = {"authorization": f"Bearer {mine}"}
    assert handle_manifest(guarded, segments, {"storeId": "s"}, bearer, expires_in=60)[0] == 200
