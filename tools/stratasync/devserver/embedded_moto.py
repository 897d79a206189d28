"""moto in server mode on a loopback port, with each request applied atomically, and what the dev
server needs of it beyond what moto does (each patch says why).

moto's DynamoDB backend checks a condition and then writes in plain Python, so two threads can
interleave between the check and the write. Real DynamoDB applies each request atomically; we
get the same by letting one request at a time into moto's WSGI app.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from stratasync.devserver.moto_speedups import (
    list_moto_modules_once,
    query_one_partition,
    serialize_items_directly,
)

_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def keep_stream_shards_on_rollback() -> None:
    """Make a cancelled ``TransactWriteItems`` leave moto's DynamoDB streams readable.

    moto rolls a cancelled transaction back by putting a deep copy of each table in place, and
    the copy's stream shard is a new object. Every shard iterator already handed out (a stream
    poller's whole ``NextShardIterator`` chain) still reads the old shard, which gets no record
    again: the fan-out of the dev server stopped for good at the first cancelled transaction
    (a live pull's handoff that lost its race with a push, say). After the rollback this puts the
    old shard back on the restored table, without the records of the cancelled writes (AWS writes
    none for a cancelled transaction).
    """
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items
    if getattr(original, "_keeps_stream_shards", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        shards = {
            name: table.stream_shard
            for name, table in self.tables.items()
            if getattr(table, "stream_shard", None) is not None
        }
        lengths = {name: len(shard.items) for name, shard in shards.items()}
        try:
            original(self, transact_items)
        except Exception:
            for name, shard in shards.items():
                table = self.tables.get(name)
                if table is not None and table.stream_shard is not shard:
                    del shard.items[lengths[name] :]
                    shard.table = table
                    table.stream_shard = shard
            raise

    transact_write_items._keeps_stream_shards = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


_stream_listeners: list[Callable[[], None]] = []


def notify_stream_records() -> None:
    """Make every DynamoDB stream record moto writes call the listeners of
    :meth:`EmbeddedMoto.on_stream_record` (once per process)."""
    from moto.dynamodb.models.table import StreamShard

    original = StreamShard.add
    if getattr(original, "_notifies", False):
        return

    def add(self: Any, old: Any, new: Any) -> None:
        original(self, old, new)
        for listener in list(_stream_listeners):
            listener()

    add._notifies = True  # type: ignore[attr-defined]
    StreamShard.add = add  # type: ignore[method-assign]


def ensure_fake_credentials() -> None:
    """Make boto3 usable against local emulators when no AWS credentials are configured."""
    for name, value in _FAKE_CREDENTIALS.items():
        os.environ.setdefault(name, value)


class EmbeddedMoto:
    """A moto server on ``127.0.0.1`` (a free port unless one is given), started in a thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: moto's WSGI app, one request at a time (what the port serves; see :mod:`.loopback`).
        self.app: Callable[[dict[str, Any], Any], Iterable[bytes]] | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://{self._server.host}:{self._server.server_port}"

    def start(self) -> EmbeddedMoto:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        ensure_fake_credentials()
        keep_stream_shards_on_rollback()
        notify_stream_records()
        query_one_partition()
        list_moto_modules_once()
        serialize_items_directly()
        moto_app = DomainDispatcherApplication(create_backend_app)

        def serialized_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            with self._lock:
                return list(moto_app(environ, start_response))

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self.app = serialized_app
        self._server = make_server(
            self._host, self._port, serialized_app, threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-moto", daemon=True)
        self._thread.start()
        return self

    def on_stream_record(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` (quickly: it runs inside the write) whenever a DynamoDB stream record
        is written; returns what removes it. A wake-up for a stream poller, not a delivery."""
        _stream_listeners.append(listener)
        return lambda: _stream_listeners.remove(listener) if listener in _stream_listeners else None

    def prune_stream_iterators(self, keep: int = 64) -> None:
        """Forget all but the newest ``keep`` DynamoDB Streams shard iterators: moto keeps every
        iterator it ever handed out (one per GetRecords), which a poller would pile up for ever."""
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        with self._lock:
            for account in list(dynamodbstreams_backends.values()):
                for backend in list(account.values()):
                    iterators = backend.shard_iterators
                    for arn in list(iterators)[: max(0, len(iterators) - keep)]:
                        del iterators[arn]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> EmbeddedMoto:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
