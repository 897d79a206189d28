"""What API Gateway (HTTP API, payload 2.0) and Lambda do around a handler, as plain conversions:
an HTTP request becomes an event, the handler's result becomes an HTTP response, with the
limits the services apply."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

#: API Gateway's own payload limit; larger requests never reach the Lambda.
MAX_GATEWAY_BODY_BYTES = 10 * 1024 * 1024
#: Lambda's limit on a synchronous invocation's response (the whole JSON the handler returns).
MAX_LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024

Headers = list[tuple[str, str]]


class FakeLambdaContext:
    """The parts of Lambda's context object that the handlers and Powertools read."""

    function_version = "$LATEST"
    memory_limit_in_mb = 512

    def __init__(self, function_name: str = "stratasync-sync-dev", timeout_seconds: float = 30) -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def to_gateway_event(
    method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes, source_ip: str
) -> dict[str, Any]:
    """An API Gateway HTTP API payload-2.0 event for one HTTP request."""
    parts = urlsplit(target)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(cookie.strip() for cookie in value.split(";") if cookie.strip())
            continue
        merged[lower] = f"{merged[lower]},{value}" if lower in merged else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    try:
        text_body: str | None = body.decode() if body else None
        is_base64 = False
    except UnicodeDecodeError:
        text_body, is_base64 = base64.b64encode(body).decode(), True
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": merged,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "dev",
            "domainName": merged.get("host", "localhost"),
            "domainPrefix": "dev",
            "http": {
                "method": method,
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if text_body is not None:
        event["body"] = text_body
    return event


def from_lambda_result(result: dict[str, Any]) -> tuple[int, Headers, bytes]:
    """The HTTP response API Gateway makes of a handler's result: status, headers, body.

    A result over Lambda's 6 MB response limit fails the invocation, and API Gateway answers 500.
    """
    if len(json.dumps(result)) > MAX_LAMBDA_RESPONSE_BYTES:
        return error_response(500, "Internal Server Error", "the Lambda response exceeds 6 MB")
    headers: Headers = [(name, str(value)) for name, value in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.append((name, ",".join(values)))
    headers.extend(("set-cookie", cookie) for cookie in result.get("cookies") or [])
    raw = result.get("body") or ""
    payload = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
    return int(result.get("statusCode", 200)), headers, payload


def error_response(status: int, message: str, detail: str | None = None) -> tuple[int, Headers, bytes]:
    """An API Gateway-style JSON error (``{"message": ...}``)."""
    body: dict[str, str] = {"message": message}
    if detail is not None:
        body["detail"] = detail
    return status, [("content-type", "application/json")], json.dumps(body).encode()
