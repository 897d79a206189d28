"""moto's DynamoDB stream as the dev server reads it: it stays readable after a cancelled transaction
(:func:`stratasync.devserver.embedded_moto.keep_stream_shards_on_rollback`), and the stream
poller reads a record as soon as moto writes it."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

from stratasync.devserver.embedded_moto import EmbeddedMoto
from stratasync.devserver.streams import StreamPoller
from stratasync.storage.aws import client_config
from stratasync.storage.dynamodb import create_table, make_client
from stratasync.storage.dynamodb_items import batch_sk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef


def test_a_cancelled_transaction_leaves_the_stream_readable(moto_endpoint: str) -> None:
    dynamodb = make_client(moto_endpoint)
    table = f"streams-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb, table, stream_view_type="KEYS_ONLY")
    streams = boto3.client("dynamodbstreams", endpoint_url=moto_endpoint, config=client_config())
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]

    def put(sk: str) -> TransactWriteItemTypeDef:
        return {"Put": {"TableName": table, "Item": {"pk": {"S": "p"}, "sk": {"S": sk}}}}

    dynamodb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": "one"}})
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(
            TransactItems=[
                put("phantom"),
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "p"}, "sk": {"S": "one"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": "two"}})
    seen: list[str] = []
    for _ in range(5):
        response = streams.get_records(ShardIterator=iterator)
        seen += [record["dynamodb"]["Keys"]["sk"]["S"] for record in response["Records"]]
        iterator = response["NextShardIterator"]
    assert seen == ["one", "two"]  # nothing of the cancelled transaction, and the later write


def _commit_record(dynamodb: Any, table: str, parent: int) -> None:
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "s"}, "sk": {"S": batch_sk(parent)}})


@pytest.mark.parametrize("woken", [True, False])
def test_the_dev_servers_stream_poller_reads_a_record_when_moto_writes_it(woken: bool) -> None:
    """With moto's wake-up the poller reads at once, though its safety poll is 60 s away; without
    it (an external DynamoDB) it polls every ``poll_interval``."""
    delivered: list[list[str]] = []
    arrived = threading.Event()

    def invoke(event: dict[str, Any]) -> Future[Any]:
        delivered.append([record["dynamodb"]["Keys"]["sk"]["S"] for record in event["Records"]])
        arrived.set()
        done: Future[Any] = Future()
        done.set_result({})
        return done

    with EmbeddedMoto() as moto:
        dynamodb = make_client(moto.endpoint)
        table = f"poller-{uuid.uuid4().hex[:8]}"
        create_table(dynamodb, table, stream_view_type="KEYS_ONLY")
        wake = threading.Event() if woken else None
        stop_waking = moto.on_stream_record(wake.set) if wake is not None else (lambda: None)
        poller = StreamPoller(
            moto.endpoint, table, invoke, poll_interval=0.05, idle_interval=60.0, wake=wake
        ).start()
        try:
            time.sleep(0.5)  # the poller is asleep now
            _commit_record(dynamodb, table, 0)
            dynamodb.put_item(TableName=table, Item={"pk": {"S": "s"}, "sk": {"S": "meta"}})  # filtered
            assert arrived.wait(30)
            _commit_record(dynamodb, table, 3)
            deadline = time.monotonic() + 30
            while sum(len(batch) for batch in delivered) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            poller.stop()
            stop_waking()
    assert [sk for batch in delivered for sk in batch] == [batch_sk(0), batch_sk(3)]


def test_a_query_reads_its_partition_as_dynamodb_does(moto_endpoint: str) -> None:
    """:func:`~stratasync.devserver.moto_speedups.query_one_partition`: the same answers (order,
    range conditions, paging, descending) from a table of many partitions."""
    dynamodb = make_client(moto_endpoint)
    table = f"partitions-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb, table)
    for partition in ("a", "b", "c"):
        for number in range(30):
            dynamodb.put_item(TableName=table, Item={"pk": {"S": partition}, "sk": {"S": f"x#{number:03d}"}})

    def query(**kwargs: Any) -> list[str]:
        keys: list[str] = []
        request: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": {":p": {"S": "b"}, ":s": {"S": "x#01"}},
            **kwargs,
        }
        while True:
            response = dynamodb.query(**request)
            keys += [f"{item['pk']['S']}/{item['sk']['S']}" for item in response["Items"]]
            if "LastEvaluatedKey" not in response:
                return keys
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    expected = [f"b/x#{number:03d}" for number in range(10, 20)]
    assert query() == expected
    assert query(Limit=3) == expected
    assert query(ScanIndexForward=False, Limit=4) == expected[::-1]
    assert query(ExpressionAttributeValues={":p": {"S": "nope"}, ":s": {"S": "x"}}) == []


def test_moto_lists_its_modules_once_and_the_same(moto_endpoint: str) -> None:
    import moto.backends as backends

    from stratasync.devserver.moto_speedups import list_moto_modules_once

    list_moto_modules_once()  # the embedded moto did it already: a second call changes nothing
    listed = backends.list_of_moto_modules()
    assert getattr(backends.list_of_moto_modules, "_listed_once", False)
    assert {"dynamodb", "dynamodbstreams", "s3"} <= set(listed)
    assert listed is backends.list_of_moto_modules()
