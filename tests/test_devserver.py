"""``stratasync dev`` end to end over HTTP: racing writers, CORS, limits, the CLI."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from stratasync.client import SyncHttpTransport
from stratasync.devserver import DevServer
from stratasync.protocol import ServerAheadError
from tests.devserver_process import running_dev_server


def todo(seq: int, parent: int, client: str) -> dict[str, Any]:
    return {
        "name": "v1.TodoCreated",
        "args": {"id": uuid.uuid4().hex, "text": f"from {client}"},
        "seqNum": seq,
        "parentSeqNum": parent,
        "clientId": client,
        "sessionId": "s",
    }


@pytest.fixture(params=["worker-processes", "in-process", "memory"])
def any_dev_server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The session's dev server (worker processes), or a ``stratasync dev --in-process`` or
    ``--memory``."""
    if request.param == "worker-processes":
        yield request.getfixturevalue("dev_server").url
        return
    with running_dev_server(f"--{request.param}") as (url, _):
        yield url


def test_eight_writers_race_on_the_same_parent_exactly_one_wins_each_round(any_dev_server_url: str) -> None:
    """In process too, where the handlers' conditional writes reach moto from threads of one
    process without a socket (each request still applied alone), and with the eventlog in memory."""
    url = any_dev_server_url
    writers, rounds = 8, 5
    store_id = f"race-{uuid.uuid4().hex[:8]}"
    barrier = threading.Barrier(writers)
    wins: dict[int, list[int]] = {}
    lock = threading.Lock()
    heads_seen_by_losers: list[tuple[int, int]] = []

    def writer(index: int) -> None:
        client = f"w{index}"
        with SyncHttpTransport(url, store_id) as transport:
            for round_number in range(rounds):
                barrier.wait()
                pages = transport.pull(None)
                head = max([event["seqNum"] for page in pages for event in page.events], default=0)
                batch = [todo(head + 1 + offset, head + offset, client) for offset in range(1 + index % 3)]
                barrier.wait()
                try:
                    transport.push(batch, pages[-1].backend_id)
                except ServerAheadError as refused:
                    heads_seen_by_losers.append((head, refused.minimum_expected_num))
                else:
                    with lock:
                        wins.setdefault(round_number, []).append(index)

    with ThreadPoolExecutor(writers) as pool:
        for future in [pool.submit(writer, index) for index in range(writers)]:
            future.result()
    assert [len(wins.get(round_number, [])) for round_number in range(rounds)] == [1] * rounds
    assert all(reported > seen for seen, reported in heads_seen_by_losers)
    with SyncHttpTransport(url, store_id) as transport:
        events = [event for page in transport.pull(None) for event in page.events]
    assert [event["seqNum"] for event in events] == list(range(1, len(events) + 1))
    assert [event["parentSeqNum"] for event in events] == list(range(len(events)))
    assert len({event["args"]["id"] for event in events}) == len(events)


def test_cors_preflight_over_http(dev_server: DevServer) -> None:
    response = httpx.options(
        dev_server.url,
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-livestore-store-id,authorization",
        },
    )
    assert response.status_code == 204
    assert "x-livestore-store-id" in response.headers["access-control-allow-headers"].lower()


def test_body_over_the_gateway_limit_is_413(dev_server: DevServer) -> None:
    response = httpx.post(dev_server.url, content=b"x" * (10 * 1024 * 1024 + 1))
    assert response.status_code == 413


def test_oversize_push_is_a_protocol_error_not_a_500(dev_server: DevServer) -> None:
    body = {
        "_tag": "Request",
        "id": "1",
        "tag": "SyncHttpRpc.Push",
        "payload": {
            "storeId": "big",
            "batch": [todo(1, 0, "c") | {"args": "x" * 950_000}],
            "backendId": {"_tag": "None"},
        },
        "headers": [],
    }
    response = httpx.post(dev_server.url + "?storeId=big", json=body)
    assert response.status_code == 200
    error = response.json()[0]["exit"]["cause"]["error"]
    assert error["_tag"] == "UnknownError"
    assert "the limit is 900000" in error["cause"]["message"]


def test_chunked_request_body_is_read(dev_server: DevServer) -> None:
    body = json.dumps(
        {"_tag": "Request", "id": "3", "tag": "SyncHttpRpc.Ping", "payload": {"storeId": "c"}}
    ).encode()
    response = httpx.post(dev_server.url, content=iter([body[:10], body[10:]]))
    assert response.json()[0]["exit"]["value"] == {"_tag": "SyncMessage.Pong"}


def test_cli_prints_where_it_listens_and_what_storage_it_uses() -> None:
    with running_dev_server() as (url, lines):
        text = "".join(lines)
        assert f"listening on {url}" in text
        assert "storage: embedded moto" in text
        with SyncHttpTransport(url, "cli") as transport:
            transport.ping()


@pytest.mark.dynamodb_local
def test_cli_with_a_dynamodb_endpoint(dynamodb_local_endpoint: str) -> None:
    with running_dev_server("--dynamodb-endpoint", dynamodb_local_endpoint, "--table", "cli-table") as (
        url,
        lines,
    ):
        assert f"storage: DynamoDB at {dynamodb_local_endpoint}, table 'cli-table'" in "".join(lines)
        with SyncHttpTransport(url, "cli") as transport:
            transport.push([todo(1, 0, "c")], None)
            assert [event["seqNum"] for page in transport.pull(None) for event in page.events] == [1]


def test_cli_reports_a_busy_port() -> None:
    with running_dev_server() as (url, _):
        port = url.rstrip("/").rsplit(":", 1)[1]
        import subprocess

        from tests.devserver_process import STRATASYNC

        completed = subprocess.run(
            [str(STRATASYNC), "dev", "--port", port], capture_output=True, text=True, timeout=120, check=False
        )
        assert completed.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in completed.stderr


def test_the_lambda_invoke_api_is_not_on_the_public_port(dev_server: DevServer) -> None:
    """Issue 9 #10: anyone who could reach the sync port could run the archiver on any store."""
    for name in ("stratasync-archive-dev", dev_server.archive_function):
        response = httpx.post(
            f"{dev_server.url}2015-03-31/functions/{name}/invocations",
            content=json.dumps({"storeId": "victim"}),
            headers={"x-amz-invocation-type": "RequestResponse"},
            timeout=30,
        )
        assert response.status_code == 404
        assert "sealed" not in response.text
    private = httpx.post(
        f"{dev_server.lambda_api_url}/2015-03-31/functions/stratasync-archive-dev/invocations",
        content=b"{}",
        timeout=30,
    )
    assert private.status_code == 404  # a guessed name does not work on the private port either
    assert dev_server.lambda_api_url.startswith("http://127.0.0.1:")
    assert dev_server.lambda_api_url.rstrip("/") != dev_server.url.rstrip("/")
