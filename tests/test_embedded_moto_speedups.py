"""The embedded moto's speed-ups answer as moto itself does (:mod:`stratasync.devserver.moto_speedups`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.core.responses import ActionResult
from moto.dynamodb.responses import DynamoResult

from stratasync.devserver.embedded_moto import EmbeddedMoto
from stratasync.devserver.moto_speedups import DIRECT_OPERATIONS, serialize_items_directly
from stratasync.storage.dynamodb import create_table, make_client

#: One of every kind of attribute value, awkward ones included.
ITEM: dict[str, Any] = {
    "pk": {"S": "store"},
    "sk": {"S": "b#0001"},
    "s": {"S": 'é \u2028 \U0001f600 \\ " </script>'},
    "n": {"N": "-9.9E+125"},
    "big": {"N": "12345678901234567890123456789012345678"},
    "b": {"B": bytes(range(256))},
    "empty_b": {"B": b""},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"\x00", b"\xff"]},
    "m": {"M": {"inner": {"L": [{"S": "x"}, {"N": "1"}, {"B": b"\x01"}, {"NULL": True}, {"BOOL": False}]}}},
    "l": {"L": [{"M": {"deep": {"SS": ["z"]}}}]},
    "null": {"NULL": True},
    "bool": {"BOOL": True},
}


@pytest.fixture
def compared() -> Iterator[tuple[Any, list[str]]]:
    """A client of an embedded moto whose every direct answer is checked against moto's own
    serializer; yields it and the names of the operations compared."""
    seen: list[str] = []
    mismatches: list[str] = []
    serialize_items_directly()
    direct = DynamoResult.execute_result

    def both(self: Any, context: Any) -> Any:
        answer = direct(self, context)
        name = context.operation_model.name
        if name in DIRECT_OPERATIONS:
            _, _, moto_body = ActionResult.execute_result(self, context)
            seen.append(name)
            if json.loads(answer[2]) != json.loads(moto_body):
                mismatches.append(
                    f"{name}:\n  direct {str(answer[2])[:600]}\n  moto   {str(moto_body)[:600]}"
                )
        return answer

    with EmbeddedMoto() as moto:
        DynamoResult.execute_result = both  # type: ignore[method-assign]
        try:
            client = make_client(moto.endpoint)
            create_table(client, "speedups")
            yield client, seen
        finally:
            DynamoResult.execute_result = direct  # type: ignore[method-assign]
    assert not mismatches, "\n".join(mismatches)


def test_item_operations_answer_as_moto_serializes_them(compared: tuple[Any, list[str]]) -> None:
    client, seen = compared
    table = "speedups"
    key = {"pk": ITEM["pk"], "sk": ITEM["sk"]}
    client.put_item(TableName=table, Item=ITEM, ReturnValues="ALL_OLD", ReturnConsumedCapacity="TOTAL")
    client.put_item(TableName=table, Item=ITEM, ReturnValues="ALL_OLD")
    for number in range(2, 8):
        client.put_item(TableName=table, Item={**ITEM, "sk": {"S": f"b#{number:04d}"}})
    got = client.get_item(TableName=table, Key=key, ConsistentRead=True)
    assert got["Item"]["b"] == {"B": bytes(range(256))}
    assert got["Item"]["n"] == {"N": "-9.9E+125"}
    client.get_item(TableName=table, Key={"pk": {"S": "nobody"}, "sk": {"S": "x"}})
    client.get_item(TableName=table, Key=key, ProjectionExpression="m.inner[2], bs")
    client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET n = n + :one, added = :b REMOVE ss",
        ExpressionAttributeValues={":one": {"N": "1"}, ":b": {"B": b"\x00\x01"}},
        ReturnValues="ALL_NEW",
    )
    client.update_item(
        TableName=table, Key=key, UpdateExpression="SET x = :x", ExpressionAttributeValues={":x": {"S": "y"}}
    )
    pages = client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
        ExpressionAttributeValues={":pk": ITEM["pk"], ":low": {"S": "b#"}, ":high": {"S": "b#~"}},
        Limit=3,
        ScanIndexForward=False,
        ReturnConsumedCapacity="TOTAL",
    )
    assert pages["LastEvaluatedKey"] == {"pk": ITEM["pk"], "sk": {"S": "b#0005"}}
    rest = client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": ITEM["pk"]},
        ExclusiveStartKey=pages["LastEvaluatedKey"],
        FilterExpression="attribute_exists(bs)",
        Select="COUNT",
    )
    assert "LastEvaluatedKey" not in rest
    client.scan(TableName=table, Limit=2)
    client.batch_get_item(RequestItems={table: {"Keys": [key, {"pk": ITEM["pk"], "sk": {"S": "b#0003"}}]}})
    client.batch_write_item(
        RequestItems={table: [{"DeleteRequest": {"Key": {"pk": ITEM["pk"], "sk": {"S": "b#0007"}}}}]}
    )
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": {**ITEM, "sk": {"S": "t#1"}}}},
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": key,
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
        ]
    )
    client.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": key}}])
    client.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD")
    client.delete_item(TableName=table, Key=key)
    assert set(seen) == DIRECT_OPERATIONS


def test_errors_stay_moto_s(compared: tuple[Any, list[str]]) -> None:
    """A failed condition still returns the item that is there (moto's own error answer)."""
    client, _ = compared
    client.put_item(TableName="speedups", Item=ITEM)
    with pytest.raises(client.exceptions.ConditionalCheckFailedException) as refused:
        client.put_item(
            TableName="speedups",
            Item=ITEM,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    there: Any = refused.value.response
    assert there["Item"]["b"] == {"B": bytes(range(256))}
    assert Decimal(there["Item"]["n"]["N"]) == Decimal("-9.9E+125")


#: Sort keys with neighbours that trip up naive bounds: prefixes, a high code point, an empty tail.
SORT_KEYS = st.text(alphabet=st.sampled_from(["a", "b", "#", "~", "é", "\U0010fffd"]), min_size=1, max_size=4)


@st.composite
def key_conditions(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A key condition on ``sk`` and its values."""
    kind = draw(st.sampled_from(["none", "=", "<", "<=", ">", ">=", "between", "begins_with"]))
    low, high = sorted([draw(SORT_KEYS), draw(SORT_KEYS)])
    if kind == "none":
        return "pk = :pk", {}
    if kind == "between":
        return "pk = :pk AND sk BETWEEN :a AND :b", {":a": {"S": low}, ":b": {"S": high}}
    if kind == "begins_with":
        return "pk = :pk AND begins_with(sk, :a)", {":a": {"S": low[: draw(st.integers(1, len(low)))]}}
    return f"pk = :pk AND sk {kind} :a", {":a": {"S": low}}


@pytest.fixture(scope="module")
def partitioned() -> Iterator[Any]:
    """An embedded moto with a table of a few partitions, for the query comparisons."""
    with EmbeddedMoto() as moto:
        client = make_client(moto.endpoint)
        create_table(client, "bisect")
        yield client


def _pages(client: Any, request: dict[str, Any]) -> list[tuple[list[str], Any, int, int]]:
    pages: list[tuple[list[str], Any, int, int]] = []
    request = dict(request)
    while len(pages) < 50:
        answer = client.query(**request)
        pages.append(
            (
                [item["sk"]["S"] for item in answer.get("Items", [])],
                answer.get("LastEvaluatedKey"),
                answer["Count"],
                answer["ScannedCount"],
            )
        )
        if "LastEvaluatedKey" not in answer:
            break
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    return pages


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=st.sets(SORT_KEYS, max_size=25),
    condition=key_conditions(),
    limit=st.none() | st.integers(1, 6),
    forward=st.booleans(),
    filtered=st.booleans(),
)
def test_a_query_reads_from_where_its_range_starts_with_moto_s_answers(
    partitioned: Any,
    keys: set[str],
    condition: tuple[str, dict[str, Any]],
    limit: int | None,
    forward: bool,
    filtered: bool,
) -> None:
    """The sorted partitions answer every page as moto's own query does: items, order,
    ``LastEvaluatedKey``, ``Count`` and ``ScannedCount``, with deletes in between."""
    from moto.dynamodb.models.table import Table

    client = partitioned
    pk = f"p{uuid.uuid4().hex[:8]}"
    for key in sorted(keys):
        client.put_item(
            TableName="bisect", Item={"pk": {"S": pk}, "sk": {"S": key}, "odd": {"BOOL": len(key) % 2 == 1}}
        )
    client.put_item(TableName="bisect", Item={"pk": {"S": pk + "x"}, "sk": {"S": "a"}})  # a neighbour
    for key in sorted(keys)[::3]:
        client.delete_item(TableName="bisect", Key={"pk": {"S": pk}, "sk": {"S": key}})
    expression, values = condition
    request: dict[str, Any] = {
        "TableName": "bisect",
        "KeyConditionExpression": expression,
        "ExpressionAttributeValues": {":pk": {"S": pk}, **values},
        "ScanIndexForward": forward,
        "ConsistentRead": True,
        **({"Limit": limit} if limit is not None else {}),
        **({"FilterExpression": "odd = :t"} if filtered else {}),
    }
    if filtered:
        request["ExpressionAttributeValues"][":t"] = {"BOOL": True}
    ours = _pages(client, request)
    sped_up = Table.query
    Table.query = sped_up.original  # type: ignore[attr-defined,method-assign]
    try:
        moto_s = _pages(client, request)
    finally:
        Table.query = sped_up  # type: ignore[method-assign]
    assert ours == moto_s
