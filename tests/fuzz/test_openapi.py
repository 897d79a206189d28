"""openapi.yaml: a valid OpenAPI 3 document that names every route the handlers serve, and
schemathesis cases generated from it (valid and invalid) against a running ``stratasync dev``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis import checks

from stratasync.devserver import DevServer
from tests.fuzz.shapes import OPENAPI, RESPONSE_TIMEOUT_SECONDS, check_rpc_answer, examples, openapi

pytestmark = pytest.mark.fuzz

HANDLERS = Path(__file__).parents[2] / "functions/stratasync/handlers"
_ROUTE = re.compile(r"@app\.(get|post|put|patch|delete)\(\s*\"([^\"]+)\"")

schema = schemathesis.openapi.from_path(OPENAPI)
#: Methods the dev server hands to the Lambda (``stratasync.devserver.server``).
_SERVED_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"}


def test_openapi_document_is_valid() -> None:
    validate(openapi())


def test_openapi_describes_every_route_of_the_handlers() -> None:
    routes = {
        (method, path)
        for source in HANDLERS.glob("*.py")
        for method, path in _ROUTE.findall(source.read_text())
    }
    assert ("post", "/") in routes
    described = {(method, path) for path, item in openapi()["paths"].items() for method in item}
    assert routes <= described, f"routes missing from openapi.yaml: {sorted(routes - described)}"
    assert {path for _, path in described} <= {path for _, path in routes}, (
        "openapi.yaml names a route nobody serves"
    )


@schema.parametrize()
@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    database=None,
)
def test_schemathesis_cases(case: schemathesis.Case[Any], dev_server: DevServer) -> None:
    response = case.call(base_url=dev_server.url.rstrip("/"), timeout=RESPONSE_TIMEOUT_SECONDS)
    if case.method.upper() not in _SERVED_METHODS:
        # TRACE, CONNECT, ...: API Gateway answers these itself and the Lambda never sees them; the
        # dev server's stdlib HTTP layer answers 501 before any handler code runs.
        assert response.status_code in (404, 405, 501), response.text[:300]
        return
    case.validate_response(
        response,
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
        ],
    )
    if case.method.upper() == "POST" and case.path == "/" and response.status_code != 413:
        content_type = ",".join(response.headers.get("content-type", []))
        check_rpc_answer(response.status_code, content_type, response.text)
