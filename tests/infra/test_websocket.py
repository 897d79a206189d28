"""Live sync over WebSocket (issue 10), on both templates as CloudFormation deploys them: the API's
routes (``_tag`` selection, MOCK Ping/Pong and Ack, the Lambda routes on the WebSocket function's
alias), the @connections grants scoped to this API, the connections table, the eventlog's stream and
the fan-out's event source, the alarms and the output. The HTTP sync function sends to live pulls too:
it has the same live environment and grants. The exact data permissions of every function are in
test_stacks.DATA_PERMISSIONS."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.conftest import ROOT
from tests.infra.templates import Stack, as_list, render
from tests.infra.test_stacks import CONNECTIONS

#: The contract with the WebSocket handlers (functions/stratasync/handlers/ws.py).
LAMBDA_ROUTE_KEYS = {"$connect", "$disconnect", "Request", "Interrupt", "$default"}
MOCK_ROUTE_KEYS = {"Ping", "Ack"}
STAGE = "sync"
#: The functions that send to live pulls (the sync function: each push it commits).
LIVE_SENDERS = ("SyncFunction", "WebSocketFunction", "FanoutFunction")
#: The connections table's actions (read and written, no Scan).
CONNECTIONS_ACTIONS = {action for action, _ in CONNECTIONS}


def _websocket_resources(stack: Stack, type_: str) -> dict[str, dict[str, Any]]:
    return {
        key: resource["Properties"]
        for key, resource in stack.resources(type_).items()
        if resource["Properties"].get("ApiId") == {"Ref": "WebSocketApi"}
    }


def _routes(stack: Stack) -> dict[str, dict[str, Any]]:
    return {
        route["RouteKey"]: route for route in _websocket_resources(stack, "AWS::ApiGatewayV2::Route").values()
    }


def _integration_of(stack: Stack, route: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The integration a route targets (``integrations/<id>``, a Join or a Sub in the templates)."""
    target = render(route["Target"])
    match = re.fullmatch(r"integrations/\$\{(\w+)\}", target)
    assert match is not None, target
    logical_id = match.group(1)
    return logical_id, stack.properties(logical_id)


def test_the_api_routes_frames_by_their_tag(stack: Stack) -> None:
    api = stack.properties("WebSocketApi")
    assert api["ProtocolType"] == "WEBSOCKET"
    assert api["RouteSelectionExpression"] == "$request.body._tag"
    assert set(_routes(stack)) == LAMBDA_ROUTE_KEYS | MOCK_ROUTE_KEYS


def test_lambda_routes_are_one_way_proxies_of_the_websocket_alias(stack: Stack) -> None:
    """The handler answers through @connections, so no Lambda route has a route response (which
    would send the handler's return value to the client)."""
    routes = _routes(stack)
    targets = {_integration_of(stack, routes[key])[0] for key in LAMBDA_ROUTE_KEYS}
    assert targets == {"WebSocketIntegration"}
    integration = stack.properties("WebSocketIntegration")
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert f"${{{stack.alias('WebSocketFunction')}}}/invocations" in render(integration["IntegrationUri"])
    for key in LAMBDA_ROUTE_KEYS:
        assert "RouteResponseSelectionExpression" not in routes[key], key
        assert routes[key].get("AuthorizationType", "NONE") == "NONE"  # the handler checks the token
    route_responses = _websocket_resources(stack, "AWS::ApiGatewayV2::RouteResponse").values()
    assert [render(response["RouteId"]) for response in route_responses] == ["${PingRoute}"]


def test_ping_is_answered_with_a_pong_by_a_mock_integration(stack: Stack) -> None:
    """Two-way MOCK: request template {"statusCode":200}, integration response $default with the
    Pong template, route response $default. No Lambda: no cold start inside the 10 s ping window."""
    route = _routes(stack)["Ping"]
    assert route["RouteResponseSelectionExpression"] == "$default"
    integration_id, integration = _integration_of(stack, route)
    assert integration["IntegrationType"] == "MOCK"
    assert "IntegrationUri" not in integration
    assert {key: json.loads(value) for key, value in integration["RequestTemplates"].items()} == {
        "$default": {"statusCode": 200}
    }
    assert integration["TemplateSelectionExpression"] == "\\$default"  # static: always $default
    (response,) = [
        r
        for r in _websocket_resources(stack, "AWS::ApiGatewayV2::IntegrationResponse").values()
        if r["IntegrationId"] == {"Ref": integration_id}
    ]
    assert response["IntegrationResponseKey"] == "$default"
    assert response["TemplateSelectionExpression"] == "\\$default"
    assert response["ResponseTemplates"] == {"$default": '{"_tag":"Pong"}'}
    assert json.loads(response["ResponseTemplates"]["$default"]) == {"_tag": "Pong"}
    (route_response,) = _websocket_resources(stack, "AWS::ApiGatewayV2::RouteResponse").values()
    assert route_response["RouteResponseKey"] == "$default"


