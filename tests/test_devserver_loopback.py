"""The dev server's in-process mode: boto3 calls to its own endpoints served without a socket
(:mod:`stratasync.devserver.loopback`), and an in-process ``DevServer`` that gives back what it
changed in the process when it stops."""

from __future__ import annotations

import io
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from stratasync.client import SyncHttpTransport
from stratasync.devserver import DevServer, DevServerConfig
from stratasync.devserver.embedded_moto import EmbeddedMoto
from stratasync.devserver.loopback import AsgiRoute, serve_in_process, wsgi_route
from stratasync.storage.dynamodb import create_table, make_client
from stratasync.storage.s3 import make_s3_client


@pytest.fixture
def moto_in_process() -> Iterator[tuple[EmbeddedMoto, list[int]]]:
    """An embedded moto whose port is also served in process; the list counts the requests the
    in-process route answered."""
    with EmbeddedMoto() as moto:
        assert moto.app is not None
        served: list[int] = []
        app = moto.app

        def counting_app(environ: dict[str, Any], start_response: Any) -> Any:
            served.append(1)
            return app(environ, start_response)

        stop = serve_in_process(moto.endpoint, wsgi_route(counting_app))
        try:
            yield moto, served
        finally:
            stop()


def test_dynamodb_calls_are_answered_in_process_as_over_the_socket(
    moto_in_process: tuple[EmbeddedMoto, list[int]],
) -> None:
    moto, served = moto_in_process
    client = make_client(moto.endpoint)
    create_table(client, "loopback")
    client.put_item(TableName="loopback", Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "v": {"S": "é\u2028"}})
    with pytest.raises(ClientError) as refused:
        client.put_item(
            TableName="loopback",
            Item={"pk": {"S": "a"}, "sk": {"S": "1"}},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    existing: Any = refused.value.response
    assert existing["Item"]["v"] == {"S": "é\u2028"}  # the existing item comes back
    assert served, "the calls went over the socket"
    in_process = client.get_item(TableName="loopback", Key={"pk": {"S": "a"}, "sk": {"S": "1"}})["Item"]
    # the same table over the socket: a session made before the route is not one of ours...
    over_socket = boto3.session.Session().client(
        "dynamodb", endpoint_url=moto.endpoint.replace("127.0.0.1", "localhost"), region_name="us-east-1"
    )
    key = {"pk": {"S": "a"}, "sk": {"S": "1"}}
    assert over_socket.get_item(TableName="loopback", Key=key)["Item"] == in_process


def test_conditional_writes_from_threads_stay_atomic(moto_in_process: tuple[EmbeddedMoto, list[int]]) -> None:
    moto, _ = moto_in_process
    client = make_client(moto.endpoint)
    create_table(client, "race")
    barrier = threading.Barrier(8)

    def put(index: int) -> str:
        barrier.wait()
        try:
            client.put_item(
                TableName="race",
                Item={"pk": {"S": "store"}, "sk": {"S": "b#1"}, "w": {"N": str(index)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            return str(error.response["Error"]["Code"])
        return "won"

    for _ in range(5):
        client.delete_item(TableName="race", Key={"pk": {"S": "store"}, "sk": {"S": "b#1"}})
        with ThreadPoolExecutor(8) as pool:
            outcomes = sorted(pool.map(put, range(8)))
        assert outcomes == ["ConditionalCheckFailedException"] * 7 + ["won"]


def test_s3_bodies_in_process(moto_in_process: tuple[EmbeddedMoto, list[int]]) -> None:
    """An upload from a file object, a streamed download, a key that needs quoting, a 404."""
    moto, served = moto_in_process
    s3 = make_s3_client(moto.endpoint)
    s3.create_bucket(Bucket="loopback")
    data = os.urandom(300_000)
    key = "stores/a b+c/ü%2F.gz"
    s3.upload_fileobj(io.BytesIO(data), "loopback", key)
    body = s3.get_object(Bucket="loopback", Key=key)["Body"]
    assert b"".join(iter(lambda: body.read(65_536), b"")) == data
    assert [item["Key"] for item in s3.list_objects_v2(Bucket="loopback")["Contents"]] == [key]
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket="loopback", Key="nope")
    assert missing.value.response["Error"]["Code"] == "404"
    assert len(served) >= 4


def test_only_the_served_endpoint_is_taken_and_stop_gives_it_back() -> None:
    """A port whose number starts with the served one's is someone else's; after ``stop`` the
    calls go over the socket again."""
    with EmbeddedMoto() as moto:
        assert moto.app is not None
        served: list[str] = []

        def route(method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Any:
            served.append(url)
            return 500, [], b"{}"

        port = int(moto.endpoint.rsplit(":", 1)[1])
        shorter = f"http://127.0.0.1:{str(port)[:-1]}"  # a prefix of the endpoint, not the endpoint
        stop = serve_in_process(shorter, route)
        try:
            client = make_client(moto.endpoint)
            create_table(client, "prefix")  # over the socket: the route is not this endpoint's
            assert served == []
        finally:
            stop()
        stop = serve_in_process(moto.endpoint, wsgi_route(moto.app))
        stop()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the port still serves
        assert make_client(moto.endpoint).describe_table(TableName="prefix")["Table"]["TableName"] == "prefix"


def test_an_asgi_app_answers_in_process_on_one_loop_until_closed() -> None:
    seen: list[tuple[str, str, bytes, str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        seen.append((scope["method"], scope["path"], body, threading.current_thread().name))
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-echo", b"yes")]})
        await send({"type": "http.response.body", "body": body[::-1]})

    route = AsgiRoute(app)
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda n: route("POST", f"http://127.0.0.1:9/a%20b/{n}", [], b"abc"), range(8))
        )
    assert all(answer == (201, [("x-echo", "yes")], b"cba") for answer in answers)
    assert {path for _, path, _, _ in seen} == {f"/a b/{n}" for n in range(8)}
    assert {thread for *_, thread in seen} == {"loopback-asgi"}  # one loop for every caller
    route.close()
    assert not any(thread.name == "loopback-asgi" for thread in threading.enumerate())


def test_a_route_that_fails_answers_500_as_a_server_would() -> None:
    """The caller gets the HTTP error its client would get from a server that failed (here
    botocore's ``ClientError``), not the route's exception."""

    def broken(method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Any:
        raise RuntimeError("the app broke")

    stop = serve_in_process("http://127.0.0.1:9", broken)
    try:
        client = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url="http://127.0.0.1:9/stage",
            region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1}),
        )
        with pytest.raises(ClientError) as failed:
            client.post_to_connection(ConnectionId="abc", Data=b"x")
        assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    finally:
        stop()


def _event(seq: int) -> dict[str, Any]:
    return {
        "name": "v1.TodoCreated",
        "args": {"id": uuid.uuid4().hex, "text": f"todo {seq}"},
        "seqNum": seq,
        "parentSeqNum": seq - 1,
        "clientId": "c",
        "sessionId": "s",
    }


@pytest.mark.slow
def test_an_in_process_dev_server_serves_and_gives_back_what_it_changed() -> None:
    before = dict(os.environ)
    server = DevServer(DevServerConfig(port=0, workers=2, in_process=True), out=open(os.devnull, "w"))  # noqa: SIM115
    with server:
        assert os.environ["STRATASYNC_TABLE_NAME"] == "stratasync"
        with pytest.raises(RuntimeError, match="already runs in this process"):
            DevServer(DevServerConfig(port=0, in_process=True), out=open(os.devnull, "w")).start()  # noqa: SIM115
        store_id = f"in-process-{uuid.uuid4().hex[:6]}"
        with SyncHttpTransport(server.url, store_id) as transport:
            transport.push([_event(1), _event(2)], None)
            pulled = [event["seqNum"] for page in transport.pull(None) for event in page.events]
        assert pulled == [1, 2]
    from stratasync.handlers import wiring

    assert dict(os.environ) == before
    assert wiring.get_backend.cache_info().currsize == 0
    assert not any(thread.name == "loopback-asgi" for thread in threading.enumerate())
    # and another one may start now (moto's state is the process's: the store is still there)
    config = DevServerConfig(port=0, in_process=True)
    with (
        DevServer(config, out=open(os.devnull, "w")) as again,
        SyncHttpTransport(again.url, store_id) as transport,
    ):
        transport.push([_event(3)], None)
        assert [event["seqNum"] for page in transport.pull(None) for event in page.events] == [1, 2, 3]
    assert dict(os.environ) == before
