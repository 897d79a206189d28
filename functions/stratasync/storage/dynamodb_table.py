"""One DynamoDB table, reached through budgeted calls: the adapter's access layer.

Every call goes through :meth:`DynamoDBTable.call` (:mod:`stratasync.storage.aws`), where
throttling and transient errors are retried within a time budget and driver errors become the
storage layer's own. On top of it: a conditional put that returns what is there, strongly
consistent key-range queries that follow every page, and batched writes and reads that retry
what DynamoDB left unprocessed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from stratasync.storage.aws import call_within_budget, client_config, error_code, request_id_of
from stratasync.storage.base import StorageError, StorageUnavailableError
from stratasync.storage.dynamodb_items import Item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def make_client(endpoint_url: str | None = None, region_name: str | None = None) -> DynamoDBClient:
    """A DynamoDB client for the adapter (:func:`stratasync.storage.aws.client_config`)."""
    return boto3.client(
        "dynamodb", endpoint_url=endpoint_url, region_name=region_name, config=client_config()
    )


def create_table(client: DynamoDBClient, table_name: str, *, stream_view_type: str | None = None) -> None:
    """Create the eventlog table (on-demand) if it does not exist, and wait until it is active.

    ``stream_view_type`` (``KEYS_ONLY``...): with a DynamoDB stream (live sync's fan-out reads
    it); an existing table without one gets one."""
    extra: dict[str, Any] = {}
    if stream_view_type is not None:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream_view_type}
    try:
        client.create_table(
            TableName=table_name,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
            **extra,
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    if stream_view_type is not None:
        table = client.describe_table(TableName=table_name)["Table"]
        if not table.get("StreamSpecification", {}).get("StreamEnabled"):
            client.update_table(TableName=table_name, StreamSpecification=extra["StreamSpecification"])
            client.get_waiter("table_exists").wait(
                TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
            )


def create_connections_table(client: DynamoDBClient, table_name: str) -> None:
    """Create live sync's connections table (``pk``/``sk``, TTL on ``expiresAt``) if it does not
    exist (the deployment's stacks create it on AWS)."""
    create_table(client, table_name)
    try:
        client.update_time_to_live(
            TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
        )
    except ClientError as error:  # already enabled (or an emulator without TTL): items expire on read
        if error_code(error) not in ("ValidationException", "UnknownOperationException"):
            raise


class DynamoDBTable:
    """Budgeted access to one table (``page_items``: the ``Limit`` of each query page)."""

    def __init__(
        self, table_name: str, client: DynamoDBClient, *, time_budget_seconds: float, page_items: int
    ) -> None:
        self.table_name = table_name
        self.client = client
        self.time_budget_seconds = time_budget_seconds
        self.page_items = page_items

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Call one DynamoDB operation within the time budget (:mod:`stratasync.storage.aws`);
        ``ConditionalCheckFailedException`` becomes :class:`_ConditionFailed` with the item that is
        there (the callers' concurrency signal)."""
        method = getattr(self.client, operation)
        if operation not in ("batch_get_item", "batch_write_item"):
            kwargs.setdefault("TableName", self.table_name)
        result: dict[str, Any] = call_within_budget(
            lambda: method(**kwargs),
            what=f"DynamoDB {operation}",
            budget_seconds=self.time_budget_seconds,
            special=lambda error: _condition_failed(error) or self._missing_table(operation, error),
        )
        return result

    def _missing_table(self, operation: str, error: ClientError) -> StorageError | None:
        """``ResourceNotFoundException``, saying which table is missing where."""
        if error_code(error) != "ResourceNotFoundException":
            return None
        return StorageError(
            f"DynamoDB {operation} failed: ResourceNotFoundException: no table {self.table_name!r} at"
            f" {self.client.meta.endpoint_url} (check the table name and the endpoint; a `stratasync dev"
            " --memory` server keeps its tables in memory and has none in DynamoDB)",
            request_id=request_id_of(error),
        )

    def put_if_absent(self, item: dict[str, Any]) -> Item | None:
        """Put ``item`` unless its key exists: None if it was written, else the item already there
        (from ``ReturnValuesOnConditionCheckFailure``, so no extra read)."""
        try:
            self.call(
                "put_item",
                Item=item,
                ConditionExpression="attribute_not_exists(sk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _ConditionFailed as failed:
            return failed.item
        return None

    def key_range(
        self,
        store_id: str,
        lower: str,
        upper: str,
        *,
        reverse: bool = False,
        limit: int | None = None,
        projection: str | None = None,
    ) -> Iterator[Item]:
        """Items with ``lower <= sk <= upper``, strongly consistent, page by page (ascending unless
        ``reverse``) until DynamoDB has no more (real DynamoDB may end with an empty page) or
        ``limit`` items came."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {":pk": {"S": store_id}, ":lo": {"S": lower}, ":hi": {"S": upper}},
            "ConsistentRead": True,
            "ScanIndexForward": not reverse,
            "Limit": min(limit, self.page_items) if limit is not None else self.page_items,
        }
        if projection is not None:
            kwargs["ProjectionExpression"] = projection
            kwargs["ExpressionAttributeNames"] = {
                name: name[1:] for name in ("#last", "#at") if name in projection
            }
        remaining = limit
        while True:
            page = self.call("query", **kwargs)
            for item in page.get("Items", []):
                yield item
                if remaining is not None:
                    remaining -= 1
                    if remaining == 0:
                        return
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def partition(self, pk: str, prefix: str | None = None) -> Iterator[Item]:
        """Every item of partition ``pk`` (with a sort key starting ``prefix``), strongly consistent,
        page by page."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk" + (" AND begins_with(sk, :prefix)" if prefix else ""),
            "ExpressionAttributeValues": {":pk": {"S": pk}, **({":prefix": {"S": prefix}} if prefix else {})},
            "ConsistentRead": True,
            "Limit": self.page_items,
        }
        while True:
            page = self.call("query", **kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def last_in_range(self, store_id: str, lower: str, upper: str) -> Item | None:
        """The item with the largest sort key in ``[lower, upper]`` (one reverse query, Limit 1)."""
        return next(self.key_range(store_id, lower, upper, reverse=True, limit=1), None)

    def delete_keys(self, store_id: str, sort_keys: list[str]) -> None:
        """BatchWriteItem deletes of these sort keys."""
        self.batch_write(
            [{"DeleteRequest": {"Key": {"pk": {"S": store_id}, "sk": {"S": key}}}} for key in sort_keys]
        )

    def batch_write(self, requests: list[dict[str, Any]]) -> None:
        """BatchWriteItem requests (25 a call, unprocessed ones retried within the time budget)."""
        pending = list(requests)
        deadline = time.monotonic() + self.time_budget_seconds
        while pending:
            request, pending = pending[:25], pending[25:]
            response = self.call("batch_write_item", RequestItems={self.table_name: request})
            unprocessed = response.get("UnprocessedItems", {}).get(self.table_name, [])
            if unprocessed:
                if time.monotonic() >= deadline:
                    raise StorageUnavailableError(f"BatchWriteItem left {len(unprocessed)} writes undone")
                time.sleep(random.uniform(0, 0.05))
                pending = list(unprocessed) + pending

    def get_parts(self, store_id: str, part_keys: list[str]) -> dict[str, bytes]:
        """Part items by sort key, read with BatchGetItem (100 keys a call, unprocessed keys retried)."""
        found: dict[str, bytes] = {}
        pending = [{"pk": {"S": store_id}, "sk": {"S": key}} for key in part_keys]
        deadline = time.monotonic() + self.time_budget_seconds
        while pending:
            request, pending = pending[:100], pending[100:]
            response = self.call(
                "batch_get_item", RequestItems={self.table_name: {"Keys": request, "ConsistentRead": True}}
            )
            for item in response.get("Responses", {}).get(self.table_name, []):
                found[item["sk"]["S"]] = item["d"]["B"]
            unprocessed = response.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
            if unprocessed:
                if time.monotonic() >= deadline:
                    raise StorageUnavailableError(f"BatchGetItem left {len(unprocessed)} keys unprocessed")
                time.sleep(random.uniform(0, 0.05))
                pending = list(unprocessed) + pending
        return found


class _ConditionFailed(Exception):  # noqa: N818 - a signal inside the adapter, never seen outside
    """A conditional write found its condition false; ``item``: what is there (``ALL_OLD``)."""

    def __init__(self, item: Item) -> None:
        super().__init__("conditional check failed")
        self.item = item


def _condition_failed(error: ClientError) -> Exception | None:
    if error_code(error) != "ConditionalCheckFailedException":
        return None
    return _ConditionFailed(error.response.get("Item", {}))  # type: ignore[arg-type]
