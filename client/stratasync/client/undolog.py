"""The undo log: how a pending event's effects are rolled back at the cost of what it changed.

While a pending (not yet confirmed) event is materialized, temporary triggers on every state
table record the inverse of each row change in ``__ss_undo`` (``DELETE`` for an insert, the old
row for a delete or an update), keyed by the event's seqNum. Rolling back executes those inverses,
newest first. Events confirmed by the backend keep no undo rows, so catching up costs nothing
extra and a rebase never replays the log. State tables must have rowids.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

DDL = (
    """CREATE TABLE IF NOT EXISTS __ss_undo (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        seq INTEGER NOT NULL,
        tbl TEXT NOT NULL,
        stmt TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS __ss_undo_seq ON __ss_undo (seq)",
)


def quote(name: str) -> str:
    """``name`` as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def undo_triggers(table: str, columns: Sequence[str]) -> list[str]:
    """Temporary triggers that log the inverse of each row change while recording is on."""
    q = quote(table)
    q_literal = q.replace("'", "''")
    insert_literal = ",".join(["rowid", *(quote(column) for column in columns)]).replace("'", "''")
    literal = "'" + table.replace("'", "''") + "'"
    recording = "(SELECT seq FROM temp.__ss_ctx) IS NOT NULL"
    old_values = " || ',' || ".join(["OLD.rowid", *(f"quote(OLD.{quote(column)})" for column in columns)])
    assignments = " || ',' || ".join(
        ["'rowid=' || OLD.rowid"]
        + [f"'{quote(column)}=' || quote(OLD.{quote(column)})" for column in columns]
    )
    return [
        f"""CREATE TEMP TRIGGER IF NOT EXISTS __ss_undo_ins_{table} AFTER INSERT ON main.{q} WHEN {recording}
        BEGIN INSERT INTO __ss_undo (seq, tbl, stmt) VALUES ((SELECT seq FROM temp.__ss_ctx), {literal},
            'DELETE FROM {q_literal} WHERE rowid=' || NEW.rowid); END""",
        f"""CREATE TEMP TRIGGER IF NOT EXISTS __ss_undo_del_{table} AFTER DELETE ON main.{q} WHEN {recording}
        BEGIN INSERT INTO __ss_undo (seq, tbl, stmt) VALUES ((SELECT seq FROM temp.__ss_ctx), {literal},
            'INSERT INTO {q_literal} ({insert_literal}) VALUES (' || {old_values} || ')');
        END""",
        f"""CREATE TEMP TRIGGER IF NOT EXISTS __ss_undo_upd_{table} AFTER UPDATE ON main.{q} WHEN {recording}
        BEGIN INSERT INTO __ss_undo (seq, tbl, stmt) VALUES ((SELECT seq FROM temp.__ss_ctx), {literal},
            'UPDATE {q_literal} SET ' || {assignments} || ' WHERE rowid=' || NEW.rowid); END""",
    ]


class UndoLog:
    """The undo rows of one connection, and the seqNum changes are recorded for right now."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._recording: int | None = None
        #: The triggers installed, by table: their names and their ``CREATE`` statements.
        self._triggers: dict[str, tuple[list[str], list[str]]] = {}

    def install(self, tables: Iterable[str]) -> None:
        """Create the session's context table and the triggers on ``tables`` (once per connection)."""
        self._conn.execute("CREATE TEMP TABLE IF NOT EXISTS __ss_ctx (seq INTEGER)")
        self._conn.execute("INSERT INTO temp.__ss_ctx (seq) VALUES (NULL)")
        self.install_triggers(tables)

    def install_triggers(self, tables: Iterable[str]) -> None:
        """The triggers on ``tables`` (again after a table was dropped and created anew)."""
        for table in tables:
            columns = [row[1] for row in self._conn.execute(f"PRAGMA table_info({quote(table)})")]
            statements = undo_triggers(table, columns)
            for trigger in statements:
                self._conn.execute(trigger)
            names = [f"__ss_undo_{kind}_{table}" for kind in ("ins", "del", "upd")]
            self._triggers[table] = (names, statements)

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """The triggers dropped for a while (inside a transaction), created again after.

        For many writes while nothing is recorded (catching up): a trigger costs its ``WHEN``
        test on every row it could record, several times what inserting the row costs. A
        rollback brings the triggers back as well (the temp schema is part of the transaction).
        """
        for names, _ in self._triggers.values():
            for name in names:
                self._conn.execute(f"DROP TRIGGER IF EXISTS temp.{quote(name)}")
        try:
            yield
        finally:
            for _, statements in self._triggers.values():
                for statement in statements:
                    self._conn.execute(statement)

    def record_as(self, seq: int | None) -> None:
        """Record undo rows for changes made from now on as belonging to event ``seq`` (None: stop)."""
        if seq != self._recording:
            self._conn.execute("UPDATE temp.__ss_ctx SET seq = ?", (seq,))
            self._recording = seq

    def resync(self) -> None:
        """Read back what is being recorded (after a rollback restored the context table)."""
        row = self._conn.execute("SELECT seq FROM temp.__ss_ctx").fetchone()
        self._recording = None if row is None or row[0] is None else int(row[0])

    def roll_back_after(self, seq: int) -> set[str]:
        """Undo the effects of every event with seq > ``seq``, newest first; returns the tables touched."""
        rows = self._conn.execute(
            "SELECT id, tbl, stmt FROM __ss_undo WHERE seq > ? ORDER BY id DESC", (seq,)
        ).fetchall()
        self.record_as(None)
        touched = set()
        for _id, table, statement in rows:
            self._conn.execute(statement)
            touched.add(table)
        self._conn.execute("DELETE FROM __ss_undo WHERE seq > ?", (seq,))
        return touched

    def forget_through(self, seq: int) -> None:
        """Drop the undo rows of events up to ``seq`` (they are confirmed now)."""
        self._conn.execute("DELETE FROM __ss_undo WHERE seq <= ?", (seq,))

    def clear(self) -> None:
        """Drop every undo row."""
        self._conn.execute("DELETE FROM __ss_undo")
