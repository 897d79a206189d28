"""Tables with typed columns, and a small query builder (LiveStore's ``State.SQLite.table``).

A :class:`Table` generates its ``CREATE TABLE`` statement, derives a row model (a frozen pydantic
model, :attr:`Table.Row`) and builds the common statements::

    todos.where(completed=False).order_by("text").limit(10)   # a Query: rows of todos.Row
    todos.where("text", "LIKE", "%milk%").first()              # one row or None
    todos.count()                                             # an int
    todos.insert(id="a", text="milk")                         # writes, for materializers
    todos.update(completed=True).where(id="a")
    todos.delete().where(id="a")

Values go through each column's ``to_sql`` (booleans as 0/1, datetimes as ISO text, JSON as text)
and are always bound as parameters, never spliced into the SQL. Raw SQL stays available:
``Table(name, "CREATE TABLE ...")`` and :func:`sql`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, create_model

from stratasync.client.columns import Column

if TYPE_CHECKING:
    from stratasync.client.writes import Delete, Insert, Update

M = TypeVar("M", bound=BaseModel)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = {"=", "!=", "<", "<=", ">", ">=", "LIKE", "NOT LIKE", "GLOB", "IN", "NOT IN", "IS", "IS NOT"}


class Sql(NamedTuple):
    """One SQL statement with its parameters: a materializer's write, or a raw read query."""

    statement: str
    params: tuple[Any, ...]


#: The name materializers have used for :class:`Sql` since the first release.
Write = Sql


def sql(statement: str, *params: Any) -> Sql:
    """Raw SQL: ``sql("UPDATE todos SET text = ? WHERE id = ?", text, todo_id)``."""
    return Sql(statement, params)


class TableRow(BaseModel):
    """The base of the row models tables derive: frozen, and printed with their class name."""

    model_config = ConfigDict(frozen=True)

    def __str__(self) -> str:
        return repr(self)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


