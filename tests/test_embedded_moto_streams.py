"""moto's DynamoDB stream stays readable after a cancelled transaction (the dev server's fan-out
reads it: see :func:`stratasync.devserver.embedded_moto.keep_stream_shards_on_rollback`)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.exceptions import ClientError

from stratasync.storage.aws import client_config
from stratasync.storage.dynamodb import create_table, make_client

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
