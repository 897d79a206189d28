"""The dev server's extra: a built web app (static files) at ``/app/``, beside the sync endpoint.

:class:`WebAppMount` is ASGI middleware in front of the gateway: HTTP requests under ``/app``
get files from the app's build folder (``examples/web-todo/dist``, built by
``scripts/build-web-app.sh``); everything else goes to the wrapped app. Serving the page from
the sync server makes it same-origin with the sync endpoint: no CORS, and the sync URL is
simply the page's origin. API Gateway would not serve this (a deployment puts the app on S3 and
CloudFront, or any static host); it is for local development and the demo only.

The headers the app needs: a JavaScript MIME type on ``.js`` (a module script served as
``text/plain`` is refused and the page never boots), ``application/wasm`` on ``.wasm`` (else
Chromium falls back to a slower instantiation with console errors). COOP/COEP are not needed:
LiveStore's web adapter does not need cross-origin isolation.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from stratasync.devserver.asgi import Receive, Scope, Send, respond

#: Where the dev server serves the web app.
PREFIX = "/app"
#: The app's build folder in a source checkout (tools/stratasync/devserver/ -> the repository).
SOURCE_CHECKOUT_DIST = Path(__file__).resolve().parents[3] / "examples" / "web-todo" / "dist"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}


def default_web_app_dir() -> Path | None:
    """The built example app of this source checkout, if it has been built."""
    return SOURCE_CHECKOUT_DIST if (SOURCE_CHECKOUT_DIST / "index.html").is_file() else None


class WebAppMount:
    """Serves ``directory`` at ``/app/`` (GET and HEAD) and passes every other request to ``inner``."""

    def __init__(self, inner: object, directory: str | Path | None) -> None:
        self.inner = inner
        self.directory = Path(directory).resolve() if directory is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == PREFIX or path.startswith(PREFIX + "/")):
            await self._serve(scope, send)
            return
        await self.inner(scope, receive, send)  # type: ignore[operator]

    async def _serve(self, scope: Scope, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await respond(
                send, 405, [("allow", "GET, HEAD"), ("content-type", "text/plain")], b"GET or HEAD\n"
            )
            return
        path: str = scope["path"]
        if path == PREFIX:
            # Relative asset URLs resolve only below the slash; keep the query (the store id).
            query = scope.get("query_string", b"").decode("latin-1")
            location = PREFIX + "/" + ("?" + query if query else "")
            await respond(send, 308, [("location", location), ("content-type", "text/plain")], b"")
            return
        if self.directory is None:
            await respond(send, *_not_built())
            return
        file = self._resolve(path[len(PREFIX) + 1 :])
        if file is None:
            await respond(send, 404, [("content-type", "text/plain; charset=utf-8")], b"Not Found\n")
            return
        stat = file.stat()
        etag = '"' + hashlib.sha256(f"{stat.st_mtime_ns}-{stat.st_size}".encode()).hexdigest()[:20] + '"'
        headers = [
            ("content-type", _TYPES.get(file.suffix, "application/octet-stream")),
            ("x-content-type-options", "nosniff"),
            ("etag", etag),
            # Vite puts a content hash in every asset's name; index.html must be checked each time.
            ("cache-control", "public, max-age=31536000, immutable" if "/assets/" in path else "no-cache"),
        ]
        request_headers = {
            key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]
        }
        if request_headers.get("if-none-match") == etag:
            await respond(send, 304, headers, b"")
            return
        body = await asyncio.to_thread(file.read_bytes)
        if method == "HEAD":
            await send({"type": "http.response.start", "status": 200, "headers": _raw(headers, len(body))})
            await send({"type": "http.response.body", "body": b""})
            return
        await respond(send, 200, headers, body)

    def _resolve(self, relative: str) -> Path | None:
        """The file for a URL path below /app/ (index.html for a folder), never outside the folder."""
        assert self.directory is not None
        # An ASGI path is already percent-decoded.
        parts = [part for part in relative.split("/") if part not in ("", ".")]
        if ".." in parts or any("\\" in part or "\0" in part for part in parts):
            return None
        file = self.directory.joinpath(*parts)
        if file.is_dir():
            file = file / "index.html"
        try:
            file = file.resolve(strict=True)
        except OSError:
            return None
        if not file.is_file() or not file.is_relative_to(self.directory):
            return None
        return file


def _raw(headers: list[tuple[str, str]], length: int) -> list[tuple[bytes, bytes]]:
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    return [*raw, (b"content-length", str(length).encode())]


def _not_built() -> tuple[int, list[tuple[str, str]], bytes]:
    text = (
        "<!doctype html><title>web app not built</title><h1>The web app is not built</h1>"
        "<p>Build it with <code>bash scripts/build-web-app.sh</code> (node 20+ and npm), then restart"
        " <code>stratasync dev</code>, or pass <code>--web-app DIR</code> with a built app's folder."
        " <code>bash scripts/demo.sh</code> builds it for you.</p>"
    )
    return 404, [("content-type", "text/html; charset=utf-8")], text.encode()
