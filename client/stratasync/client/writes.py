"""The write builders of typed tables (``insert``, ``update``, ``delete``), for materializers."""

from __future__ import annotations

from collections.abc import Iterable
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
        names = [name for name, _ in self.values]
        params = [value for _, value in self.values]
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
                params.extend(value for _, value in updates)
        return Sql(statement, tuple(params))


@dataclass(frozen=True)
class Update:
    """``UPDATE`` of some columns; narrow it with ``.where(...)`` (as :meth:`Query.where`)."""

    table: Table
    values: tuple[tuple[str, Any], ...]
    terms: tuple[tuple[str, str, Any], ...] = field(default=())

    def where(self, *condition: Any, **equal: Any) -> Update:
        return replace(self, terms=self.terms + self.table._condition(condition, equal))

    def to_sql(self) -> Sql:
        where, params = where_sql(self.terms)
        assignments = ", ".join(f"{quote(name)} = ?" for name, _ in self.values)
        return Sql(
            f"UPDATE {quote(self.table.name)} SET {assignments}{where}",
            tuple([value for _, value in self.values] + params),
        )


@dataclass(frozen=True)
class Delete:
    """``DELETE`` of rows; narrow it with ``.where(...)`` (as :meth:`Query.where`)."""

    table: Table
    terms: tuple[tuple[str, str, Any], ...] = field(default=())

    def where(self, *condition: Any, **equal: Any) -> Delete:
        return replace(self, terms=self.terms + self.table._condition(condition, equal))

    def to_sql(self) -> Sql:
        where, params = where_sql(self.terms)
        return Sql(f"DELETE FROM {quote(self.table.name)}{where}", tuple(params))


WriteLike = Sql | Insert | Update | Delete
"""What a materializer may return: one of these, a list of them, or None (no change)."""


def compile_writes(result: Any) -> list[Sql]:
    """A materializer's result as a list of :class:`Sql` statements."""
    if result is None:
        return []
    if isinstance(result, Sql):
        return [result]
    if isinstance(result, Insert | Update | Delete):
        return [result.to_sql()]
    if isinstance(result, Iterable) and not isinstance(result, str | bytes):
        return [write for item in result for write in compile_writes(item)]
    raise TypeError(f"a materializer returned {result!r}: return sql(...), table writes, a list, or None")


__all__ = ["Delete", "Insert", "Update", "WriteLike", "compile_writes"]
