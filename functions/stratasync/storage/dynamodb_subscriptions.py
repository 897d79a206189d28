"""The DynamoDB adapter of :class:`SubscriptionStorage`: live sync's connections table.

One table (``pk``/``sk`` strings, TTL attribute ``expiresAt``), items by key:

* ``conn#<connection id>`` / ``conn`` - the connection: its store, connect time, expiry. What a
  message's Lambda reads to learn a connection's store (API Gateway passes only its id).
* ``store#<store id>`` / ``conn#<connection id>`` - the same connection listed under its store,
  so the fan-out sees in one query the connections that hold no subscription.
* ``store#<store id>`` / ``sub#<connection id>#<request id>`` - a subscription: ``st`` (catchup,
  live, interrupted), ``sent`` (its ``sent_seq``), ``lease`` (epoch ms, catch-up only),
  ``sending`` (the target of a claimed send) and ``sendingUntil`` (epoch ms: its sender is
  certainly dead by then).

Every write that moves a subscription is conditional on the state it moves from, so concurrent
Lambdas cannot both win. :meth:`go_live` is a ``TransactWriteItems`` of a ``ConditionCheck`` on
the eventlog table (no commit record at ``b#<sent_seq>``: the head is still ``sent_seq``) and the
conditional update of the subscription. All calls go through :class:`DynamoDBTable` (budgeted
retries, errors translated).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratasync.storage.aws import call_within_budget, error_code
from stratasync.storage.base import StorageUnavailableError
from stratasync.storage.dynamodb_items import Item, batch_sk
from stratasync.storage.dynamodb_table import DynamoDBTable, _ConditionFailed
from stratasync.storage.subscriptions import (
    Connection,
    Handoff,
    StoreListeners,
    Subscription,
    SubscriptionKey,
    SubscriptionStatus,
    SubscriptionStorage,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_CONNECTION_SK = "conn"
_CONNECTION_PREFIX = "conn#"
_SUB_PREFIX = "sub#"


def _connection_pk(connection_id: str) -> str:
    return f"conn#{connection_id}"


def _store_pk(store_id: str) -> str:
    return f"store#{store_id}"


def _sub_sk(key: SubscriptionKey) -> str:
    return f"{_SUB_PREFIX}{key.connection_id}#{key.request_id}"


def _sub_key(key: SubscriptionKey) -> dict[str, Any]:
    return {"pk": {"S": _store_pk(key.store_id)}, "sk": {"S": _sub_sk(key)}}


def _subscription(store_id: str, item: Item) -> Subscription:
    connection_id, _, request_id = item["sk"]["S"][len(_SUB_PREFIX) :].rpartition("#")
    return Subscription(
        SubscriptionKey(store_id, connection_id, request_id),
        SubscriptionStatus(item["st"]["S"]),
        int(item["sent"]["N"]),
        lease_until_ms=int(item["lease"]["N"]) if "lease" in item else None,
        sending=int(item["sending"]["N"]) if "sending" in item else None,
        sending_until_ms=int(item["sendingUntil"]["N"]) if "sendingUntil" in item else None,
    )


class _TransactionCanceled(Exception):  # noqa: N818 - a signal inside the adapter
    def __init__(self, reasons: list[str]) -> None:
        super().__init__(f"transaction canceled: {reasons}")
        self.reasons = reasons


def _special(error: ClientError) -> Exception | None:
    code = error_code(error)
    if code == "ConditionalCheckFailedException":
        return _ConditionFailed(error.response.get("Item", {}))  # type: ignore[arg-type]
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons") or []
        return _TransactionCanceled([str(reason.get("Code", "None")) for reason in reasons])
    return None


class DynamoDBSubscriptionStorage(SubscriptionStorage):
    """Connections and subscriptions in ``table_name``; :meth:`go_live` checks ``eventlog_table``."""

    def __init__(
        self,
        table_name: str,
        eventlog_table: str,
        client: DynamoDBClient,
        *,
        time_budget_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = DynamoDBTable(
            table_name, client, time_budget_seconds=time_budget_seconds, page_items=100
        )
        self.eventlog_table = eventlog_table
        self._clock = clock

    def _alive(self, item: Item) -> bool:
        return "expiresAt" not in item or int(item["expiresAt"]["N"]) >= self._clock()

    def _update(self, key: SubscriptionKey, update: str, condition: str, values: dict[str, Any]) -> bool:
        try:
            self.table.call(
                "update_item",
                Key=_sub_key(key),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#st": "st"},
                ExpressionAttributeValues={
                    **({":now": {"N": str(int(self._clock()))}} if ":now" in condition else {}),
                    **values,
                },
            )
        except _ConditionFailed:
            return False
        return True

    # -- connections -------------------------------------------------------------------------

    def put_connection(self, connection: Connection) -> None:
        common = {
            "storeId": {"S": connection.store_id},
            "connectedAt": {"N": str(connection.connected_at_ms)},
            "expiresAt": {"N": str(connection.expires_at)},
        }
        self.table.batch_write(
            [
                {
                    "PutRequest": {
                        "Item": {
                            "pk": {"S": _connection_pk(connection.connection_id)},
                            "sk": {"S": _CONNECTION_SK},
                            **common,
                        }
                    }
                },
                {
                    "PutRequest": {
                        "Item": {
                            "pk": {"S": _store_pk(connection.store_id)},
                            "sk": {"S": _CONNECTION_PREFIX + connection.connection_id},
                            **common,
                        }
                    }
                },
            ]
        )

    def connection(self, connection_id: str) -> Connection | None:
        item = self.table.call(
            "get_item",
            Key={"pk": {"S": _connection_pk(connection_id)}, "sk": {"S": _CONNECTION_SK}},
            ConsistentRead=True,
        ).get("Item")
        if item is None or not self._alive(item):
            return None
        return Connection(
            connection_id, item["storeId"]["S"], int(item["connectedAt"]["N"]), int(item["expiresAt"]["N"])
        )

    def remove_connection(self, connection_id: str, store_id: str) -> None:
        keys = [
            {"pk": {"S": _connection_pk(connection_id)}, "sk": {"S": _CONNECTION_SK}},
            {"pk": {"S": _store_pk(store_id)}, "sk": {"S": _CONNECTION_PREFIX + connection_id}},
        ]
        for item in self.table.partition(_store_pk(store_id), f"{_SUB_PREFIX}{connection_id}#"):
            keys.append({"pk": item["pk"], "sk": item["sk"]})
        self.table.batch_write([{"DeleteRequest": {"Key": key}} for key in keys])

    def listeners(self, store_id: str) -> StoreListeners:
        connections: list[Connection] = []
        subscriptions: list[Subscription] = []
        for item in self.table.partition(_store_pk(store_id)):
            if not self._alive(item):
                continue
            sort_key = item["sk"]["S"]
            if sort_key.startswith(_SUB_PREFIX):
                subscriptions.append(_subscription(store_id, item))
            elif sort_key.startswith(_CONNECTION_PREFIX):
                connections.append(
                    Connection(
                        sort_key[len(_CONNECTION_PREFIX) :],
                        store_id,
                        int(item["connectedAt"]["N"]),
                        int(item["expiresAt"]["N"]),
                    )
                )
        return StoreListeners(connections, subscriptions)

    # -- subscriptions -----------------------------------------------------------------------

    def open_subscription(
        self, key: SubscriptionKey, sent_seq: int, lease_until_ms: int, expires_at: int
    ) -> bool:
        item = {
            **_sub_key(key),
            "st": {"S": SubscriptionStatus.CATCHUP.value},
            "sent": {"N": str(sent_seq)},
            "lease": {"N": str(lease_until_ms)},
            "expiresAt": {"N": str(expires_at)},
        }
        try:
            self.table.call(
                "put_item",
                Item=item,
                # an expired item (TTL not yet applied) counts as absent
                ConditionExpression="attribute_not_exists(sk) OR expiresAt < :now",
                ExpressionAttributeValues={":now": {"N": str(int(self._clock()))}},
            )
        except _ConditionFailed:
            return False
        return True

    def go_live(self, key: SubscriptionKey, sent_seq: int) -> Handoff:
        request: dict[str, Any] = {
            "TransactItems": [
                {
                    "ConditionCheck": {
                        "TableName": self.eventlog_table,
                        "Key": {"pk": {"S": key.store_id}, "sk": {"S": batch_sk(sent_seq)}},
                        "ConditionExpression": "attribute_not_exists(sk)",
                    }
                },
                {
                    "Update": {
                        "TableName": self.table.table_name,
                        "Key": _sub_key(key),
                        "UpdateExpression": "SET #st = :live, sent = :sent REMOVE lease",
                        "ConditionExpression": "#st = :catchup AND expiresAt >= :now",
                        "ExpressionAttributeNames": {"#st": "st"},
                        "ExpressionAttributeValues": {
                            ":live": {"S": SubscriptionStatus.LIVE.value},
                            ":catchup": {"S": SubscriptionStatus.CATCHUP.value},
                            ":sent": {"N": str(sent_seq)},
                            ":now": {"N": str(int(self._clock()))},
                        },
                    }
                },
            ]
        }
        deadline = time.monotonic() + self.table.time_budget_seconds
        while True:
            try:
                call_within_budget(
                    lambda: self.table.client.transact_write_items(**request),
                    what="DynamoDB transact_write_items",
                    budget_seconds=self.table.time_budget_seconds,
                    special=_special,
                )
            except _TransactionCanceled as canceled:
                reasons = canceled.reasons + ["None"] * (2 - len(canceled.reasons))
                if reasons[1] == "ConditionalCheckFailed":
                    return Handoff.GONE
                if reasons[0] == "ConditionalCheckFailed":
                    return Handoff.HEAD_MOVED
                # TransactionConflict (a push writing that commit record right now) or throttling:
                if time.monotonic() >= deadline:
                    raise StorageUnavailableError(
                        f"TransactWriteItems kept being canceled: {reasons}"
                    ) from None
                time.sleep(0.005)
                continue
            return Handoff.LIVE

    def claim(self, key: SubscriptionKey, sent_seq: int, target: int, until_ms: int) -> bool:
        return self._update(
            key,
            "SET sending = :target, sendingUntil = :until",
            "#st = :live AND sent = :sent AND attribute_not_exists(sending) AND expiresAt >= :now",
            {
                ":live": {"S": SubscriptionStatus.LIVE.value},
                ":sent": {"N": str(sent_seq)},
                ":target": {"N": str(target)},
                ":until": {"N": str(until_ms)},
            },
        )

    def release(self, key: SubscriptionKey, target: int) -> bool:
        return self._update(
            key,
            "SET sent = :target REMOVE sending, sendingUntil",
            "sending = :target AND #st = :live",
            {":live": {"S": SubscriptionStatus.LIVE.value}, ":target": {"N": str(target)}},
        )

    def interrupt(self, key: SubscriptionKey, expires_at: int) -> None:
        self.table.call(
            "put_item",
            Item={
                **_sub_key(key),
                "st": {"S": SubscriptionStatus.INTERRUPTED.value},
                "sent": {"N": "0"},
                "expiresAt": {"N": str(expires_at)},
            },
        )

    def remove_subscription(self, key: SubscriptionKey) -> None:
        self.table.call("delete_item", Key=_sub_key(key))