class Table:
    """A state table: ``Table(name, {column: col.text(...), ...})``, or ``Table(name, "CREATE TABLE ...")``.

    Typed tables (a dict of columns) generate their DDL, give rows back as :attr:`Row` models
    and build queries and writes. Raw tables (a ``CREATE TABLE`` statement) are queried and
    written with :func:`sql`. Every table must have rowids (no ``WITHOUT ROWID``): rebases undo
    row changes by rowid. ``indexes``: ``CREATE INDEX`` statements run with the table's creation.
    ``row_name`` names the derived row model (default: ``TodosRow`` for ``todos``); ``row_model``
    gives one of the app's own instead (rows are validated into it).
    """

    def __init__(
        self,
        name: str,
        columns: Mapping[str, Column] | str,
        *,
        indexes: Sequence[str] = (),
        row_model: type[BaseModel] | None = None,
        row_name: str | None = None,
    ) -> None:
        if not _NAME.fullmatch(name) or name.startswith("__ss_"):
            raise ValueError(f"invalid table name {name!r}")
        self.name = name
        self.indexes = tuple(indexes)
        if isinstance(columns, str):
            if "without rowid" in columns.lower():
                raise ValueError(f"table {name}: WITHOUT ROWID tables cannot be rolled back")
            self.columns: dict[str, Column] = {}
            self.create_sql = columns
            self._row: type[BaseModel] | None = row_model
            self._derived = False
            self._init_writes()
            return
        if not columns:
            raise ValueError(f"table {name}: no columns")
        for column_name in columns:
            if not _NAME.fullmatch(column_name):
                raise ValueError(f"table {name}: invalid column name {column_name!r}")
        if sum(column.primary_key for column in columns.values()) > 1:
            raise ValueError(f"table {name}: more than one primary key column")
        self.columns = dict(columns)
        self.create_sql = (
            f"CREATE TABLE {quote(name)} ("
            + ", ".join(column.ddl(column_name) for column_name, column in self.columns.items())
            + ")"
        )
        self._derived = row_model is None
        self._init_writes()
        self._row = row_model or create_model(  # type: ignore[call-overload]
            row_name or _camel(name) + "Row",
            __base__=TableRow,
            **{
                column_name: (column.python_type | None if column.nullable else column.python_type, ...)
                for column_name, column in self.columns.items()
            },
        )

    def _init_writes(self) -> None:
        """What the write builders need on every call, computed once."""
        #: The columns an insert must name (no default, not nullable), in column order.
        self._required = tuple(
            name for name, column in self.columns.items() if not (column.nullable or column.has_default)
        )
        #: Each column's ``to_sql``, or None where values are stored as they are.
        self._converters: dict[str, Callable[[Any], Any] | None] = {
            name: None if column.stores_as_is else column.to_sql for name, column in self.columns.items()
        }
        self._names = frozenset(self.columns)
        self._converted = frozenset(name for name, convert in self._converters.items() if convert is not None)
        #: The SQL text of each shape of write built on this table (see :mod:`stratasync.client.writes`).
        self._statements: dict[Any, str] = {}
        #: What inserts of each tuple of column names share (see :meth:`_insert_shape`).
        self._insert_shapes: dict[
            tuple[str, ...], tuple[str, tuple[Callable[[Any], Any] | None, ...] | None]
        ] = {}

    def __repr__(self) -> str:
        return f"Table({self.name!r})"

    @property
    def typed(self) -> bool:
        """True for a table defined by typed columns."""
        return bool(self.columns)

    @property
    def Row(self) -> type[BaseModel]:  # noqa: N802 - a class, named like one
        """The row model: a frozen pydantic model with one field per column."""
        if self._row is None:
            raise TypeError(f"table {self.name} is defined by raw SQL: it has no row model")
        return self._row

    def column(self, name: str) -> Column:
        if not self.typed:
            raise TypeError(f"table {self.name} is defined by raw SQL: use sql() to query or write it")
        try:
            return self.columns[name]
        except KeyError:
            raise ValueError(f"table {self.name} has no column {name!r}") from None

    def load_row(self, row: Mapping[str, Any]) -> BaseModel:
        """A stored row as a :attr:`Row` (each value through its column's ``from_sql``)."""
        values = {name: column.load(row[name]) for name, column in self.columns.items()}
        if self._derived:  # the values are what the columns hold: no need to validate them again
            return self.Row.model_construct(**values)
        return self.Row(**values)

    # -- queries (each returns a new Query) ---------------------------------------------------

    def query(self) -> Query:
        """Every row (the same as passing the table itself to ``store.query``)."""
        if not self.typed:
            raise TypeError(f"table {self.name} is defined by raw SQL: use sql() to query it")
        return Query(self)

    def where(self, *condition: Any, **equal: Any) -> Query:
        return self.query().where(*condition, **equal)

    def order_by(self, column: str, direction: Literal["asc", "desc"] = "asc") -> Query:
        return self.query().order_by(column, direction)

    def limit(self, count: int) -> Query:
        return self.query().limit(count)

    def first(self) -> Query:
        return self.query().first()

    def count(self) -> Query:
        return self.query().count()

    # -- writes (for materializers) -----------------------------------------------------------

    def insert(self, **values: Any) -> Insert:
        """``INSERT`` one row; columns left out take their defaults (``NOT NULL`` ones must be given)."""
        names = tuple(values)
        shape = self._insert_shapes.get(names)
        if shape is None:
            shape = self._insert_shape(names)
        statement, converters = shape
        if converters is None:  # each value stored as it is
            return _writes.new_insert(self, names, tuple(values.values()), statement)
        params = tuple(
            [
                value if value is None or convert is None else convert(value)
                for value, convert in zip(values.values(), converters, strict=True)
            ]
        )
        return _writes.new_insert(self, names, params, statement)

    def _insert_shape(
        self, names: tuple[str, ...]
    ) -> tuple[str, tuple[Callable[[Any], Any] | None, ...] | None]:
        """What every insert of columns ``names`` shares, checked once: (its statement's text, each
        column's ``to_sql`` or None where no column converts); raises for a wrong set of columns."""
        for name in self._required:
            if name not in names:
                raise ValueError(f"insert into {self.name}: column {name!r} is required")
        for name in names:
            self.column(name)  # raises what an unknown column (or a raw table) raises
        converters = tuple(self._converters[name] for name in names)
        shape = (
            _writes.insert_statement(self, names, None),
            None if all(convert is None for convert in converters) else converters,
        )
        if len(self._insert_shapes) < _writes.MAX_REMEMBERED_STATEMENTS:
            self._insert_shapes[names] = shape
        return shape

    def update(self, **values: Any) -> Update:
        """``UPDATE`` the given columns (of every row, unless narrowed with ``.where(...)``)."""
        if not values:
            raise ValueError(f"update of {self.name}: no columns to set")
        return _writes.Update(self, self._stored(values))

    def delete(self) -> Delete:
        """``DELETE`` rows (every row, unless narrowed with ``.where(...)``)."""
        return _writes.Delete(self)

    def _stored(self, values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
        """``(column, value as stored)`` pairs (each value through its column's ``to_sql``)."""
        if values.keys() <= self._names and self._converted.isdisjoint(values):
            return tuple(values.items())  # each value stored as it is
        converters = self._converters
        try:
            return tuple(
                [
                    (name, value if value is None or (to_sql := converters[name]) is None else to_sql(value))
                    for name, value in values.items()
                ]
            )
        except KeyError:
            for name in values:
                self.column(name)  # raises what an unknown column (or a raw table) raises
            raise

    def _condition(
        self, condition: Sequence[Any], equal: Mapping[str, Any]
    ) -> tuple[tuple[str, str, Any], ...]:
        terms: list[tuple[str, str, Any]] = []
        if condition:
            if len(condition) != 3:
                raise TypeError("where() takes (column, operator, value) or column=value keywords")
            name, operator, value = condition
            terms.append((name, operator.upper(), value))
        for name, value in equal.items():
            if value is None:
                terms.append((name, "IS", None))
            elif isinstance(value, list | tuple | set | frozenset):
                terms.append((name, "IN", value))
            else:
                terms.append((name, "=", value))
        checked = []
        for name, operator, value in terms:
            if operator not in _OPERATORS:
                raise ValueError(f"unknown operator {operator!r} (one of {', '.join(sorted(_OPERATORS))})")
            column = self.column(name)
            stored = (
                tuple(column.store(item) for item in value)
                if operator in ("IN", "NOT IN")
                else column.store(value)
            )
            checked.append((name, operator, stored))
        return tuple(checked)


def where_sql(terms: Iterable[tuple[str, str, Any]]) -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    for name, operator, value in terms:
        if operator in ("IN", "NOT IN"):
            parts.append(f"{quote(name)} {operator} ({', '.join('?' * len(value))})")
            params.extend(value)
        else:
            parts.append(f"{quote(name)} {operator} ?")
            params.append(value)
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


@dataclass(frozen=True)
class Query:
    """A read query on a typed table; immutable: each method returns a new one."""

    table: Table
    terms: tuple[tuple[str, str, Any], ...] = ()
    order: tuple[tuple[str, str], ...] = ()
    limit_count: int | None = None
    offset_count: int | None = None
    mode: Literal["rows", "first", "count"] = "rows"

    def where(self, *condition: Any, **equal: Any) -> Query:
        """Narrow: ``where(id="a")``, ``where(done=[True, False])`` (IN), ``where(x=None)`` (IS NULL),
        or ``where("text", "LIKE", "%milk%")``; several calls are joined with AND."""
        return replace(self, terms=self.terms + self.table._condition(condition, equal))

    def order_by(self, column: str, direction: Literal["asc", "desc"] = "asc") -> Query:
        """Order by ``column``; several calls order by each in turn."""
        self.table.column(column)
        if direction.lower() not in ("asc", "desc"):
            raise ValueError(f"direction is 'asc' or 'desc', not {direction!r}")
        return replace(self, order=(*self.order, (column, direction.upper())))

    def limit(self, count: int) -> Query:
        return replace(self, limit_count=int(count))

    def offset(self, count: int) -> Query:
        return replace(self, offset_count=int(count))

    def first(self) -> Query:
        """The first row, or None when there is none."""
        return replace(self, mode="first", limit_count=1)

    def count(self) -> Query:
        """The number of rows (an int)."""
        return replace(self, mode="count")

    def to_sql(self) -> Sql:
        where, params = where_sql(self.terms)
        what = "COUNT(*)" if self.mode == "count" else ", ".join(quote(name) for name in self.table.columns)
        statement = f"SELECT {what} FROM {quote(self.table.name)}{where}"
        if self.order and self.mode != "count":
            statement += " ORDER BY " + ", ".join(f"{quote(name)} {way}" for name, way in self.order)
        if self.limit_count is not None or self.offset_count is not None:
            statement += " LIMIT ?"
            params.append(self.limit_count if self.limit_count is not None else -1)
        if self.offset_count is not None:
            statement += " OFFSET ?"
            params.append(self.offset_count)
        return Sql(statement, tuple(params))

    def decode(self, rows: Sequence[Any]) -> Any:
        """The result of this query from its SQLite rows."""
        if self.mode == "count":
            return int(rows[0][0])
        loaded = [self.table.load_row(row) for row in rows]
        if self.mode == "first":
            return loaded[0] if loaded else None
        return loaded


QueryLike = Query | Table | Sql | str
"""What :meth:`Store.query` and :meth:`Store.subscribe` take: a table's query, a table (all its
rows), raw SQL as ``sql(statement, *params)``, or an SQL string (with ``params=``)."""


def compile_query(
    query: QueryLike,
    params: Sequence[Any],
    legacy: tuple[Any, ...],
    model: type[M] | None,
    method: str,
) -> tuple[str, tuple[Any, ...], Callable[[list[Any]], Any]]:
    """(statement, parameters, decode rows into the result) of anything ``Store.query`` takes."""
    if legacy:
        if len(legacy) > 1 or params:
            raise TypeError(f"{method}() takes the query's parameters once, as params=...")
        warnings.warn(f"pass {method}()'s parameters as params=...", DeprecationWarning, stacklevel=3)
        params = legacy[0]
    if isinstance(query, Table):
        query = query.query()
    if isinstance(query, Query):
        if params:
            raise TypeError("a table query carries its own parameters")
        statement, bound = query.to_sql()
        decode_typed = query.decode
        if model is None:
            return statement, bound, decode_typed
        return statement, bound, lambda rows: _as_models(decode_typed(rows), model)
    if isinstance(query, Sql):
        if params:
            raise TypeError("sql(...) carries its own parameters")
        statement, bound = query.statement, tuple(query.params)
    elif isinstance(query, str):
        statement, bound = query, tuple(params)
    else:
        raise TypeError(f"{method}() takes a table, a table query, sql(...) or a str, not {query!r}")
    if model is None:
        return statement, bound, lambda rows: rows
    return statement, bound, lambda rows: [model.model_validate(dict(row)) for row in rows]


def _as_models(result: Any, model: type[M]) -> Any:
    if result is None or isinstance(result, int):
        return result
    if isinstance(result, BaseModel):
        return model.model_validate(result.model_dump())
    return [model.model_validate(row.model_dump()) for row in result]


__all__ = [
    "Query",
    "QueryLike",
    "Sql",
    "Table",
    "TableRow",
    "Write",
    "compile_query",
    "sql",
]

# The write builders (``Table.insert`` and friends build them) live in writes.py, which imports this
# module: bound once both modules exist.
from stratasync.client import writes as _writes  # noqa: E402
