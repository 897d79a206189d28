"""Speed-ups of the embedded moto: each one makes moto do less for the same answer, and says
why. tests/test_embedded_moto_speedups.py checks the answers against moto's own."""

from __future__ import annotations

import base64
import bisect
import copy
import inspect
import json
from collections import defaultdict
from datetime import datetime
from typing import Any


class SortedPartition(dict[Any, Any]):
    """One partition of a moto table (range key -> item) that also keeps its string range keys
    sorted, so that a query finds where its range starts by bisection, as DynamoDB does."""

    def __init__(self, items: dict[Any, Any] | None = None) -> None:
        super().__init__()
        self.values_sorted: list[str] = []
        self.keys_sorted: list[Any] = []
        #: False once a range key that is not a string (S) went in: then no bisection.
        self.all_strings = True
        for key, value in (items or {}).items():
            self[key] = value

    def __setitem__(self, key: Any, value: Any) -> None:
        if key not in self:
            if getattr(key, "type", None) == "S" and isinstance(key.value, str):
                at = bisect.bisect_left(self.values_sorted, key.value)
                self.values_sorted.insert(at, key.value)
                self.keys_sorted.insert(at, key)
            else:
                self.all_strings = False
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._forget(key)

    def pop(self, key: Any, *default: Any) -> Any:
        if key not in self:
            return super().pop(key, *default)
        value = super().pop(key)
        self._forget(key)
        return value

    def _forget(self, key: Any) -> None:
        if getattr(key, "type", None) == "S" and isinstance(key.value, str):
            at = bisect.bisect_left(self.values_sorted, key.value)
            if at < len(self.values_sorted) and self.values_sorted[at] == key.value:
                del self.values_sorted[at]
                del self.keys_sorted[at]

    def popitem(self) -> tuple[Any, Any]:
        key, value = super().popitem()
        self._forget(key)
        return key, value

    def clear(self) -> None:
        super().clear()
        self.values_sorted.clear()
        self.keys_sorted.clear()
        self.all_strings = True

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __deepcopy__(self, memo: dict[int, Any]) -> SortedPartition:
        return SortedPartition({copy.deepcopy(k, memo): copy.deepcopy(v, memo) for k, v in self.items()})

    def __reduce__(self) -> Any:
        return (SortedPartition, (dict(self),))

    def candidates(
        self,
        comparison: str | None,
        operands: list[Any],
        limit: int | None,
        start_key: dict[str, Any] | None,
        range_attr: str,
        forward: bool,
    ) -> list[Any] | None:
        """The items moto's query loop would look at before it stops, in key order: those in the
        range, after ``start_key``, at most ``limit`` of them and the one after (whose presence
        makes moto answer a ``LastEvaluatedKey``); None when this cannot tell (then all)."""
        values = self.values_sorted
        if not self.all_strings or len(values) != len(self):
            return None
        if not all(getattr(operand, "type", None) == "S" for operand in operands):
            return None
        low, high = 0, len(values)
        name = (comparison or "").upper()
        texts = [operand.value for operand in operands]
        if not name:
            pass
        elif name in ("=", "EQ"):
            low, high = bisect.bisect_left(values, texts[0]), bisect.bisect_right(values, texts[0])
        elif name in ("<", "LT"):
            high = bisect.bisect_left(values, texts[0])
        elif name in ("<=", "LE"):
            high = bisect.bisect_right(values, texts[0])
        elif name in (">", "GT"):
            low = bisect.bisect_right(values, texts[0])
        elif name in (">=", "GE"):
            low = bisect.bisect_left(values, texts[0])
        elif name == "BETWEEN" and len(texts) == 2:
            low, high = bisect.bisect_left(values, texts[0]), bisect.bisect_right(values, texts[1])
        elif name == "BEGINS_WITH":
            low = high = bisect.bisect_left(values, texts[0])
            while high < len(values) and values[high].startswith(texts[0]):
                high += 1
        else:
            return None
        start = (start_key or {}).get(range_attr)
        if start is not None:
            if not isinstance(start, dict) or not isinstance(start.get("S"), str):
                return None
            if forward:
                low = max(low, bisect.bisect_right(values, start["S"]))
            else:
                high = min(high, bisect.bisect_left(values, start["S"]))
        if limit is None:
            chosen = self.keys_sorted[low:high] if low < high else []
        elif forward:
            chosen = self.keys_sorted[low : min(len(values), low + limit + 1)] if low < high else []
        else:
            chosen = self.keys_sorted[max(0, high - limit - 1) : high] if low < high else []
        return [dict.__getitem__(self, key) for key in chosen]


