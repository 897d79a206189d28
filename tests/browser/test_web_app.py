"""The LiveStore web app (examples/web-todo) in headless Chromium, syncing through ``stratasync dev``
beside a Python ``Store``: both ways, two browser contexts, a reload, and the demo's agent.

One Chromium and one dev server for the module; the tests run in order and share the page "a"
and its store (each browser boot costs seconds on 2 cores).
"""

from __future__ import annotations

import datetime as dt
import html
import io
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratasync.cli.web_demo import run_web_agent
from stratasync.client import Store
from stratasync.client.todos import schema, todo_created, todo_deleted, todos
from stratasync.devserver import DevServer
from tests.browser.chromium import ROOT, Chromium, wait_until
from tests.browser.conftest import record

pytestmark = pytest.mark.browser

SCREENSHOT = ROOT / "docs" / "images" / "web-todo.png"


@pytest.fixture(scope="module")
def page_a(web_server: DevServer, chromium: Chromium) -> dict[str, object]:
    """Page "a": the app opened without a store id (so on a fresh store), in the default context."""
    opened = chromium.call("open", page="a", url=web_server.app_url)
    record("boot, cold (OPFS, fresh profile)", opened["bootMs"] / 1000)
    return opened


@pytest.fixture(scope="module")
def agent(
    web_server: DevServer, page_a: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """A Python store on page a's store, syncing in the background (pulls every 0.2 s)."""
    path = tmp_path_factory.mktemp("agent") / "agent.db"
    store_id = str(page_a["storeId"])
    with Store(schema, store_id, str(path), backend_url=web_server.url, poll_interval=0.2) as store:
        store.start_sync()
        yield store


def python_todo(store: Store, text: str) -> Any:
    """The Python store's row for the todo with this text (``Todo(...)``), or None."""
    return store.query(todos.where(text=text).first())


def test_page_boots_on_a_fresh_store_without_errors(chromium: Chromium, page_a: dict[str, object]) -> None:
    assert re.fullmatch(r"web-[0-9a-f]{8}", str(page_a["storeId"]))
    assert f"storeId={page_a['storeId']}" in str(page_a["href"])  # written back into the URL
    assert page_a["persisted"] is True  # OPFS: 127.0.0.1 is a secure context
    assert page_a["transport"] == "http"
    connected = "document.querySelector('.sync-status').dataset.connected ?? null"
    wait_until(
        lambda: chromium.call("evaluate", page="a", expression=connected)["value"] == "true", timeout=20
    )
    assert chromium.call("problems", page="a")["problems"] == []


def test_a_todo_typed_in_the_page_reaches_python(chromium: Chromium, agent: Store) -> None:
    started = time.monotonic()
    chromium.call("add", page="a", text="buy bread")  # returns once Enter is pressed: committed
    record("page -> Python", wait_until(lambda: python_todo(agent, "buy bread") is not None))
    record("page -> Python (typing included)", time.monotonic() - started)
    todo = python_todo(agent, "buy bread")
    assert todo is not None
    assert not todo.completed
    creator = [event for event in agent.events() if event.name == "v1.TodoCreated"][-1]
    assert creator.client_id != agent.client_id
    assert creator.args["text"] == "buy bread"


def test_a_todo_committed_in_python_appears_in_the_page(chromium: Chromium, agent: Store) -> None:
    started = time.monotonic()
    agent.commit(todo_created(id=uuid.uuid4().hex, text="call the plumber"))
    chromium.call("waitFor", page="a", text="call the plumber", completed=False)
    record("Python -> page", time.monotonic() - started)


def test_latency_both_ways(chromium: Chromium, agent: Store) -> None:
    """Five todos each way, one at a time: the figures docs/web-app.md quotes."""
    for number in range(5):
        text = f"from the page #{number}"
        chromium.call("add", page="a", text=text)
        record("page -> Python", wait_until(lambda text=text: python_todo(agent, text) is not None))
        started = time.monotonic()
        text = f"from Python #{number}"
        agent.commit(todo_created(id=uuid.uuid4().hex, text=text))
        chromium.call("waitFor", page="a", text=text)
        record("Python -> page", time.monotonic() - started)


def test_a_completion_toggled_in_the_page_is_seen_by_python(chromium: Chromium, agent: Store) -> None:
    chromium.call("toggle", page="a", text="call the plumber")
    seconds = wait_until(lambda: getattr(python_todo(agent, "call the plumber"), "completed", False))
    record("page toggle -> Python", seconds)
    chromium.call("toggle", page="a", text="call the plumber")
    wait_until(lambda: not getattr(python_todo(agent, "call the plumber"), "completed", True))


def test_deletions_travel_both_ways_with_an_iso_date(chromium: Chromium, agent: Store) -> None:
    chromium.call("add", page="a", text="delete me in the page")
    wait_until(lambda: python_todo(agent, "delete me in the page") is not None)
    chromium.call("destroy", page="a", text="delete me in the page")
    wait_until(lambda: getattr(python_todo(agent, "delete me in the page"), "deleted_at", None) is not None)
    deleted = [event for event in agent.events() if event.name == "v1.TodoDeleted"][-1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", deleted.args["deletedAt"])

    todo_id = uuid.uuid4().hex
    agent.commit(todo_created(id=todo_id, text="delete me in Python"))
    chromium.call("waitFor", page="a", text="delete me in Python")
    agent.commit(todo_deleted(id=todo_id, deleted_at=dt.datetime.now(dt.UTC)))
    chromium.call("waitFor", page="a", text="delete me in Python", gone=True)


def test_two_browser_contexts_converge(
    web_server: DevServer, chromium: Chromium, page_a: dict[str, object], agent: Store
) -> None:
    chromium.call("newContext", context="b")  # its own profile: own OPFS, clientId and leader
    started = time.monotonic()
    opened = chromium.call("open", page="b", context="b", url=str(page_a["href"]))
    record("boot, second context", opened["bootMs"] / 1000)
    chromium.call("waitFor", page="b", text="call the plumber")
    record("second context: boot + the same list", time.monotonic() - started)
    chromium.call("add", page="b", text="from context b")
    record("context b -> context a", chromium.call("waitFor", page="a", text="from context b")["ms"] / 1000)
    chromium.call("toggle", page="a", text="from context b")
    chromium.call("waitFor", page="b", text="from context b", completed=True)
    wait_until(lambda: getattr(python_todo(agent, "from context b"), "completed", False))

    def listing(page: str) -> list[tuple[str, bool]]:
        return [(todo["text"], todo["completed"]) for todo in chromium.call("todos", page=page)["todos"]]

    python = sorted((todo.text, todo.completed) for todo in agent.query(todos.where(deleted_at=None)))
    wait_until(lambda: listing("a") == listing("b") and sorted(listing("a")) == python, timeout=10)
    assert chromium.call("problems", page="b")["problems"] == []
    chromium.call("closePage", page="b")


def test_a_reload_keeps_the_data(chromium: Chromium, page_a: dict[str, object]) -> None:
    before = chromium.call("todos", page="a")["todos"]
    reloaded = chromium.call("reload", page="a")
    record("boot, reload (OPFS data kept)", reloaded["bootMs"] / 1000)
    assert reloaded["storeId"] == page_a["storeId"]
    assert chromium.call("todos", page="a")["todos"] == before


def test_the_data_is_in_the_browser_not_only_on_the_server(web_server: DevServer, chromium: Chromium) -> None:
    """A store whose sync server is unreachable: what was typed survives a reload (OPFS), still pending."""
    chromium.call("newContext", context="offline")
    dead = "http://127.0.0.1:9/"  # the discard port: nothing listens
    url = f"{web_server.app_url}?storeId=offline-{uuid.uuid4().hex[:8]}&sync={dead}"
    chromium.call("open", page="offline", context="offline", url=url)
    chromium.call("add", page="offline", text="typed while offline")
    chromium.call("reload", page="offline")
    # LiveStore's confirmUnsavedChanges: the reload asked first, as the event was not synced.
    assert chromium.call("problems", page="offline")["dialogs"] == ["beforeunload"]
    shown = chromium.call("todos", page="offline")["todos"]
    assert [todo["text"] for todo in shown] == ["typed while offline"]
    connected = "document.querySelector('.sync-status').dataset.connected ?? null"
    wait_until(lambda: chromium.call("evaluate", page="offline", expression=connected)["value"] == "false")
    chromium.call("closePage", page="offline")


def test_the_demo_agent_and_a_person_in_the_page(
    web_server: DevServer, chromium: Chromium, tmp_path: Path
) -> None:
    """The demo's agent (``stratasync demo --web-app``) and the page see each other's todos; the
    test's picture of both is the README's screenshot (written there with STRATASYNC_SCREENSHOT=1)."""
    store_id = f"todo-demo-{uuid.uuid4().hex[:6]}"
    out = io.StringIO()
    stop = threading.Event()
    agent_todos = ("water the plants", "book the dentist", "renew the passport")
    thread = threading.Thread(
        target=run_web_agent,
        args=(web_server.url, web_server.app_url, store_id),
        kwargs={"interval": 1.0, "agent_todos": agent_todos, "out": out, "stop": stop},
        daemon=True,
    )
    thread.start()
    try:
        wait_until(lambda: "joined" in out.getvalue())
        url = re.search(r"Web app: (\S+)", out.getvalue())
        assert url is not None
        assert url.group(1) == f"{web_server.app_url}?storeId={store_id}"
        chromium.call("newContext", context="person")
        chromium.call("open", page="person", context="person", url=url.group(1))
        chromium.call("waitFor", page="person", text="water the plants")
        chromium.call("add", page="person", text="buy bread")
        chromium.call("toggle", page="person", text="water the plants")
        chromium.call("waitFor", page="person", text="renew the passport")
        wait_until(lambda: 'page   [x] "water the plants"' in out.getvalue())
        wait_until(lambda: 'page   + "buy bread"' in out.getvalue())
        page_png = tmp_path / "page.png"
        chromium.call("screenshot", page="person", path=str(page_png))
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    picture = tmp_path / "web-todo.png"
    chromium.call(
        "render", html=_picture(page_png, out.getvalue()), path=str(picture), width=1400, height=660
    )
    assert picture.read_bytes().startswith(b"\x89PNG")
    assert picture.stat().st_size > 20_000
    if os.environ.get("STRATASYNC_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(picture.read_bytes())
    assert chromium.call("problems", page="person")["problems"] == []


def _picture(page_png: Path, agent_output: str) -> str:
    """The page's screenshot beside the agent's terminal output, as one HTML document."""
    import base64

    image = base64.b64encode(page_png.read_bytes()).decode()
    text = html.escape(agent_output.strip("\n"))
    return f"""<!doctype html><html><body style="margin:0;background:#eee;font-family:sans-serif">
<div style="display:flex;gap:16px;padding:16px;align-items:flex-start">
  <figure style="margin:0"><img src="data:image/png;base64,{image}" width="720"
    style="border:1px solid #ccc;display:block"><figcaption style="font-size:13px;color:#555;margin-top:6px">
    the web app in headless Chromium (LiveStore 0.4, OPFS)</figcaption></figure>
  <figure style="margin:0;flex:1"><pre style="margin:0;background:#1e1e1e;color:#ddd;padding:14px;
    font:12px/1.45 'DejaVu Sans Mono',monospace;white-space:pre-wrap;border-radius:4px">$ bash scripts/demo.sh
...
{text}</pre><figcaption style="font-size:13px;color:#555;margin-top:6px">
    the Python agent (stratasync.client.Store) in the same store</figcaption></figure>
</div></body></html>"""
