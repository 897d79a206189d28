"""moto in server mode on a loopback port, with each request applied atomically.

moto's DynamoDB backend checks a condition and then writes in plain Python, so two threads can
interleave between the check and the write. Real DynamoDB applies each request atomically; we
get the same by letting one request at a time into moto's WSGI app.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


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
        moto_app = DomainDispatcherApplication(create_backend_app)

        def serialized_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            with self._lock:
                return list(moto_app(environ, start_response))

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self._server = make_server(
            self._host, self._port, serialized_app, threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-moto", daemon=True)
        self._thread.start()
        return self

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