def query_one_partition() -> None:
    """Make moto's ``Query`` on a table's key read only what DynamoDB would read.

    moto reads and sorts every item of the table for each ``Query`` (``Table.all_items``), so a
    dev server's queries slowed with everything every store ever wrote: 8 ms with 50 items, 83 ms
    with 3,000 in other partitions. And within the partition it compares every range key: the
    head of a store of 20,000 events took 60 ms to find (a reverse query with ``Limit`` 1), on
    every push. DynamoDB reads one partition, from where the range starts. This keeps each
    partition's string range keys sorted (:class:`SortedPartition`) and hands moto's query only
    the items its loop would reach (the rest of it, the sort, the range condition, paging and
    the filter, is moto's own). Index queries, and legacy ``QueryFilter`` ones, are left as they
    are. Safe because the embedded moto serves one request at a time.
    """
    from moto.dynamodb.models.table import Table

    original = Table.query
    if getattr(original, "_one_partition", False):
        return
    signature = inspect.signature(original)

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, hash_key, *args, **kwargs).arguments
        if arguments.get("index_name") or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = _sorted_partition(self, hash_key)
        chosen: list[Any] | None = None
        if (
            partition is not None
            and not arguments.get("filter_kwargs")
            and len(arguments.get("range_key_conditions") or ()) <= 1
        ):
            chosen = partition.candidates(
                arguments.get("range_comparison"),
                list(arguments.get("range_objs") or []),
                arguments.get("limit"),
                arguments.get("exclusive_start_key"),
                self.range_key_attr,
                arguments.get("scan_index_forward", True) is not False,
            )
        items = chosen if chosen is not None else list(self.items.get(hash_key, {}).values())
        self.all_items = lambda: items  # an instance attribute, for this call only
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    query._one_partition = True  # type: ignore[attr-defined]
    query.original = original  # type: ignore[attr-defined]  # moto's own, for the tests that compare
    Table.query = query  # type: ignore[method-assign]


def _sorted_partition(table: Any, hash_key: Any) -> SortedPartition | None:
    """The table's partition as a :class:`SortedPartition` (its partitions become ones the first
    time), or None if it has no such partition."""
    items = table.items
    if isinstance(items, defaultdict) and items.default_factory is dict:
        for key, partition in list(items.items()):
            items[key] = SortedPartition(partition)
        items.default_factory = SortedPartition
    partition = items.get(hash_key)
    return partition if isinstance(partition, SortedPartition) else None


def list_moto_modules_once() -> None:
    """Make moto's server list its own service modules once, not per request.

    For every request moto's dispatcher asks whether the ``Host`` header names one of its
    modules, and ``list_of_moto_modules`` answers by listing moto's package directory and
    ``stat``-ing each entry: a ``GetItem`` served by moto's app took 2.1 ms with it, 1.5 ms without.
    The directory does not change while the server runs.
    """
    import moto.backends as backends

    original = backends.list_of_moto_modules
    if getattr(original, "_listed_once", False):
        return
    modules = tuple(original())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    list_of_moto_modules._listed_once = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = list_of_moto_modules


#: The DynamoDB operations whose answers :func:`serialize_items_directly` writes itself (moto
#: answers BatchWriteItem and TransactWriteItems without its item serializer already).
DIRECT_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "TransactGetItems",
    }
)


def _wire(value: Any) -> Any:
    """A moto DynamoDB result, as moto converts it for its serializer (binary as bytes), in the
    service's JSON (binary as base64, no None)."""
    if isinstance(value, dict):
        return {key: _wire(member) for key, member in value.items() if member is not None}
    if isinstance(value, list | tuple):
        return [_wire(member) for member in value]
    if isinstance(value, bytes | bytearray):
        return _base64(value)
    if isinstance(value, datetime):
        return value.timestamp()
    return value


def _base64(value: Any) -> Any:
    return base64.b64encode(value).decode() if isinstance(value, bytes | bytearray) else value


def serialize_items_directly() -> None:
    """Make moto write the answers of DynamoDB's item operations as plain JSON.

    moto's generic serializer walks the output shape for every attribute value, member by
    member: two thirds of the time of a ``Query`` of 10 items (3.5 ms) went there. Those answers
    are the items' own JSON (``{"S": ...}``, binary as base64), so this writes them with
    ``json.dumps``, keeping the members of the operation's output shape only, as the serializer
    does. Every other answer, and every error, is moto's. tests/test_embedded_moto_speedups.py
    checks the two agree on every kind of attribute value and on each operation.
    """
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    if getattr(DynamoResult, "_serialized_directly", False):
        return

    def execute_result(self: Any, context: Any) -> Any:
        operation = context.operation_model
        answer = self.result  # moto's conversion, as its wrappers left it (ReturnConsumedCapacity)
        if operation.name not in DIRECT_OPERATIONS or not isinstance(answer, dict):
            return ActionResult.execute_result(self, context)
        members = operation.output_shape.members if operation.output_shape is not None else {}
        body = json.dumps(
            {key: _wire(value) for key, value in answer.items() if key in members and value is not None}
        )
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
    DynamoResult._serialized_directly = True  # type: ignore[attr-defined]
