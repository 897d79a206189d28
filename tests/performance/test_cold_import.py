"""Performance guards for the Lambda's cold start, in the manner of Powertools'
``tests/performance/test_high_level_imports.py``: what the handler module pulls in (exact), and its
import time against the stack's own hello world (a generous bound: these machines are noisy; the
measured figure and its target are in ``bench/results``, from ``python -m bench``)."""

from __future__ import annotations

import json
import subprocess

import pytest

from bench.coldstart import CANDIDATES, DEPLOYED_ENV, _clean_env, measure, python_command

#: Never in a Lambda artifact's import graph: the client, the dev server and their dependencies.
NOT_IN_THE_LAMBDA = (
    "stratasync.client",
    "stratasync.devserver",
    "stratasync.cli",
    "httpx",
    "tqdm",
    "moto",
    "uvicorn",
)


def _modules_after(statement: str, env: dict[str, str]) -> set[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    output = subprocess.run(
        python_command("-c", code), env=_clean_env(env), capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(output.strip().splitlines()[-1]))


def test_the_handler_imports_nothing_of_the_client_or_the_dev_server() -> None:
    modules = _modules_after("import stratasync.handlers.sync, stratasync.handlers.archiver", DEPLOYED_ENV)
    assert "stratasync.handlers.wiring" in modules
    assert not {name for name in modules if name.startswith(NOT_IN_THE_LAMBDA)}


def test_with_tracing_off_the_xray_sdk_is_not_imported() -> None:
    modules = _modules_after(
        "import stratasync.handlers.sync", {**DEPLOYED_ENV, "POWERTOOLS_TRACE_DISABLED": "true"}
    )
    assert not {name for name in modules if name.startswith("aws_xray_sdk")}
    assert "aws_xray_sdk" in _modules_after("import stratasync.handlers.sync", DEPLOYED_ENV)  # tracing on


@pytest.mark.slow
def test_the_cold_import_is_within_twice_the_hello_world() -> None:
    assert set(CANDIDATES) >= {"hello world", "handler (deployed settings)"}
    result = measure(rounds=5)
    assert result["ratio"] < 2.0, result["rows"]
