"""Every number the docs state about settings and limits is the code's (the docs are read by
people deploying this; a stale default there is a bug)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stratasync.core.limits import MAX_SEQ_NUM_STEP
from stratasync.core.service import DEFAULT_PULL_RESPONSE_BYTES
from stratasync.handlers.settings import Settings
from stratasync.protocol.limits import MAX_PULL_EVENTS_PER_CHUNK, MAX_PUSH_EVENTS, MAX_REQUEST_BYTES

DOCS = Path(__file__).parents[1] / "docs"
_ROW = re.compile(r"^\|(?P<cells>.*)\|\s*$", re.M)


def _rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in match.group("cells").split("|")] for match in _ROW.finditer(text)]


def _variables(cell: str) -> list[str]:
    """``STRATASYNC_SEGMENT_EVENTS``, ``_SEGMENT_BYTES`` -> both full names: a short name continues
    the longest part of the first name that makes it a setting."""
    names = re.findall(r"`([A-Z0-9_*]+)`", cell)
    full: list[str] = []
    for name in names:
        if name.startswith("STRATASYNC_"):
            full.append(name)
        elif name.startswith("_") and full:
            words = full[0].split("_")
            for cut in range(len(words) - 1, 0, -1):
                candidate = "_".join(words[:cut]) + name
                if _setting(candidate) in Settings.model_fields:
                    full.append(candidate)
                    break
            else:
                raise AssertionError(f"{name} in {cell!r} names no setting")
    return full


def _numbers(cell: str) -> list[float]:
    return [float(text.replace(",", "")) for text in re.findall(r"\d[\d,]*(?:\.\d+)?", cell)]


def _setting(variable: str) -> str:
    return variable.removeprefix("STRATASYNC_").lower()


def test_the_configuration_table_states_the_settings_defaults() -> None:
    documented: set[str] = set()
    for row in _rows((DOCS / "configuration.md").read_text()):
        if len(row) < 3 or not row[0].startswith("`STRATASYNC_"):
            continue
        variables = [name for name in _variables(row[0]) if "*" not in name]
        documented.update(_setting(name) for name in variables)
        numbers = _numbers(row[1])
        if "*" in row[0] or not numbers:
            continue
        assert len(numbers) == len(variables), row
        for variable, number in zip(variables, numbers, strict=True):
            default = Settings.model_fields[_setting(variable)].default
            assert number == default, (
                f"docs/configuration.md says {variable} defaults to {number}, code {default}"
            )
    undocumented = {
        name for name in Settings.model_fields if name not in documented and not name.startswith("max_")
    }
    assert not undocumented, f"settings missing from docs/configuration.md: {sorted(undocumented)}"


def test_the_limits_table_states_the_limits() -> None:
    seen = 0
    for row in _rows((DOCS / "auth-and-limits.md").read_text()):
        variables = (
            [name for name in _variables(row[-1]) if name.startswith("STRATASYNC_MAX_")] if row else []
        )
        if len(variables) != 1:
            continue
        default = Settings.model_fields[_setting(variables[0])].default
        assert _numbers(row[1])[0] == default, row
        seen += 1
    assert seen == len([name for name in Settings.model_fields if name.startswith("max_")])


@pytest.mark.parametrize(
    ("page", "pattern", "value"),
    [
        ("protocol.md", r"more than ([\d,]+) past its parent", MAX_SEQ_NUM_STEP),
        ("protocol.md", r"capped by its size on the wire at ([\d.]+) MB", DEFAULT_PULL_RESPONSE_BYTES / 1e6),
        ("protocol.md", r"chunks of at most (\d+)\s+events", MAX_PULL_EVENTS_PER_CHUNK),
        ("protocol.md", r"0 or >(\d+) events", MAX_PUSH_EVENTS),
        ("protocol.md", r"body > ([\d,]+) bytes", MAX_REQUEST_BYTES),
    ],
)
def test_numbers_in_the_prose_are_the_code_s(page: str, pattern: str, value: float) -> None:
    found = re.search(pattern, (DOCS / page).read_text())
    assert found is not None, f"docs/{page} no longer says {pattern!r}: update this test with the page"
    assert float(found.group(1).replace(",", "")) == value


def test_every_relative_link_in_the_docs_resolves() -> None:
    """Links and images in README.md and docs/*.md point at files that exist (relative to the page)."""
    root = Path(__file__).resolve().parent.parent
    broken = []
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            external = target.startswith(("http://", "https://", "mailto:"))
            if not external and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(root)}: {target}")
    assert not broken
