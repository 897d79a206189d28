"""The write builders of typed tables (``insert``, ``update``, ``delete``), for materializers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from stratasync.client.query import Sql, Table, quote, where_sql


@dataclass(frozen=True)
class Insert:
    """``INSERT`` of one row; ``.on_conflict(column, "ignore" | "replace" | "update", **values)``."""

    table: Table
    values: tuple[tuple[str, Any], ...]
    conflict: tuple[str, str, tuple[tuple[str, Any], ...]] | None = None

    def on_conflict(
        self, column: str, action: Literal["ignore", "replace", "update"], **values: Any
    ) -> Insert:
        """What to do when a row with the same ``column`` (a primary key or unique) exists."""
        self.table.column(column)
        if action not in ("ignore", "replace", "update"):
            raise ValueError(f"on_conflict action is 'ignore', 'replace' or 'update', not {action!r}")
        if (action == "update") != bool(values):
            raise ValueError("on_conflict(..., 'update', column=value, ...) and only it takes values")
        return replace(self, conflict=(column, action, self.table._stored(values)))

    def to_sql(self) -> Sql:
        return Sql(*self._compiled())

    def _compiled(self) -> tuple[str, tuple[Any, ...]]:
        """(statement, params) of :meth:`to_sql`, the text built once per shape of insert."""
        names, params = zip(*self.values) if self.values else ((), ())  # noqa: B905 - pairs
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
            statement = _remember(self.table, key, self._statement(names))
        return statement, params

    def _statement(self, names: tuple[str, ...]) -> str:
        statement = (
            f"INSERT INTO {quote(self.table.name)} ({', '.join(map(quote, names))})"
            f" VALUES ({', '.join('?' * len(names))})"
        )
        if self.conflict is not None:
            column, action, updates = self.conflict
            statement += f" ON CONFLICT ({quote(column)}) DO "
            if action == "ignore":
                statement += "NOTHING"
            elif action == "replace":
                statement += "UPDATE SET " + ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in names)
            else:
                statement += "UPDATE SET " + ", ".join(f"{quote(n)} = ?" for n, _ in updates)
        return statement


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
