"""The Lambda handler with API Gateway HTTP API (payload 2.0) events, on moto."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from stratasync.devserver.gateway import FakeLambdaContext, to_gateway_event
from stratasync.handlers import sync as sync_handler
from stratasync.handlers.settings import Settings
from stratasync.handlers.wiring import get_backend
from tests.conftest import TABLE
from tests.protocol.test_envelopes import event, pull_body, push_body, request

SECRET_TEXT = "my-secret-todo-text"


@pytest.fixture
def handler(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("STRATASYNC_TABLE_NAME", TABLE)
    monkeypatch.setenv("STRATASYNC_DYNAMODB_ENDPOINT", moto_endpoint)
    monkeypatch.setenv("STRATASYNC_AUTH_REQUIRED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "stratasync")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    get_backend.cache_clear()  # the backend is built from the environment on first use
    yield sync_handler
    get_backend.cache_clear()


def invoke(
    handler: ModuleType,
    body: bytes,
    *,
    store: str = "s1",
    method: str = "POST",
    headers: list[tuple[str, str]] | None = None,
    path: str = "/",
) -> dict[str, Any]:
    gateway_event = to_gateway_event(
        method,
        f"{path}?storeId={store}&transport=http",
        [("content-type", "application/json"), ("x-livestore-store-id", store), *(headers or [])],
        body,
        "127.0.0.1",
    )
    result: dict[str, Any] = handler.lambda_handler(gateway_event, FakeLambdaContext())
    return result


def emf_metrics(output: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            record = json.loads(line)
            for definition in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                found[definition["Name"]] = (
                    sum(record[definition["Name"]])
                    if isinstance(record[definition["Name"]], list)
                    else record[definition["Name"]]
                )
    return found


def test_ping_through_the_handler(handler: ModuleType) -> None:
    result = invoke(handler, request("SyncHttpRpc.Ping", {"storeId": "s1"}))
    assert result["statusCode"] == 200
    assert result["headers"]["Content-Type"] == "application/json"
    assert json.loads(result["body"])[0]["exit"]["value"] == {"_tag": "SyncMessage.Pong"}


def test_cors_preflight_allows_the_livestore_headers(handler: ModuleType) -> None:
    result = invoke(
        handler,
        b"",
        method="OPTIONS",
        headers=[
            ("origin", "http://localhost:5173"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type,x-livestore-store-id,authorization"),
        ],
    )
    assert result["statusCode"] == 204
    allowed = result["headers"]["Access-Control-Allow-Headers"].lower()
    for header in ("content-type", "x-livestore-store-id", "authorization"):
        assert header in allowed
    assert result["headers"]["Access-Control-Allow-Origin"] == "*"


def test_base64_body_is_decoded(handler: ModuleType) -> None:
    gateway_event = to_gateway_event(
        "POST", "/?storeId=s1", [], request("SyncHttpRpc.Ping", {"storeId": "s1"}), "127.0.0.1"
    )
    gateway_event["body"] = base64.b64encode(gateway_event["body"].encode()).decode()
    gateway_event["isBase64Encoded"] = True
    result = handler.lambda_handler(gateway_event, FakeLambdaContext())
    assert json.loads(result["body"])[0]["exit"]["_tag"] == "Success"


def test_unknown_path_is_404_not_500(handler: ModuleType) -> None:
    assert invoke(handler, b"{}", path="/nope")["statusCode"] == 404


def test_metrics_and_logs_per_request(
    handler: ModuleType, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stratasync")
    store = "metrics-store"
    batch = [event(1, args={"text": SECRET_TEXT}), event(2, args={"text": SECRET_TEXT})]
    invoke(handler, push_body(batch, store=store), store=store)
    pushed = capsys.readouterr().out
    assert emf_metrics(pushed) == {"Requests": 1, "Pushes": 1, "EventsPushed": 2}

    invoke(handler, push_body([event(1, args={"text": SECRET_TEXT})], store=store), store=store)
    conflicted = capsys.readouterr().out
    assert emf_metrics(conflicted) == {"Requests": 1, "Conflicts": 1}

    invoke(handler, pull_body(store=store), store=store)
    pulled = capsys.readouterr().out
    assert emf_metrics(pulled) == {"Requests": 1, "EventsPulled": 2}

    records = [record for record in caplog.records if record.name == "stratasync"]
    assert [record.getMessage() for record in records] == [
        "sync request",
        "sync request refused",
        "sync request",
    ]
    assert records[1].error == "ServerAheadError"  # type: ignore[attr-defined]
    assert records[0].events == 2  # type: ignore[attr-defined]
    assert handler.logger.get_correlation_id()  # the API Gateway request id
    assert SECRET_TEXT not in pushed + conflicted + pulled + caplog.text  # event args never reach the logs


def test_malformed_body_is_a_400_with_a_defect(handler: ModuleType) -> None:
    result = invoke(handler, b"{oops")
    assert result["statusCode"] == 400
    assert json.loads(result["body"])[0]["_tag"] == "Defect"


def test_settings_errors_are_readable() -> None:
    with pytest.raises(RuntimeError, match="STRATASYNC_TABLE_NAME: Field required"):
        Settings.from_env({})
    with pytest.raises(RuntimeError, match="STRATASYNC_STORAGE_TIME_BUDGET_SECONDS"):
        Settings.from_env({"STRATASYNC_TABLE_NAME": "t" * 5, "STRATASYNC_STORAGE_TIME_BUDGET_SECONDS": "-1"})


@pytest.mark.parametrize("value", ["0", "65", "nan", "1e309", "-1", "2.5", "\ud800"])
def test_a_send_concurrency_out_of_range_or_not_a_count_is_refused_by_name(value: str) -> None:
    with pytest.raises(RuntimeError, match="STRATASYNC_SEND_CONCURRENCY"):
        Settings.from_env({"STRATASYNC_TABLE_NAME": "t" * 5, "STRATASYNC_SEND_CONCURRENCY": value})
    assert (
        Settings.from_env(
            {"STRATASYNC_TABLE_NAME": "t" * 5, "STRATASYNC_SEND_CONCURRENCY": "1"}
        ).send_concurrency
        == 1
    )


def test_tokens_never_reach_logs(
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import time

    import jwt

    monkeypatch.setenv("STRATASYNC_TABLE_NAME", TABLE)
    monkeypatch.setenv("STRATASYNC_DYNAMODB_ENDPOINT", moto_endpoint)
    monkeypatch.setenv("STRATASYNC_AUTH_HS256_SECRET", "handler-test-secret-of-some-length")
    get_backend.cache_clear()
    handler = sync_handler
    try:
        caplog.set_level(logging.DEBUG, logger="stratasync")
        good = jwt.encode(
            {"stores": ["logs"], "exp": int(time.time()) + 60},
            "handler-test-secret-of-some-length",
            algorithm="HS256",
        )
        bad = good[:-3] + "xyz"
        store = "logs"
        for auth_token in (good, bad):
            body = json.loads(push_body([event(1, args={"text": SECRET_TEXT})], store=store))
            body["payload"]["payload"] = {"authToken": auth_token}
            invoke(
                handler,
                json.dumps(body).encode(),
                store=store,
                headers=[("authorization", f"Bearer {auth_token}")],
            )
        output = capsys.readouterr().out + caplog.text
        assert "sync request refused" in output or "UnauthorizedError" in output
        for secret in (good, bad, good.split(".")[2], SECRET_TEXT):
            assert secret not in output
    finally:
        get_backend.cache_clear()


def test_a_body_that_is_not_utf8_is_a_400_not_a_500(handler: ModuleType) -> None:
    result = invoke(handler, b"\x80\xff{not text")
    assert result["statusCode"] == 400
    assert json.loads(result["body"])[0]["_tag"] == "Defect"


def test_after_a_snapshot_restore_the_auth_secret_is_read_again(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stratasync.handlers import wiring

    monkeypatch.setenv("STRATASYNC_TABLE_NAME", TABLE)
    monkeypatch.setenv("STRATASYNC_DYNAMODB_ENDPOINT", moto_endpoint)
    monkeypatch.setenv("STRATASYNC_AUTH_HS256_SECRET", "the-secret-at-snapshot-time-0123456789")
    get_backend.cache_clear()
    try:
        before = get_backend().service.access
        wiring.after_snapshot_restore()
        after = get_backend().service.access
        assert after is not before
        assert after.verifier is not None
    finally:
        get_backend.cache_clear()
