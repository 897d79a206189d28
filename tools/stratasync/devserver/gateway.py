"""What API Gateway (HTTP API, payload 2.0; WebSocket API) and Lambda do around a handler, as plain
conversions: an HTTP request or a WebSocket message becomes an event, the handler's result becomes
an HTTP response, with the limits the services apply; and the events of a DynamoDB stream."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
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


# -- API Gateway WebSocket API (Lambda proxy integration) and DynamoDB Streams events ----------


def _request_time(now: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))


@dataclass(frozen=True)
class WebSocketContext:
    """What API Gateway knows of one WebSocket connection, for its events' ``requestContext``."""

    connection_id: str
    connected_at_ms: int
    domain_name: str
    stage: str
    api_id: str
    source_ip: str
    user_agent: str

    def request_context(self, route_key: str, event_type: str, **extra: Any) -> dict[str, Any]:
        now = time.time()
        return {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": uuid.uuid4().hex[:16],
            "requestTime": _request_time(now),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": self.connected_at_ms,
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": self.source_ip, "userAgent": self.user_agent},
            "requestId": uuid.uuid4().hex[:16],
            "domainName": self.domain_name,
            "connectionId": self.connection_id,
            "apiId": self.api_id,
            **extra,
        }


def _multi(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value  # API Gateway keeps the last value of a repeated name
        multi.setdefault(name, []).append(value)
    return single, multi


def ws_connect_event(
    context: WebSocketContext, headers: Iterable[tuple[str, str]], query: str
) -> dict[str, Any]:
    """The ``$connect`` event: headers, and the query decoded once (as API Gateway does)."""
    header_map, multi_headers = _multi(headers)
    params, multi_params = _multi(parse_qsl(query, keep_blank_values=True))
    event: dict[str, Any] = {
        "headers": header_map,
        "multiValueHeaders": multi_headers,
        "requestContext": context.request_context("$connect", "CONNECT"),
        "isBase64Encoded": False,
    }
    if params:
        event["queryStringParameters"] = params
        event["multiValueQueryStringParameters"] = multi_params
    return event


def ws_message_event(context: WebSocketContext, route_key: str, data: str | bytes) -> dict[str, Any]:
    """A message's event on its route; binary frames travel base64-encoded."""
    is_binary = isinstance(data, bytes)
    body = base64.b64encode(data).decode() if isinstance(data, bytes) else data
    return {
        "requestContext": context.request_context(route_key, "MESSAGE", messageId=uuid.uuid4().hex[:16]),
        "body": body,
        "isBase64Encoded": is_binary,
    }


def ws_disconnect_event(context: WebSocketContext, status_code: int, reason: str) -> dict[str, Any]:
    """The ``$disconnect`` event (best effort on AWS too)."""
    return {
        "headers": {},
        "multiValueHeaders": {},
        "requestContext": context.request_context(
            "$disconnect", "DISCONNECT", disconnectStatusCode=status_code, disconnectReason=reason
        ),
        "isBase64Encoded": False,
    }


def stream_event(records: Iterable[dict[str, Any]], stream_arn: str, region: str) -> dict[str, Any]:
    """The event a DynamoDB Streams event source mapping hands a Lambda: GetRecords' records with
    the stream's ARN and the creation time as epoch seconds."""
    converted = []
    for record in records:
        dynamodb = dict(record.get("dynamodb", {}))
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
        converted.append(
            {
                **record,
                "dynamodb": dynamodb,
                "awsRegion": record.get("awsRegion", region),
                "eventSourceARN": stream_arn,
            }
        )
    return {"Records": converted}
