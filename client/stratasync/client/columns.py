"""Typed columns of a :class:`~stratasync.client.Table` (LiveStore's ``State.SQLite.text`` and friends).

::

    from stratasync.client import Table, col

    todos = Table("todos", {
        "id": col.text(primary_key=True),
        "text": col.text(default=""),
        "completed": col.boolean(default=False),
        "deleted_at": col.datetime(nullable=True),
    })

Each column knows its SQLite type, how a Python value is stored (``to_sql``) and read back
(``from_sql``): booleans are stored as 0 and 1 and come back as ``bool``; ``json`` columns hold JSON
text and come back decoded; ``datetime`` columns hold ISO-8601 text in UTC with milliseconds (as
JavaScript's ``Date.toISOString()`` writes it) and come back as timezone-aware ``datetime``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stratasync.client import jsoncodec
from stratasync.client.isodate import format_iso, parse_iso


class _Missing:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


#: The ``default`` of a column that has none.
NO_DEFAULT: Any = _Missing()


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Column:
    """One column: its SQLite type, Python type and options. Build them with the functions below."""

    sql_type: str
    python_type: Any
    primary_key: bool = False
    nullable: bool = False
    default: Any = NO_DEFAULT
    to_sql: Callable[[Any], Any] = field(default=_same, repr=False, compare=False)
    from_sql: Callable[[Any], Any] = field(default=_same, repr=False, compare=False)

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT

    def store(self, value: Any) -> Any:
        """``value`` as SQLite stores it in this column (None stays NULL)."""
        return None if value is None else self.to_sql(value)

    @property
    def stores_as_is(self) -> bool:
        """True when every value is stored as it is given (no ``to_sql`` conversion)."""
        return self.to_sql is _same

    def load(self, value: Any) -> Any:
        """A stored value as Python reads it back (NULL is None)."""
        return None if value is None else self.from_sql(value)

    def ddl(self, name: str) -> str:
        """This column's part of a ``CREATE TABLE`` statement."""
        parts = [_quote(name), self.sql_type]
        if self.primary_key:
            parts.append("PRIMARY KEY")
        if not self.nullable:
            parts.append("NOT NULL")
        if self.has_default:
            parts.append(f"DEFAULT {_literal(self.store(self.default))}")
        return " ".join(parts)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _options(primary_key: bool, nullable: bool, default: Any) -> dict[str, Any]:
    if primary_key and nullable:
        raise ValueError("a primary key cannot be nullable")
    return {"primary_key": primary_key, "nullable": nullable, "default": default}


def text(*, primary_key: bool = False, nullable: bool = False, default: Any = NO_DEFAULT) -> Column:
    """A ``TEXT`` column of ``str``."""
    return Column("TEXT", str, **_options(primary_key, nullable, default))


def integer(*, primary_key: bool = False, nullable: bool = False, default: Any = NO_DEFAULT) -> Column:
    """An ``INTEGER`` column of ``int``."""
    return Column("INTEGER", int, **_options(primary_key, nullable, default))


def real(*, nullable: bool = False, default: Any = NO_DEFAULT) -> Column:
    """A ``REAL`` column of ``float``."""
    return Column("REAL", float, **_options(False, nullable, default), to_sql=float)


def boolean(*, nullable: bool = False, default: Any = NO_DEFAULT) -> Column:
    """A ``bool`` column, stored as ``INTEGER`` 0 or 1."""
    return Column(
        "INTEGER", bool, **_options(False, nullable, default), to_sql=lambda v: int(bool(v)), from_sql=bool
    )


def json(*, nullable: bool = False, default: Any = NO_DEFAULT) -> Column:
    """A column of any JSON value (dicts, lists, ...), stored as JSON ``TEXT``."""
    return Column(
        "TEXT", Any, **_options(False, nullable, default), to_sql=jsoncodec.dumps, from_sql=jsoncodec.loads
    )


def datetime(*, primary_key: bool = False, nullable: bool = False, default: Any = NO_DEFAULT) -> Column:
    """An aware ``datetime`` column, stored as ISO-8601 ``TEXT`` in UTC (``2026-01-02T03:04:05.006Z``).

    Stored this way, ``ORDER BY`` and comparisons order by time. Naive datetimes are refused.
    """
    return Column(
        "TEXT",
        _dt.datetime,
        **_options(primary_key, nullable, default),
        to_sql=format_iso,
        from_sql=parse_iso,
    )


__all__ = ["NO_DEFAULT", "Column", "boolean", "datetime", "integer", "json", "real", "text"]