def test_ack_is_dropped_by_a_one_way_mock(stack: Stack) -> None:
    route = _routes(stack)["Ack"]
    assert "RouteResponseSelectionExpression" not in route
    integration_id, integration = _integration_of(stack, route)
    assert integration["IntegrationType"] == "MOCK"
    responses = _websocket_resources(stack, "AWS::ApiGatewayV2::IntegrationResponse").values()
    assert {"Ref": integration_id} not in [response["IntegrationId"] for response in responses]


def test_the_stage_and_the_invoke_permission(stack: Stack) -> None:
    (stage,) = _websocket_resources(stack, "AWS::ApiGatewayV2::Stage").values()
    assert stage["StageName"] == STAGE
    assert stage["AutoDeploy"] is True
    (permission,) = [
        p["Properties"]
        for p in stack.resources("AWS::Lambda::Permission").values()
        if "WebSocketApi" in render(p["Properties"].get("SourceArn", ""))
    ]
    assert permission["FunctionName"] == {"Ref": stack.alias("WebSocketFunction")}
    assert render(permission["SourceArn"]) == (
        f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{WebSocketApi}}/{STAGE}/*"
    )


def test_manage_connections_is_this_apis_stage_only(stack: Stack) -> None:
    """No other API's connections, no other stage's, only the @connections paths."""
    for function in LIVE_SENDERS:
        (statement,) = [
            s for s in stack.statements(function) if "execute-api:ManageConnections" in as_list(s["Action"])
        ]
        assert as_list(statement["Action"]) == ["execute-api:ManageConnections"]
        resources = sorted(render(resource) for resource in as_list(statement["Resource"]))
        prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}"
        assert resources == sorted(f"{prefix}/{STAGE}/{m}/@connections/*" for m in ("POST", "DELETE", "GET"))
    assert not [s for s in stack.statements("ArchiveFunction") if "execute-api:" in str(s["Action"])]


def test_the_connections_table_is_the_live_senders_only(stack: Stack) -> None:
    """The connections table's actions on it alone, for the functions that send to live pulls; the
    archiver has none."""
    for function in LIVE_SENDERS:
        on_connections = {
            action
            for action, resource in stack.data_permissions(function)
            if resource == "${ConnectionsTable.Arn}"
        }
        assert on_connections == CONNECTIONS_ACTIONS, function
        (statement,) = [
            s for s in stack.statements(function) if "ConnectionsTable" in render(as_list(s["Resource"]))
        ]
        assert set(as_list(statement["Action"])) == CONNECTIONS_ACTIONS
        assert [render(resource) for resource in as_list(statement["Resource"])] == [
            "${ConnectionsTable.Arn}"
        ]
    archiver = stack.data_permissions("ArchiveFunction")
    assert not [resource for _, resource in archiver if "ConnectionsTable" in resource]


def test_the_connections_table_expires_its_items(stack: Stack) -> None:
    table = stack.properties("ConnectionsTable")
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
    }
    assert sorted((k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]) == [
        ("pk", "HASH"),
        ("sk", "RANGE"),
    ]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    # Connections live at most 2 hours: no backups, no stream, deleted with the stack.
    assert table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is not True
    assert "StreamSpecification" not in table
    assert stack.template["Resources"]["ConnectionsTable"]["DeletionPolicy"] == "Delete"


def test_the_fanout_reads_new_commit_records_from_the_stream(stack: Stack) -> None:
    (mapping,) = stack.resources("AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["EventTable", "StreamArn"]}
    assert properties["FunctionName"] == {"Ref": stack.alias("FanoutFunction")}  # SnapStart's version
    assert properties["StartingPosition"] == "LATEST"
    # Latency: a small batch, no batching window; one reader per shard keeps a store's commits in order.
    assert properties["BatchSize"] <= 10
    assert properties["MaximumBatchingWindowInSeconds"] == 0
    assert properties["ParallelizationFactor"] == 1
    # Retries: split a failing batch, bounded attempts and age, then the failure queue.
    assert properties["BisectBatchOnFunctionError"] is True
    assert 1 <= properties["MaximumRetryAttempts"] <= 10
    assert 60 <= properties["MaximumRecordAgeInSeconds"] <= 3600
    assert properties["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["FanoutFailureQueue", "Arn"]}}
    }
    # The handler raises on a store it could not serve in full and returns no batchItemFailures:
    # the whole batch is retried.
    assert "FunctionResponseTypes" not in properties
    (pattern,) = [json.loads(f["Pattern"]) for f in properties["FilterCriteria"]["Filters"]]
    # INSERTs of commit records only: archive tombstones are MODIFYs of the same keys.
    assert pattern == {"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "b#"}]}}}}


def test_the_filter_prefix_is_the_adapters_commit_record_key() -> None:
    from stratasync.storage.dynamodb_items import BATCH_PREFIX, batch_sk

    assert BATCH_PREFIX == "b#"
    assert batch_sk(0).startswith("b#")


def test_live_sync_alarms(stack: Stack) -> None:
    alarms = {key: a["Properties"] for key, a in stack.resources("AWS::CloudWatch::Alarm").items()}
    for key, function in (
        ("WebSocketErrorsAlarm", "WebSocketFunction"),
        ("FanoutErrorsAlarm", "FanoutFunction"),
    ):
        assert alarms[key]["MetricName"] == "Errors"
        assert alarms[key]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    lag = alarms["FanoutIteratorAgeAlarm"]
    assert (lag["Namespace"], lag["MetricName"], lag["Statistic"]) == ("AWS/Lambda", "IteratorAge", "Maximum")
    assert lag["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "FanoutFunction"}}]
    assert lag["Threshold"] == 30_000
    conflicts = alarms["WebSocketConflictRateAlarm"]
    (expression,) = [item["Expression"] for item in conflicts["Metrics"] if "Expression" in item]
    assert "conflicts / pushes" in expression
    for item in conflicts["Metrics"]:
        if "MetricStat" in item:  # the WebSocket function's pushes, not the sync function's
            metric = item["MetricStat"]["Metric"]
            assert metric["MetricName"] in ("Conflicts", "Pushes")
            assert metric["Dimensions"] == [{"Name": "service", "Value": "stratasync-ws"}]
    failures = alarms["FanoutFailuresAlarm"]
    assert failures["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert failures["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["FanoutFailureQueue", "QueueName"]}}
    ]


def test_the_websocket_url_output(stack: Stack) -> None:
    output = stack.template["Outputs"]["WebSocketUrl"]
    assert (
        render(output["Value"])
        == f"wss://${{WebSocketApi}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{STAGE}"
    )
    assert "makeWsSync" in output["Description"]
    assert stack.template["Outputs"]["ConnectionsTableName"]["Value"] == {"Ref": "ConnectionsTable"}


def _resolved(stack: Stack, value: Any) -> str:
    """An environment value as a deployment would see it: parameters at their defaults, the
    stack's own names and ARNs as plausible text."""
    text = render(value)
    for name, parameter in stack.template.get("Parameters", {}).items():
        text = text.replace(f"${{{name}}}", str(parameter.get("Default", "")))
    text = text.replace("${AWS::Region}", "us-east-1").replace("${AWS::URLSuffix}", "amazonaws.com")
    return re.sub(r"\$\{([\w:.]+)\}", lambda match: match.group(1).replace(":", "-").replace(".", "-"), text)


@pytest.mark.parametrize("function", LIVE_SENDERS)
def test_the_live_functions_environment_is_one_the_handlers_accept(stack: Stack, function: str) -> None:
    """Settings.from_env reads the environment of each function that sends to live pulls (the sync
    function's too), and the fan-out (which has no auth secret) can build its access control: a
    missing STRATASYNC_AUTH_REQUIRED=false there would make its init fail on AWS."""
    from stratasync.handlers.settings import Settings

    if "ws_endpoint" not in Settings.model_fields:
        pytest.skip("the WebSocket settings are not on this branch yet (the server's side of issue 10)")
    variables = stack.function(function)["Environment"]["Variables"]
    settings = Settings.from_env({name: _resolved(stack, value) for name, value in variables.items()})
    # getattr: this branch's Settings may not have the fields yet (mypy reads it too).
    assert getattr(settings, "ws_enabled") is True  # noqa: B009
    assert getattr(settings, "connections_table") == "ConnectionsTable"  # noqa: B009
    endpoint = f"https://WebSocketApi.execute-api.us-east-1.amazonaws.com/{STAGE}"
    assert getattr(settings, "ws_endpoint") == endpoint  # noqa: B009
    if function == "FanoutFunction":
        settings.access_control()  # no secret to read, no JWKS: it must not need one


def test_emf_metric_names_are_the_live_handlers() -> None:
    """The alarms' and the dashboard's names of the WebSocket and fan-out functions' EMF metrics."""
    from stratasync_infra.metrics import FANOUT_SERVICE, WS_SERVICE

    handlers = ROOT / "functions/stratasync/handlers"
    if not (handlers / "ws.py").exists():
        pytest.skip("functions/stratasync/handlers/ws.py is not on this branch yet (the WebSocket handlers)")
    ws, fanout = (handlers / "ws.py").read_text(), (handlers / "fanout.py").read_text()
    assert f'make_metrics("stratasync", "{WS_SERVICE}")' in ws
    assert f'make_metrics("stratasync", "{FANOUT_SERVICE}")' in fanout
    for name in ("Connections", "Pushes", "Conflicts", "EventsPushed", "EventsPulled"):
        assert f'name="{name}"' in ws
    assert 'name="ConnectionsClosed"' in fanout
    observability = (handlers / "observability.py").read_text()
    for constant, name in (
        ("LIVE_DELIVERIES_METRIC", "LiveDeliveries"),
        ("LIVE_MESSAGES_METRIC", "LiveMessages"),
        ("PUSH_FANOUT_SKIPPED_METRIC", "PushFanOutSkipped"),
    ):
        assert f'{constant} = "{name}"' in observability
        assert f"name={constant}" in fanout or constant == "PUSH_FANOUT_SKIPPED_METRIC"
        assert f"name={constant}" in observability  # observe_push_fan_out: the sync and ws functions
    for handler in ("sync.py", "ws.py"):
        assert "observe_push_fan_out(metrics" in (handlers / handler).read_text()
