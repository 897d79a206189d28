"""The dev server's static mount at /app/ (:mod:`stratasync.devserver.webapp`), as ASGI calls."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from stratasync.devserver.webapp import WebAppMount


class Inner:
    """The gateway behind the mount: records what reaches it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"sync"})


def call(
    app: WebAppMount,
    path: str,
    *,
    method: str = "GET",
    query: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(key.encode(), value.encode()) for key, value in (headers or {}).items()],
    }
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    response_headers = {key.decode(): value.decode() for key, value in start["headers"]}
    return start["status"], response_headers, b"".join(message.get("body", b"") for message in sent[1:])


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    folder = tmp_path / "dist"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html><title>app</title>")
    (folder / "assets" / "index-abc.js").write_text("export {}")
    (folder / "assets" / "wa-sqlite-abc.wasm").write_bytes(b"\0asm")
    (folder / "assets" / "index-abc.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("outside")
    return folder


def test_index_and_assets_with_the_types_a_module_app_needs(dist: Path) -> None:
    app = WebAppMount(Inner(), dist)
    status, headers, body = call(app, "/app/")
    assert (status, body) == (200, b"<!doctype html><title>app</title>")
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    status, headers, _ = call(app, "/app/assets/index-abc.js")
    assert status == 200
    assert headers["content-type"].startswith("text/javascript")
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["x-content-type-options"] == "nosniff"
    assert call(app, "/app/assets/wa-sqlite-abc.wasm")[1]["content-type"] == "application/wasm"
    assert call(app, "/app/assets/index-abc.css")[1]["content-type"].startswith("text/css")
    assert call(app, "/app/index.html")[0] == 200


def test_app_without_the_slash_redirects_keeping_the_store_id(dist: Path) -> None:
    status, headers, _ = call(WebAppMount(Inner(), dist), "/app", query=b"storeId=s1&transport=http")
    assert status == 308
    assert headers["location"] == "/app/?storeId=s1&transport=http"
    assert call(WebAppMount(Inner(), dist), "/app")[1]["location"] == "/app/"


def test_other_paths_reach_the_gateway(dist: Path) -> None:
    inner = Inner()
    app = WebAppMount(inner, dist)
    for path in ("/", "/archive", "/apple", "/application"):
        assert call(app, path) == (200, {}, b"sync")
    assert inner.paths == ["/", "/archive", "/apple", "/application"]


def test_nothing_outside_the_folder(dist: Path) -> None:
    app = WebAppMount(Inner(), dist)
    for path in (
        "/app/../secret.txt",
        "/app/%2e%2e/secret.txt",
        "/app/assets/../../secret.txt",
        "/app/missing.js",
    ):
        status, _, body = call(app, path)
        assert status == 404, path
        assert b"outside" not in body
    (dist / "link.txt").symlink_to(dist.parent / "secret.txt")
    assert call(app, "/app/link.txt")[0] == 404


def test_head_etag_and_methods(dist: Path) -> None:
    app = WebAppMount(Inner(), dist)
    status, headers, body = call(app, "/app/assets/index-abc.js", method="HEAD")
    assert (status, body, headers["content-length"]) == (200, b"", str(len("export {}")))
    again = call(app, "/app/assets/index-abc.js", headers={"if-none-match": headers["etag"]})
    assert again[0] == 304
    assert again[2] == b""
    status, headers, _ = call(app, "/app/", method="POST")
    assert status == 405
    assert headers["allow"] == "GET, HEAD"


def test_an_app_not_built_says_how_to_build_it() -> None:
    status, headers, body = call(WebAppMount(Inner(), None), "/app/")
    assert status == 404
    assert headers["content-type"].startswith("text/html")
    assert b"scripts/build-web-app.sh" in body
