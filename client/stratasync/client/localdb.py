"""The local SQLite database of a store: state tables, the eventlog, and an undo log.

Everything lives in one SQLite file, so an event and its materialized effect are written in
one transaction: a crash never leaves one without the other.

Rollback of pending events costs in proportion to the events rolled back: while a pending
(not yet confirmed) event is materialized, temporary triggers on every state table record the
inverse of each row change in ``__ss_undo``. Rolling back executes those inverses, newest
first. Events confirmed by the backend keep no undo rows.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from stratasync.client.schema import Schema, Table, Write

INTERNAL_DDL = (
    "CREATE TABLE IF NOT EXISTS __ss_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS __ss_eventlog (
        seq INTEGER PRIMARY KEY,
        parent INTEGER NOT NULL,
        name TEXT NOT NULL,
        event TEXT NOT NULL,
        client_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        pending INTEGER NOT NULL,
        created_at TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS __ss_client_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        args TEXT,
        session_id TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS __ss_undo (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        seq INTEGER NOT NULL,
        tbl TEXT NOT NULL,
        stmt TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS __ss_undo_seq ON __ss_undo (seq)",
)

_encode_json = json.JSONEncoder(separators=(",", ":")).encode
_INSERT_EVENT = (
    "INSERT INTO __ss_eventlog (seq, parent, name, event, client_id, session_id, pending, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

_WRITE_ACTIONS = {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}


def bindable(value: Any) -> Any:
    """``value`` as SQLite can store it: a str with lone surrogates gets U+FFFD in their place.

    JS strings may hold half a surrogate pair (``"\\ud83d"``), JSON carries it as an escape, and
    Python decodes it to a str that ``sqlite3`` refuses to bind (``surrogates not allowed``).
    Table values take the replacement; the eventlog keeps the exact JSON (escapes intact).
    A pair of surrogates (two halves that belong together) becomes the character they encode.
    """
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def bindable_params(params: Sequence[Any]) -> tuple[Any, ...]:
    """:func:`bindable` applied to each parameter."""
    return tuple(bindable(value) for value in params)


@dataclass(frozen=True)
class LoggedEvent:
    """An event of the local eventlog (global sequence numbers)."""

    seq_num: int
    parent_seq_num: int
    name: str
    args: Any
    client_id: str
    session_id: str
    pending: bool
    created_at: str | None = None

    def encoded(self) -> dict[str, Any]:
        """The event as encoded on the wire."""
        return {
            "name": self.name,
            "args": self.args,
            "seqNum": self.seq_num,
            "parentSeqNum": self.parent_seq_num,
            "clientId": self.client_id,
            "sessionId": self.session_id,
        }

    def same_event_as(self, wire: dict[str, Any]) -> bool:
        """True if ``wire`` (from the backend) is this very event."""
        return (
            wire.get("seqNum") == self.seq_num
            and wire.get("name") == self.name
            and wire.get("clientId") == self.client_id
            and wire.get("sessionId") == self.session_id
            and wire.get("args") == self.args
        )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _undo_triggers(table: str, columns: Sequence[str]) -> list[str]:
    """Temporary triggers that log the inverse of each row change while recording is on."""
    q = _quote(table)
    q_literal = q.replace("'", "''")
    insert_literal = ",".join(["rowid", *(_quote(column) for column in columns)]).replace("'", "''")
    literal = "'" + table.replace("'", "''") + "'"
    recording = "(SELECT seq FROM temp.__ss_ctx) IS NOT NULL"
    old_values = " || ',' || ".join(["OLD.rowid", *(f"quote(OLD.{_quote(column)})" for column in columns)])
    assignments = " || ',' || ".join(
        ["'rowid=' || OLD.rowid"]
        + [f"'{_quote(column)}=' || quote(OLD.{_quote(column)})" for column in columns]
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


class LocalDatabase:
    """One SQLite connection, guarded by a re-entrant lock (the store's database lock)."""

    def __init__(self, path: str, schema: Schema, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.schema = schema
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        if path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        # 64 MB of page cache (SQLite's default is 2 MB): catching up on a large log is index-bound.
        self.conn.execute("PRAGMA cache_size=-65536")
        self._tables_written: dict[str, frozenset[str]] = {}
        self._tables_read: dict[str, frozenset[str]] = {}
        self.changed_tables: set[str] = set()
        self._recording: int | None = None
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in INTERNAL_DDL:
                    self.conn.execute(statement)
                self._create_state_tables(schema.tables)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS __ss_ctx (seq INTEGER)")
            self.conn.execute("INSERT INTO temp.__ss_ctx (seq) VALUES (NULL)")
            self._install_triggers(schema.tables)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def _create_state_tables(self, tables: Iterable[Table]) -> None:
        for table in tables:
            exists = self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table.name,)
            ).fetchone()
            if not exists:
                self.conn.execute(table.create_sql)
                for index in table.indexes:
                    self.conn.execute(index)

    def _install_triggers(self, tables: Iterable[Table]) -> None:
        for table in tables:
            columns = [row["name"] for row in self.conn.execute(f"PRAGMA table_info({_quote(table.name)})")]
            for trigger in _undo_triggers(table.name, columns):
                self.conn.execute(trigger)

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (under the lock); :attr:`changed_tables` collects what it touched."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                self.changed_tables.clear()
                self._recording = self._recording_in_db()
                raise

    def _recording_in_db(self) -> int | None:
        row = self.conn.execute("SELECT seq FROM temp.__ss_ctx").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def take_changed_tables(self) -> set[str]:
        with self.lock:
            changed, self.changed_tables = self.changed_tables, set()
            return changed

    # -- materialization ---------------------------------------------------------------------

    def set_recording(self, seq: int | None) -> None:
        """Record undo rows for changes made from now on as belonging to event ``seq`` (None: stop)."""
        if seq != self._recording:
            self.conn.execute("UPDATE temp.__ss_ctx SET seq = ?", (seq,))
            self._recording = seq

    def execute_writes(self, writes: Iterable[Write]) -> None:
        """Run a materializer's writes; str values with lone surrogates are stored via :func:`bindable`."""
        for statement, params in writes:
            try:
                written = self._execute_write(statement, params)
            except UnicodeEncodeError:  # raised while binding, before SQLite ran anything
                written = self._execute_write(statement, bindable_params(params))
            self.changed_tables.update(written)

    def _execute_write(self, statement: str, params: Sequence[Any]) -> frozenset[str]:
        written = self._tables_written.get(statement)
        if written is None:
            written = self._tables_written[statement] = self._analyse(statement, params, _WRITE_ACTIONS)
        else:
            self.conn.execute(statement, params)
        return written

    def _analyse(self, statement: str, params: Sequence[Any], actions: set[int]) -> frozenset[str]:
        """Execute ``statement`` once while noting which state tables it touches."""
        touched: set[str] = set()

        def authorizer(
            action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None
        ) -> int:
            if action in actions and arg1 and not arg1.startswith(("__ss_", "sqlite_")) and source is None:
                touched.add(arg1)
            return sqlite3.SQLITE_OK

        self.conn.set_authorizer(authorizer)
        try:
            # A text the statement cache has not seen, so that SQLite prepares it (and asks us) afresh.
            self.conn.execute(statement + "\n", params)
        finally:
            self.conn.set_authorizer(None)
        return frozenset(touched)

    def tables_read_by(self, statement: str, params: Sequence[Any]) -> frozenset[str]:
        """The state tables a query reads (computed once per statement text)."""
        with self.lock:
            found = self._tables_read.get(statement)
            if found is None:
                found = self._tables_read[statement] = self._analyse(statement, params, {sqlite3.SQLITE_READ})
            return found

    def roll_back_after(self, seq: int) -> int:
        """Undo the effects of every event with seq > ``seq``, newest first; returns undo rows run."""
        rows = self.conn.execute(
            "SELECT id, tbl, stmt FROM __ss_undo WHERE seq > ? ORDER BY id DESC", (seq,)
        ).fetchall()
        self.set_recording(None)
        for row in rows:
            self.conn.execute(row["stmt"])
            self.changed_tables.add(row["tbl"])
        self.conn.execute("DELETE FROM __ss_undo WHERE seq > ?", (seq,))
        return len(rows)

    def forget_undo_through(self, seq: int) -> None:
        """Drop the undo rows of events up to ``seq`` (they are confirmed now)."""
        self.conn.execute("DELETE FROM __ss_undo WHERE seq <= ?", (seq,))

    # -- eventlog and meta -------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM __ss_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self.conn.execute("DELETE FROM __ss_meta WHERE key = ?", (key,))
        else:
            self.conn.execute(
                "INSERT INTO __ss_meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def _insert_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert eventlog rows; names and ids with lone surrogates go in via :func:`bindable`.

        Only the indexed columns (name, clientId, sessionId) are affected: the event's JSON column,
        which is what is read back and pushed, is ASCII with the surrogates escaped.
        """
        self.conn.execute("SAVEPOINT __ss_insert")
        try:
            self.conn.executemany(_INSERT_EVENT, rows)
        except UnicodeEncodeError:  # rows before the offending one are in: start again
            self.conn.execute("ROLLBACK TO __ss_insert")
            self.conn.executemany(_INSERT_EVENT, [bindable_params(row) for row in rows])
        finally:
            self.conn.execute("RELEASE __ss_insert")

    def insert_events(self, events: Iterable[LoggedEvent]) -> None:
        self._insert_rows(
            [
                (
                    event.seq_num,
                    event.parent_seq_num,
                    event.name,
                    _encode_json(event.encoded()),
                    event.client_id,
                    event.session_id,
                    int(event.pending),
                    event.created_at,
                )
                for event in events
            ],
        )

    def insert_upstream(
        self,
        events: Sequence[dict[str, Any]],
        created_at: Sequence[str | None],
        encoded: Sequence[str] | None = None,
    ) -> None:
        """Insert confirmed events as they came from the backend (the hot path of catching up).

        ``encoded``: the events' JSON as received, stored as is (saves encoding them again).
        """
        texts = encoded if encoded is not None else [_encode_json(event) for event in events]
        self._insert_rows(
            [
                (
                    event["seqNum"],
                    event["parentSeqNum"],
                    event["name"],
                    text,
                    event["clientId"],
                    event["sessionId"],
                    0,
                    stamp,
                )
                for event, stamp, text in zip(events, created_at, texts, strict=True)
            ],
        )

    def events(
        self, *, after: int = 0, pending_only: bool = False, limit: int | None = None
    ) -> list[LoggedEvent]:
        query = "SELECT * FROM __ss_eventlog WHERE seq > ?" + (" AND pending = 1" if pending_only else "")
        query += " ORDER BY seq" + (f" LIMIT {int(limit)}" if limit is not None else "")
        events = []
        for row in self.conn.execute(query, (after,)):
            # The JSON column is the event as received or committed, byte for byte.
            encoded = json.loads(row["event"])
            events.append(
                LoggedEvent(
                    seq_num=row["seq"],
                    parent_seq_num=row["parent"],
                    name=encoded.get("name", row["name"]),
                    args=encoded.get("args"),
                    client_id=encoded.get("clientId", row["client_id"]),
                    session_id=encoded.get("sessionId", row["session_id"]),
                    pending=bool(row["pending"]),
                    created_at=row["created_at"],
                )
            )
        return events

    def client_events(self) -> list[tuple[str, Any, str]]:
        """The client-only events committed here, oldest first: (name, args, session id)."""
        rows = self.conn.execute("SELECT name, args, session_id FROM __ss_client_events ORDER BY id")
        return [
            (row["name"], json.loads(row["args"]) if row["args"] is not None else None, row["session_id"])
            for row in rows
        ]

    def reset_state(self) -> None:
        """Empty every state table, the eventlog and the undo log (inside a transaction).

        The client-only events stay, for the caller to materialize again.
        """
        for table in self.schema.tables:
            self.conn.execute(f"DELETE FROM {_quote(table.name)}")
            self.changed_tables.add(table.name)
        for internal in ("__ss_eventlog", "__ss_undo"):
            self.conn.execute(f"DELETE FROM {internal}")
