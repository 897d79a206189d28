"""The write builders of typed tables (``insert``, ``update``, ``delete``), for materializers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import FrozenInstanceError, dataclass, field, replace
from typing import Any, Literal

from stratasync.client.query import Sql, Table, quote, where_sql


class Insert:
    """``INSERT`` of one row; ``.on_conflict(column, "ignore" | "replace" | "update", **values)``.

    Immutable, compared by ``(table, values, conflict)`` as a frozen dataclass would be; built
    without per-call overhead by :meth:`Table.insert <stratasync.client.query.Table.insert>`
    (materializers build one an event, so this is on the hot path of catching up).
    """

    __slots__ = ("_names", "_params", "_statement", "conflict", "table")

    table: Table
    conflict: tuple[str, str, tuple[tuple[str, Any], ...]] | None
    _names: tuple[str, ...]
    _params: tuple[Any, ...]
    #: The statement's text (None until known: with a conflict clause, built on first use).
    _statement: str | None

    def __init__(
        self,
        table: Table,
        values: tuple[tuple[str, Any], ...],
        conflict: tuple[str, str, tuple[tuple[str, Any], ...]] | None = None,
    ) -> None:
        names, params = _split(tuple(values))
        _init_insert(self, table, names, params, conflict, None)

    @property
    def values(self) -> tuple[tuple[str, Any], ...]:
        """``(column, value as stored)`` pairs."""
        return tuple(zip(self._names, self._params, strict=True))

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not Insert:
            return NotImplemented
        return (self.table, self._names, self._params, self.conflict) == (
            other.table,
            other._names,
            other._params,
            other.conflict,
        )

    def __hash__(self) -> int:
        return hash((self.table, self.values, self.conflict))

    def __repr__(self) -> str:
        return f"Insert(table={self.table!r}, values={self.values!r}, conflict={self.conflict!r})"

    def on_conflict(
        self, column: str, action: Literal["ignore", "replace", "update"], **values: Any
    ) -> Insert:
        """What to do when a row with the same ``column`` (a primary key or unique) exists."""
        self.table.column(column)
        if action not in ("ignore", "replace", "update"):
            raise ValueError(f"on_conflict action is 'ignore', 'replace' or 'update', not {action!r}")
        if (action == "update") != bool(values):
            raise ValueError("on_conflict(..., 'update', column=value, ...) and only it takes values")
        made = _new_insert(Insert)
        conflict = (column, action, self.table._stored(values))
        _init_insert(made, self.table, self._names, self._params, conflict, None)
        return made

    def to_sql(self) -> Sql:
        return Sql(*self._compiled())

    def _compiled(self) -> tuple[str, tuple[Any, ...]]:
        """(statement, params) of :meth:`to_sql`, the text built once per shape of insert."""
        statement = self._statement
        if statement is not None:
            return statement, self._params
        names, params = self._names, self._params
        conflict = self.conflict
        if conflict is None:
            key: Any = names
        else:
            column, action, updates = conflict
            update_names, update_params = _split(updates)
            key = ("insert", names, column, action, update_names)
            params += update_params
        statement = self.table._statements.get(key)
        if statement is None:
            statement = _remember(self.table, key, insert_statement(self.table, names, conflict))
        return statement, params


def insert_statement(
    table: Table, names: tuple[str, ...], conflict: tuple[str, str, tuple[tuple[str, Any], ...]] | None
) -> str:
    """The text of an ``INSERT`` into ``table`` of columns ``names`` (with its conflict clause)."""
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, names))})"
        f" VALUES ({', '.join('?' * len(names))})"
    )
    if conflict is not None:
        column, action, updates = conflict
        statement += f" ON CONFLICT ({quote(column)}) DO "
        if action == "ignore":
            statement += "NOTHING"
        elif action == "replace":
            statement += "UPDATE SET " + ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in names)
        else:
            statement += "UPDATE SET " + ", ".join(f"{quote(n)} = ?" for n, _ in updates)
    return statement


_new_insert = object.__new__
_SET_TABLE = Insert.__dict__["table"].__set__
_SET_NAMES = Insert.__dict__["_names"].__set__
_SET_PARAMS = Insert.__dict__["_params"].__set__
_SET_CONFLICT = Insert.__dict__["conflict"].__set__
_SET_STATEMENT = Insert.__dict__["_statement"].__set__


def _init_insert(
    insert: Insert,
    table: Table,
    names: tuple[str, ...],
    params: tuple[Any, ...],
    conflict: tuple[str, str, tuple[tuple[str, Any], ...]] | None,
    statement: str | None,
) -> None:
    # The slots set through their descriptors: an Insert refuses attribute assignment.
    _SET_TABLE(insert, table)
    _SET_NAMES(insert, names)
    _SET_PARAMS(insert, params)
    _SET_CONFLICT(insert, conflict)
    _SET_STATEMENT(insert, statement)


def new_insert(table: Table, names: tuple[str, ...], params: tuple[Any, ...], statement: str) -> Insert:
    """An :class:`Insert` without a conflict clause, its text known (for :meth:`Table.insert`)."""
    insert = _new_insert(Insert)
    _SET_TABLE(insert, table)
    _SET_NAMES(insert, names)
    _SET_PARAMS(insert, params)
    _SET_CONFLICT(insert, None)
    _SET_STATEMENT(insert, statement)
    return insert


@dataclass(frozen=True)
class Update:
    """``UPDATE`` of some columns; narrow it with ``.where(...)`` (as :meth:`Query.where`)."""

    table: Table
    values: tuple[tuple[str, Any], ...]
    terms: tuple[tuple[str, str, Any], ...] = field(default=())

    def where(self, *condition: Any, **equal: Any) -> Update:
        return replace(self, terms=self.terms + self.table._condition(condition, equal))

    def to_sql(self) -> Sql:
        return Sql(*self._compiled())

    def _compiled(self) -> tuple[str, tuple[Any, ...]]:
        """(statement, params) of :meth:`to_sql`, the text built once per shape of update."""
        names, values = _split(self.values)
        key = ("update", names, _terms_key(self.terms))
        params = list(values)
        statement = self.table._statements.get(key)
        if statement is None:
            where, where_params = where_sql(self.terms)
            assignments = ", ".join(f"{quote(name)} = ?" for name, _ in self.values)
            text = f"UPDATE {quote(self.table.name)} SET {assignments}{where}"
            statement = _remember(self.table, key, text)
            params.extend(where_params)
        else:
            _extend_where_params(params, self.terms)
        return statement, tuple(params)


@dataclass(frozen=True)
class Delete:
    """``DELETE`` of rows; narrow it with ``.where(...)`` (as :meth:`Query.where`)."""

    table: Table
    terms: tuple[tuple[str, str, Any], ...] = field(default=())

    def where(self, *condition: Any, **equal: Any) -> Delete:
        return replace(self, terms=self.terms + self.table._condition(condition, equal))

    def to_sql(self) -> Sql:
        return Sql(*self._compiled())

    def _compiled(self) -> tuple[str, tuple[Any, ...]]:
        """(statement, params) of :meth:`to_sql`, the text built once per shape of delete."""
        key = ("delete", _terms_key(self.terms))
        statement = self.table._statements.get(key)
        if statement is None:
            where, params = where_sql(self.terms)
            text = f"DELETE FROM {quote(self.table.name)}{where}"
            return _remember(self.table, key, text), tuple(params)
        params = []
        _extend_where_params(params, self.terms)
        return statement, tuple(params)


#: At most this many statement texts are remembered per table, by the shape of the write: an
#: insert's column names (a tuple of str), or a tuple starting with the kind of write.
MAX_REMEMBERED_STATEMENTS = 512


def _remember(table: Table, key: Any, statement: str) -> str:
    """``statement``, remembered as the text of writes of shape ``key`` on ``table``.

    Each shape of write (table, columns, conflict clause, conditions) always has the same text, so
    it is built once; and one text per shape lets SQLite's statement cache and the batched
    executions of a catch-up (``executemany``) reuse one prepared statement.
    """
    if len(table._statements) < MAX_REMEMBERED_STATEMENTS:
        table._statements[key] = statement
    return statement


def _split(pairs: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """``((name, value), ...)`` as ``((name, ...), (value, ...))``."""
    if not pairs:
        return (), ()
    names, values = zip(*pairs, strict=True)
    return names, values


def _terms_key(terms: tuple[tuple[str, str, Any], ...]) -> tuple[Any, ...]:
    """What of a WHERE clause decides its text: columns, operators, and the size of each IN list."""
    return tuple([(name, op, len(value) if op in ("IN", "NOT IN") else 0) for name, op, value in terms])


def _extend_where_params(params: list[Any], terms: tuple[tuple[str, str, Any], ...]) -> None:
    """The parameters of a WHERE clause, as :func:`~stratasync.client.query.where_sql` binds them."""
    for _, operator, value in terms:
        if operator in ("IN", "NOT IN"):
            params.extend(value)
        else:
            params.append(value)


WriteLike = Sql | Insert | Update | Delete
"""What a materializer may return: one of these, a list of them, or None (no change)."""


def compile_writes(result: Any) -> list[Sql]:
    """A materializer's result as a list of :class:`Sql` statements."""
    kind = type(result)
    if kind is Insert or kind is Update or kind is Delete:  # the common case first
        return [result.to_sql()]
    if result is None:
        return []
    if isinstance(result, Sql):
        return [result]
    if isinstance(result, Insert | Update | Delete):
        return [result.to_sql()]
    if isinstance(result, Iterable) and not isinstance(result, str | bytes):
        return [write for item in result for write in compile_writes(item)]
    raise TypeError(f"a materializer returned {result!r}: return sql(...), table writes, a list, or None")


def compile_rows(result: Any) -> list[tuple[str, Sequence[Any]]]:
    """A materializer's result as ``(statement, params)`` pairs: :func:`compile_writes` without
    building an :class:`Sql` for each table write (the hot path of catching up)."""
    kind = type(result)
    if kind is Insert or kind is Update or kind is Delete:
        return [result._compiled()]
    return list(compile_writes(result))


__all__ = ["Delete", "Insert", "Update", "WriteLike", "compile_writes"]
