"""The local SQLite database of a store: state tables, the eventlog, meta, and every SQL statement.

Everything lives in one SQLite file, so an event and its materialized effect are written in
one transaction: a crash never leaves one without the other. This module is the only place of
the client that writes SQL (apart from the app's own queries and materializers, which it runs);
the undo log of pending events is :mod:`stratasync.client.undolog`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from stratasync.client import jsoncodec
from stratasync.client.events import LoggedEvent
from stratasync.client.undolog import DDL as UNDO_DDL
from stratasync.client.undolog import UndoLog, quote

if TYPE_CHECKING:
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
    *UNDO_DDL,
)

_INSERT_EVENT = (
    "INSERT INTO __ss_eventlog (seq, parent, name, event, client_id, session_id, pending, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
#: From this many writes on, :meth:`LocalDatabase.execute_write_runs` drops the undo triggers while
#: it runs them (they record nothing then, and cost more than the writes; see
#: :meth:`UndoLog.suspended <stratasync.client.undolog.UndoLog.suspended>`).
SUSPEND_UNDO_TRIGGERS_AT = 200
#: WAL pages between checkpoints while bulk loading (64 MB at 4 KB pages), see
#: :meth:`LocalDatabase.bulk_loading`.
BULK_WAL_AUTOCHECKPOINT = 16_384
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


class Row(sqlite3.Row):
    """A row of a raw SQL query: by index (``row[0]``), by column (``row["text"]``), ``dict(row)``,
    and printed readably: ``Row(id='a', text='milk')``."""

    def __repr__(self) -> str:
        return "Row(" + ", ".join(f"{key}={self[key]!r}" for key in self.keys()) + ")"


class LocalDatabase:
    """One SQLite connection, guarded by a re-entrant lock (the store's database lock)."""

    def __init__(self, path: str, schema: Schema, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.schema = schema
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = Row
        if path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        # 64 MB of page cache (SQLite's default is 2 MB): catching up on a large log is index-bound.
        self.conn.execute("PRAGMA cache_size=-65536")
        self._tables_written: dict[str, frozenset[str]] = {}
        self._tables_read: dict[str, frozenset[str]] = {}
        self.changed_tables: set[str] = set()
        self.undo = UndoLog(self.conn)
        with self.lock:
            with self.transaction():
                for statement in INTERNAL_DDL:
                    self.conn.execute(statement)
                self._create_state_tables(schema.tables)
            self.undo.install(table.name for table in schema.tables)

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

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (under the lock); :attr:`changed_tables` collects what it touched."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                self.undo.record_as(None)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                self.changed_tables.clear()
                self.undo.resync()
                raise

    @contextmanager
    def bulk_loading(self) -> Iterator[None]:
        """Settings for writing many pages of events (a bootstrap), restored after.

        WAL checkpoints every ``BULK_WAL_AUTOCHECKPOINT`` pages rather than SQLite's 1,000: each
        checkpoint syncs the WAL and the database file, and a bootstrap writing hundreds of MB
        would otherwise pay that every 4 MB. Crash safety is the same: every committed
        transaction is in the WAL, however long it grows before the checkpoint.
        """
        with self.lock:
            (previous,) = self.conn.execute("PRAGMA wal_autocheckpoint").fetchone()
            self.conn.execute(f"PRAGMA wal_autocheckpoint={BULK_WAL_AUTOCHECKPOINT}")
            try:
                yield
            finally:
                self.conn.execute(f"PRAGMA wal_autocheckpoint={int(previous)}")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested part of a transaction: an exception rolls back just this part (and propagates)."""
        self.conn.execute("SAVEPOINT __ss_part")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK TO __ss_part")
            self.undo.resync()
            raise
        finally:
            self.conn.execute("RELEASE __ss_part")

    def take_changed_tables(self) -> set[str]:
        with self.lock:
            changed, self.changed_tables = self.changed_tables, set()
            return changed

    # -- state tables ------------------------------------------------------------------------

    def execute_writes(self, writes: Iterable[Write], *, record_as: int | None) -> None:
        """Run a materializer's writes, recording undo rows for event ``record_as`` (None: none).

        str values with lone surrogates are stored via :func:`bindable`.
        """
        self.undo.record_as(record_as)
        for statement, params in writes:
            try:
                written = self._execute_write(statement, params)
            except UnicodeEncodeError:  # raised while binding, before SQLite ran anything
                written = self._execute_write(statement, bindable_params(params))
            self.changed_tables.update(written)

    def execute_write_runs(self, runs: Iterable[tuple[str, list[Sequence[Any]]]]) -> None:
        """Run writes without undo rows, each run being one statement executed with each of its
        parameter rows in turn (``executemany``): what :meth:`execute_writes` does for the same
        writes one by one, with each statement bound to its prepared form once per run.

        A str with lone surrogates is not rewritten here: the ``UnicodeEncodeError`` propagates
        (with the runs before it executed), for the caller to roll back and take the one-by-one way.
        """
        self.undo.record_as(None)
        runs = list(runs)
        many = sum(len(rows) for _, rows in runs) >= SUSPEND_UNDO_TRIGGERS_AT
        executemany = self.conn.executemany
        with self.undo.suspended() if many else nullcontext():
            for statement, rows in runs:
                written = self._tables_written.get(statement)
                if written is None:
                    written = self._analyse(statement, rows[0], _WRITE_ACTIONS)
                    self._tables_written[statement] = written
                    if len(rows) > 1:
                        executemany(statement, rows[1:])
                elif len(rows) == 1:
                    self.conn.execute(statement, rows[0])
                else:
                    executemany(statement, rows)
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
                found = self._tables_read[statement] = self._analyse(
                    statement, bindable_params(params), {sqlite3.SQLITE_READ}
                )
            return found

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read query; a str parameter with lone surrogates is bound as tables store it."""
        with self.lock:
            try:
                return self.conn.execute(statement, tuple(params)).fetchall()
            except UnicodeEncodeError:
                return self.conn.execute(statement, bindable_params(params)).fetchall()

    def roll_back_after(self, seq: int) -> None:
        """Undo the effects of every event with seq > ``seq``, newest first."""
        self.changed_tables.update(self.undo.roll_back_after(seq))

    def rebuild_state_tables(self) -> None:
        """Drop and create every state table of the schema, empty (inside a transaction)."""
        self.undo.record_as(None)
        for table in self.schema.tables:
            self.conn.execute(f"DROP TABLE IF EXISTS {quote(table.name)}")
            self.changed_tables.add(table.name)
        self._create_state_tables(self.schema.tables)
        self.undo.install_triggers(table.name for table in self.schema.tables)
        self.undo.clear()

    def reset_state(self) -> None:
        """Empty every state table, the eventlog and the undo log (inside a transaction).

        The client-only events stay, for the caller to materialize again.
        """
        self.undo.record_as(None)
        for table in self.schema.tables:
            self.conn.execute(f"DELETE FROM {quote(table.name)}")
            self.changed_tables.add(table.name)
        self.conn.execute("DELETE FROM __ss_eventlog")
        self.undo.clear()

    # -- meta --------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM __ss_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str | int | None) -> None:
        if value is None:
            self.conn.execute("DELETE FROM __ss_meta WHERE key = ?", (key,))
        else:
            self.conn.execute(
                "INSERT INTO __ss_meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, str(value)),
            )

    def upstream_head(self) -> int:
        """The seqNum of the newest event the backend has confirmed."""
        with self.lock:
            return int(self.meta("upstream_head") or 0)

    def backend_id(self) -> str | None:
        with self.lock:
            return self.meta("backend_id")

    def rebase_generation(self) -> int:
        with self.lock:
            return int(self.meta("rebase_generation") or 0)

    def count_rebase(self) -> None:
        """One more rebase of the pending events (inside a transaction)."""
        self.set_meta("rebase_generation", self.rebase_generation() + 1)

    # -- eventlog ----------------------------------------------------------------------------

    def local_head(self) -> int:
        """The seqNum of the newest event in the local eventlog (pending or not)."""
        with self.lock:
            row = self.conn.execute("SELECT MAX(seq) FROM __ss_eventlog").fetchone()
            return max(int(row[0] or 0), self.upstream_head())

    def pending_count(self) -> int:
        with self.lock:
            row = self.conn.execute("SELECT COUNT(*) FROM __ss_eventlog WHERE pending = 1").fetchone()
            return int(row[0])

    def _insert_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert eventlog rows; names and ids with lone surrogates go in via :func:`bindable`.

        Only the indexed columns (name, clientId, sessionId) are affected: the event's JSON column,
        which is what is read back and pushed, keeps the surrogates as escapes.
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
                    jsoncodec.dumps(event.encoded()),
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
        texts = encoded if encoded is not None else [jsoncodec.dumps(event) for event in events]
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
        with self.lock:
            rows = self.conn.execute(query, (after,)).fetchall()
        for row in rows:
            # The JSON column is the event as received or committed, byte for byte.
            encoded = jsoncodec.loads(row["event"])
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

    def pending_events(self, limit: int | None = None) -> list[LoggedEvent]:
        """The pending events after the upstream head, oldest first."""
        with self.lock:
            return self.events(after=self.upstream_head(), pending_only=True, limit=limit)

    def confirm(self, pending: Sequence[LoggedEvent], created_at: Sequence[str | None]) -> None:
        """Mark ``pending`` events confirmed (with the backend's timestamps) and drop their undo rows."""
        if not pending:
            return
        self.conn.executemany(
            "UPDATE __ss_eventlog SET pending = 0, created_at = ? WHERE seq = ?",
            [(stamp, event.seq_num) for event, stamp in zip(pending, created_at, strict=True)],
        )
        self.undo.forget_through(pending[-1].seq_num)

    def delete_events_after(self, seq: int) -> None:
        """Remove the events after ``seq`` from the eventlog (their effects are rolled back already)."""
        self.conn.execute("DELETE FROM __ss_eventlog WHERE seq > ?", (seq,))

    def insert_client_events(self, events: Iterable[tuple[str, str, str]]) -> None:
        """Log client-only events: (name, args JSON, session id)."""
        self.conn.executemany(
            "INSERT INTO __ss_client_events (name, args, session_id) VALUES (?, ?, ?)", events
        )

    def client_events(self) -> list[tuple[str, Any, str]]:
        """The client-only events committed here, oldest first: (name, args, session id)."""
        with self.lock:
            rows = self.conn.execute("SELECT name, args, session_id FROM __ss_client_events ORDER BY id")
            return [
                (name, jsoncodec.loads(args) if args is not None else None, session)
                for name, args, session in rows
            ]


__all__ = ["LocalDatabase", "LoggedEvent", "Row", "bindable", "bindable_params"]
