"""What every answer of the sync endpoint must look like, whatever was sent (the fuzzers' oracle)."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from openapi_schema_validator import OAS30Validator

OPENAPI = Path(__file__).parents[2] / "openapi.yaml"
#: Tagged errors the protocol allows in a ``Fail`` cause.
PROTOCOL_ERRORS = {"ServerAheadError", "BackendIdMismatchError", "UnknownError"}
#: No answer may take longer than this (a hang detector, not a speed target).
RESPONSE_TIMEOUT_SECONDS = 30.0


def examples(default: int) -> int:
    """Hypothesis example count: ``default`` in CI, ``STRATASYNC_FUZZ_EXAMPLES`` for longer runs."""
    return int(os.environ.get("STRATASYNC_FUZZ_EXAMPLES", default))


@cache
def openapi() -> dict[str, Any]:
    """openapi.yaml as a dict (loaded by schemathesis's YAML loader)."""
    document: dict[str, Any] = schemathesis.openapi.from_path(OPENAPI).raw_schema
    return document


def _validator(name: str) -> OAS30Validator:
    document = openapi()
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return OAS30Validator(schema)


def check_answer(response: httpx.Response, request_id: str | None = None) -> list[dict[str, Any]]:
    """Assert the protocol's invariants for one answer of ``POST /``; returns the decoded messages."""
    text = response.content.decode("utf-8")  # strict: an answer is valid UTF-8, whatever was sent
    return check_rpc_answer(response.status_code, response.headers.get("content-type", ""), text, request_id)


def _not_json(constant: str) -> Any:
    raise AssertionError(f"the answer holds {constant}, which is not JSON: JSON readers cannot read it")


def strict_json(text: str) -> Any:
    """Parse JSON as a JavaScript client would: NaN and Infinity are not JSON."""
    return json.loads(text, parse_constant=_not_json)


def check_rpc_answer(
    status: int, content_type: str, text: str, request_id: str | None = None
) -> list[dict[str, Any]]:
    """:func:`check_answer` on the parts of a response."""
    assert status < 500, f"server error {status}: {text[:500]}"
    if status == 413:
        return []
    assert status in (200, 400), f"unexpected status {status}: {text[:500]}"
    assert content_type.startswith("application/json"), content_type
    messages = strict_json(text)
    if status == 400:
        errors = sorted(_validator("DefectResponse").iter_errors(messages), key=str)
        assert not errors, f"400 answer is not the Defect shape: {errors[0].message}: {text[:300]}"
        return list(messages)
    errors = sorted(_validator("RpcResponse").iter_errors(messages), key=str)
    assert not errors, f"200 answer does not match openapi.yaml: {errors[0].message}: {text[:300]}"
    *chunks, last = messages
    assert last["_tag"] == "Exit", messages
    assert all(message["_tag"] == "Chunk" for message in chunks), messages
    if request_id is not None:
        assert all(message["requestId"] == request_id for message in messages), messages
    outcome = last["exit"]
    if outcome["_tag"] == "Failure":
        assert not chunks, "a failed RPC sends no chunks"
        error = outcome["cause"]["error"]
        assert outcome["cause"]["_tag"] == "Fail", outcome
        assert error["_tag"] in PROTOCOL_ERRORS, error
        if error["_tag"] == "UnknownError":
            assert isinstance(error["cause"]["name"], str), error
            assert error["cause"]["name"], error
    return list(messages)
