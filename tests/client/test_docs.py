"""Every ```python block of README.md and docs/*.md runs, in order, one namespace per file, against a
real dev server (a block right after ``<!-- not runnable: reason -->`` is skipped); the README's
blocks run twice in a row in the same folder; docs/python-client.md names every public name."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import textwrap
import types
from pathlib import Path

import pytest

import stratasync.client as client
from stratasync.devserver import DevServer

ROOT = Path(__file__).parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!--\s*not runnable:(?P<reason>[^>]*)-->\s*\n)?[ \t]*```python\n(?P<code>.*?)```", re.S)
PLACEHOLDER_URL = "http://127.0.0.1:8787/"


def python_blocks(path: Path) -> list[str]:
    blocks = []
    for match in BLOCK.finditer(path.read_text()):
        if match.group("reason") is not None:
            assert match.group("reason").strip(), f"{path.name}: say why a block is not runnable"
            continue
        blocks.append(textwrap.dedent(match.group("code")))  # a block inside a list item is indented
    return blocks


def run_blocks(path: Path, url: str, folder: Path) -> str:
    module = types.ModuleType(f"docs_{path.stem.replace('-', '_')}")
    sys.modules[module.__name__] = module  # so that pydantic resolves the snippets' annotations
    namespace = module.__dict__
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        for number, code in enumerate(python_blocks(path), start=1):
            compiled = compile(code.replace(PLACEHOLDER_URL, url), f"{path.name}[block {number}]", "exec")
            with contextlib.redirect_stdout(out):
                exec(compiled, namespace)
    finally:
        os.chdir(cwd)
        del sys.modules[module.__name__]
    return out.getvalue()


@pytest.mark.parametrize("path", DOCS, ids=[path.name for path in DOCS])
def test_every_python_snippet_runs(path: Path, dev_server: DevServer, tmp_path: Path) -> None:
    if not python_blocks(path):
        pytest.skip(f"{path.name} has no python blocks")
    first = run_blocks(path, dev_server.url, tmp_path)
    if path.name == "README.md":  # the quick start again, on the files the first run left
        second = run_blocks(path, dev_server.url, tmp_path)
        assert "sqlite3.Row object" not in first + second
        assert second.count("Todo(id=") > first.count("Todo(id=") > 0  # more todos, printed readably


def test_the_guide_names_every_public_name() -> None:
    guide = (ROOT / "docs" / "python-client.md").read_text()
    missing = [name for name in client.__all__ if not re.search(rf"\b{re.escape(name)}\b", guide)]
    assert not missing, f"docs/python-client.md does not mention {missing}"
    store_api = [name for name in dir(client.Store) if not name.startswith("_") and f"`{name}" not in guide]
    assert not store_api, f"docs/python-client.md does not document Store.{store_api}"
