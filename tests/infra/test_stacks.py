"""What both deployable templates must say, checked on each as CloudFormation deploys it (template.yaml
after the SAM transform, and the CDK app's template): the security properties, the function settings,
SnapStart and the ``live`` alias, and the environment contract of stratasync.handlers.settings. Both
come from one CDK stack, so the last part only checks that the packaging is all that differs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from stratasync.handlers.settings import Settings
from tests.infra.conftest import ROOT
from tests.infra.templates import DATA_SERVICES, Stack, as_list, render

SYNC = "SyncFunction"
ARCHIVER = "ArchiveFunction"
WEBSOCKET = "WebSocketFunction"
FANOUT = "FanoutFunction"
HANDLERS = {
    SYNC: "stratasync.handlers.sync.lambda_handler",
    ARCHIVER: "stratasync.handlers.archiver.lambda_handler",
    # The contract with the WebSocket handlers (issue 10): functions/stratasync/handlers/{ws,fanout}.py
    WEBSOCKET: "stratasync.handlers.ws.lambda_handler",
    FANOUT: "stratasync.handlers.fanout.lambda_handler",
}
SYNC_TABLE_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
}
#: The WebSocket API's @connections (POST sends, DELETE closes, GET reads): this API and stage only.
MANAGE_CONNECTIONS = {
    (
        "execute-api:ManageConnections",
        f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{WebSocketApi}}"
        f"/sync/{method}/@connections/*",
    )
    for method in ("POST", "DELETE", "GET")
}
#: The connections table, read and written (no Scan): every function that sends to live pulls.
CONNECTIONS = {
    (f"dynamodb:{action}", "${ConnectionsTable.Arn}")
    for action in (
        *("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"),
        *("BatchWriteItem", "ConditionCheckItem"),
    )
}
#: What each function may do, as (action, resource) pairs: nothing else on data.
DATA_PERMISSIONS = {
    SYNC: {
        *((action, "${EventTable.Arn}") for action in SYNC_TABLE_ACTIONS),
        ("s3:GetObject", "${ArchiveBucket.Arn}/stores/*"),
        ("s3:ListBucket", "${ArchiveBucket.Arn}"),
        ("lambda:InvokeFunction", "${ArchiveFunctionAliaslive}"),  # the alias, not $LATEST
        ("secretsmanager:GetSecretValue", "If(CreateAuthSecret, ${AuthSecret}, ${AuthSecretArn})"),
        # It sends each push it commits to the store's live pulls (the fan-out is the safety net).
        *CONNECTIONS,
        *MANAGE_CONNECTIONS,
    },
    ARCHIVER: {
        *((action, "${EventTable.Arn}") for action in (*SYNC_TABLE_ACTIONS, "dynamodb:BatchWriteItem")),
        ("s3:PutObject", "${ArchiveBucket.Arn}/stores/*"),
        ("s3:GetObject", "${ArchiveBucket.Arn}/stores/*"),
        ("s3:ListBucket", "${ArchiveBucket.Arn}"),
        ("sqs:SendMessage", "${ArchiveDeadLetterQueue.Arn}"),
    },
}
DATA_PERMISSIONS[WEBSOCKET] = {
    # The sync function's (the connections and @connections too), plus the condition check on the
    # head that turns a pull live.
    *DATA_PERMISSIONS[SYNC],
    ("dynamodb:ConditionCheckItem", "${EventTable.Arn}"),
}
DATA_PERMISSIONS[FANOUT] = {
    *(
        (f"dynamodb:{action}", "${EventTable.Arn}")
        for action in ("GetItem", "Query", "BatchGetItem")  # the eventlog, read only
    ),
    *(
        (f"dynamodb:{action}", "${EventTable.StreamArn}")
        for action in ("DescribeStream", "GetRecords", "GetShardIterator")
    ),
    ("dynamodb:ListStreams", "*"),  # it takes no resource but "*"
    ("s3:GetObject", "${ArchiveBucket.Arn}/stores/*"),
    ("s3:ListBucket", "${ArchiveBucket.Arn}"),
    *CONNECTIONS,
    *MANAGE_CONNECTIONS,
    ("sqs:SendMessage", "${FanoutFailureQueue.Arn}"),  # the event source's on-failure destination
}
#: The environment of the WebSocket handlers (their Settings fields are the server's to add).
WS_SETTINGS = {"STRATASYNC_CONNECTIONS_TABLE", "STRATASYNC_WS_ENDPOINT", "STRATASYNC_WS_ENABLED"}
#: The only data actions on "*": those IAM has no resource type for.
RESOURCELESS_ACTIONS = {"dynamodb:ListStreams"}
ALARMS = {
    "SyncErrorsAlarm",
    "SyncThrottlesAlarm",
    "ApiServerErrorsAlarm",
    "TableThrottlesAlarm",
    "ConflictRateAlarm",
    "ArchiverErrorsAlarm",
    "ArchiveLagAlarm",
    "ArchiveDeadLettersAlarm",
    "WebSocketConflictRateAlarm",
    "WebSocketErrorsAlarm",
    "FanoutErrorsAlarm",
    "FanoutIteratorAgeAlarm",
    "FanoutFailuresAlarm",
}
#: Resources both templates have under the same logical id (StratasyncStack names them, SAM's alias too).
SHARED_RESOURCES = {
    "EventTable": "AWS::DynamoDB::Table",
    "ArchiveBucket": "AWS::S3::Bucket",
    "ArchiveBucketPolicy": "AWS::S3::BucketPolicy",
    "AuthSecret": "AWS::SecretsManager::Secret",
    "SyncFunctionRole": "AWS::IAM::Role",
    "ArchiveFunctionRole": "AWS::IAM::Role",
    "SyncFunction": "AWS::Lambda::Function",
    "ArchiveFunction": "AWS::Lambda::Function",
    "SyncFunctionAliaslive": "AWS::Lambda::Alias",
    "ArchiveFunctionAliaslive": "AWS::Lambda::Alias",
    "HttpApi": "AWS::ApiGatewayV2::Api",
    "HttpApiApiGatewayDefaultStage": "AWS::ApiGatewayV2::Stage",
    "SyncFunctionLogGroup": "AWS::Logs::LogGroup",
    "ArchiveFunctionLogGroup": "AWS::Logs::LogGroup",
    "ApiAccessLogGroup": "AWS::Logs::LogGroup",
    "ArchiveDeadLetterQueue": "AWS::SQS::Queue",
    "ArchiveDeadLetterQueuePolicy": "AWS::SQS::QueuePolicy",
    "AlarmTopic": "AWS::SNS::Topic",
    "AlarmTopicPolicy": "AWS::SNS::TopicPolicy",
    "AlarmEmailSubscription": "AWS::SNS::Subscription",
    "Dashboard": "AWS::CloudWatch::Dashboard",
    **dict.fromkeys(ALARMS, "AWS::CloudWatch::Alarm"),
    # Live sync over WebSocket (issue 10).
    "ConnectionsTable": "AWS::DynamoDB::Table",
    "WebSocketApi": "AWS::ApiGatewayV2::Api",
    "WebSocketStage": "AWS::ApiGatewayV2::Stage",
    "WebSocketIntegration": "AWS::ApiGatewayV2::Integration",
    "PingIntegration": "AWS::ApiGatewayV2::Integration",
    "PingIntegrationResponse": "AWS::ApiGatewayV2::IntegrationResponse",
    "PingRoute": "AWS::ApiGatewayV2::Route",
    "PingRouteResponse": "AWS::ApiGatewayV2::RouteResponse",
    "AckIntegration": "AWS::ApiGatewayV2::Integration",
    **{
        f"{name}Route": "AWS::ApiGatewayV2::Route"
        for name in ("Ack", "Connect", "Disconnect", "Request", "Interrupt", "Default")
    },
    "WebSocketInvokePermission": "AWS::Lambda::Permission",
    "WebSocketFunctionRole": "AWS::IAM::Role",
    "FanoutFunctionRole": "AWS::IAM::Role",
    "WebSocketFunction": "AWS::Lambda::Function",
    "FanoutFunction": "AWS::Lambda::Function",
    "WebSocketFunctionAliaslive": "AWS::Lambda::Alias",
    "FanoutFunctionAliaslive": "AWS::Lambda::Alias",
    "WebSocketFunctionLogGroup": "AWS::Logs::LogGroup",
    "FanoutFunctionLogGroup": "AWS::Logs::LogGroup",
    "FanoutEventSource": "AWS::Lambda::EventSourceMapping",
    "FanoutFailureQueue": "AWS::SQS::Queue",
    "FanoutFailureQueuePolicy": "AWS::SQS::QueuePolicy",
}


# ---------------------------------------------------------------------- security properties


def test_archive_bucket_is_private_encrypted_versioned(stack: Stack) -> None:
    bucket = stack.properties("ArchiveBucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert stack.template["Resources"]["ArchiveBucket"]["DeletionPolicy"] == "Retain"


def test_archive_bucket_lifecycle_per_prefix(stack: Stack) -> None:
    rules = {
        rule["Id"]: rule for rule in stack.properties("ArchiveBucket")["LifecycleConfiguration"]["Rules"]
    }
    segments = rules["segments"]
    # The archive writes every object under stores/ (stratasync.storage.segments).
    from stratasync.storage.segments import STORES_PREFIX

    assert segments["Prefix"] == STORES_PREFIX
    assert segments["Status"] == "Enabled"
    assert segments["Transitions"] == [
        {"StorageClass": "INTELLIGENT_TIERING", "TransitionInDays": {"Ref": "ArchiveTransitionDays"}}
    ]
    assert segments["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}
    whole_bucket = rules["incomplete-uploads-and-delete-markers"]
    assert "Prefix" not in whole_bucket
    assert whole_bucket["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_archive_bucket_policy_denies_plain_http(stack: Stack) -> None:
    policy = stack.properties("ArchiveBucketPolicy")
    assert policy["Bucket"] == {"Ref": "ArchiveBucket"}
    (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Principal"] in ("*", {"AWS": "*"})
    assert deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {render(r) for r in deny["Resource"]} == {"${ArchiveBucket.Arn}", "${ArchiveBucket.Arn}/*"}
    assert not [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]


def test_table_key_schema_billing_recovery_encryption(stack: Stack) -> None:
    table = stack.properties("EventTable")
    assert sorted(map(str, table["KeySchema"])) == sorted(
        map(str, [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    )
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
    }
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionProtectionEnabled"] is True
    # The live fan-out reads the keys of new commit records (and the events from the log).
    assert table["StreamSpecification"] == {"StreamViewType": "KEYS_ONLY"}
    assert "GlobalSecondaryIndexes" not in table
    assert stack.template["Resources"]["EventTable"]["DeletionPolicy"] == "Retain"


def test_table_key_names_are_the_adapters(stack: Stack) -> None:
    """The adapter's own table definition (used by the dev server) has the same keys."""
    source = (ROOT / "functions/stratasync/storage/dynamodb_table.py").read_text()
    for attribute in stack.properties("EventTable")["KeySchema"]:
        assert (
            f'{{"AttributeName": "{attribute["AttributeName"]}", "KeyType": "{attribute["KeyType"]}"}}'
            in source
        )


def test_no_wildcard_actions_and_no_wildcard_data_resources(stack: Stack) -> None:
    for function in HANDLERS:
        for statement in stack.statements(function):
            assert statement["Effect"] == "Allow"
            for action in as_list(statement["Action"]):
                assert "*" not in action, (function, statement)
                if action.startswith(DATA_SERVICES) and action not in RESOURCELESS_ACTIONS:
                    for resource in as_list(statement["Resource"]):
                        assert resource != "*", (function, statement)
                        # A reference to one of the stack's resources (or ARNs built on one).
                        text = render(resource)
                        assert re.match(r"\$\{|If\(|arn:\$\{AWS::Partition\}:.*\$\{(?!AWS::)\w+", text), (
                            resource
                        )


def test_functions_have_exactly_their_data_permissions(stack: Stack) -> None:
    for function, expected in DATA_PERMISSIONS.items():
        assert stack.data_permissions(function) == expected, function


def test_functions_run_on_arm64_and_a_current_python(stack: Stack) -> None:
    for function, handler in HANDLERS.items():
        properties = stack.function(function)
        assert properties["Architectures"] == ["arm64"]
        major, minor = map(int, re.fullmatch(r"python(\d+)\.(\d+)", properties["Runtime"]).groups())  # type: ignore[union-attr]
        assert (major, minor) >= (3, 12)
        assert properties["Handler"] == handler
        assert properties["TracingConfig"] == {"Mode": "Active"}


@pytest.mark.parametrize("function", HANDLERS)
def test_every_handler_exists(function: str) -> None:
    """The handler strings name functions of functions/. The WebSocket handlers are the server's
    side of issue 10: until their modules land, this says so (a skip), the templates name them anyway."""
    module, name = HANDLERS[function].rsplit(".", 1)
    source = ROOT / "functions" / (module.replace(".", "/") + ".py")
    if function in (WEBSOCKET, FANOUT) and not source.exists():
        pytest.skip(f"{source.relative_to(ROOT)} is not on this branch yet (the WebSocket handlers)")
    assert f"def {name}(" in source.read_text(), f"{HANDLERS[function]} does not exist"


def test_every_log_group_has_a_retention(stack: Stack) -> None:
    groups = stack.resources("AWS::Logs::LogGroup")
    assert set(groups) == {f"{function}LogGroup" for function in HANDLERS} | {"ApiAccessLogGroup"}
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    for function in HANDLERS:
        assert stack.function(function)["LoggingConfig"] == {"LogGroup": {"Ref": f"{function}LogGroup"}}


def test_alarms_exist_and_notify(stack: Stack) -> None:
    alarms = stack.resources("AWS::CloudWatch::Alarm")
    assert set(alarms) == ALARMS
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching"
    conflict = alarms["ConflictRateAlarm"]["Properties"]
    metrics = {
        item["MetricStat"]["Metric"]["MetricName"]: item["MetricStat"]["Metric"]
        for item in conflict["Metrics"]
        if "MetricStat" in item
    }
    assert set(metrics) == {"Conflicts", "Pushes"}
    for metric in metrics.values():
        # The names the sync handler's Powertools Metrics emit (namespace, service dimension).
        assert metric["Namespace"] == "stratasync"
        assert metric["Dimensions"] == [{"Name": "service", "Value": "stratasync"}]
    (expression,) = [item["Expression"] for item in conflict["Metrics"] if "Expression" in item]
    assert "conflicts / pushes" in expression
    assert conflict["Threshold"] == {"Ref": "ConflictRateThreshold"}
    lag = alarms["ArchiveLagAlarm"]["Properties"]
    assert (lag["MetricName"], lag["Dimensions"]) == (
        "AsyncEventAge",
        [{"Name": "FunctionName", "Value": {"Ref": ARCHIVER}}],
    )


def test_emf_metric_names_are_the_handlers() -> None:
    source = (ROOT / "functions/stratasync/handlers/sync.py").read_text()
    assert 'make_metrics("stratasync", "stratasync")' in source
    archiver = (ROOT / "functions/stratasync/handlers/archiver.py").read_text()
    assert 'make_metrics("stratasync", "stratasync-archive")' in archiver  # the dashboard's Archive widget
    for name in ("Pushes", "Conflicts"):
        assert f'name="{name}"' in source
    observability = (ROOT / "functions/stratasync/handlers/observability.py").read_text()
    assert 'ARCHIVE_LAG_METRIC = "ArchiveLag"' in observability  # the dashboard's lag row
    for handler in (source, archiver):
        assert "name=ARCHIVE_LAG_METRIC" in handler


def test_dashboard_exists(stack: Stack) -> None:
    body = render(stack.properties("Dashboard")["DashboardBody"])
    for text in ("Conflicts", "EventsPushed", "AsyncEventAge", "ConsumedWriteCapacityUnits", "5xx"):
        assert text in body
    for text in ("ConnectCount", "MessageCount", "IteratorAge", "stratasync-ws", "stratasync-fanout"):
        assert text in body
    for text in ("LiveDeliveries", "LiveMessages", "ConnectionsClosed", "PushFanOutSkipped"):  # EMF metrics
        assert text in body
    for text in ("ArchiveLag", "CommitToFanOutLag"):  # the lag row
        assert text in body


def test_http_api_cors_matches_the_handler(stack: Stack) -> None:
    cors = stack.properties("HttpApi")["CorsConfiguration"]
    handler = (ROOT / "functions/stratasync/handlers/sync.py").read_text()
    assert cors["AllowHeaders"]
    for header in cors["AllowHeaders"]:
        assert f'"{header}"' in handler, header
    assert cors["AllowOrigins"] == [{"Ref": "CorsAllowOrigin"}]
    assert set(cors["AllowMethods"]) == {"GET", "POST", "OPTIONS"}
    assert cors["MaxAge"] == 600


def test_http_api_is_throttled_and_logged(stack: Stack) -> None:
    stage = stack.template["Resources"]["HttpApiApiGatewayDefaultStage"]
    assert stage["Properties"]["StageName"] == "$default"
    assert stage["Properties"]["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
    }
    assert stage["Properties"]["AccessLogSettings"]["DestinationArn"] == {
        "Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]
    }
    routes = {
        tuple(route["Properties"]["RouteKey"].split(" "))
        for route in stack.resources("AWS::ApiGatewayV2::Route").values()
        if route["Properties"]["ApiId"] == {"Ref": "HttpApi"}
    }
    assert routes == {("POST", "/"), ("GET", "/archive")}


# ---------------------------------------------------------------------- SnapStart and the live alias


def test_functions_snapstart_a_published_version_behind_the_live_alias(stack: Stack) -> None:
    """Both functions restore from snapshots of published versions (python3.12+ supports it), and
    each has one alias, ``live``, on a version of that function."""
    for function in HANDLERS:
        assert stack.function(function)["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        alias = stack.properties(stack.alias(function))
        assert alias["Name"] == "live"
        version_id = alias["FunctionVersion"]["Fn::GetAtt"][0]
        version = stack.template["Resources"][version_id]
        assert version["Type"] == "AWS::Lambda::Version"
        assert version["Properties"]["FunctionName"] == {"Ref": function}
        assert "ProvisionedConcurrencyConfig" not in alias  # SnapStart excludes it
        assert stack.function(function).get("EphemeralStorage", {"Size": 512})["Size"] <= 512


def test_callers_invoke_the_alias(stack: Stack) -> None:
    """The APIs, the archive trigger and the stream's event source call ``live`` (snapshots run only
    for published versions)."""
    sync_alias, archive_alias = {"Ref": stack.alias(SYNC)}, {"Ref": stack.alias(ARCHIVER)}
    websocket_alias, fanout_alias = {"Ref": stack.alias(WEBSOCKET)}, {"Ref": stack.alias(FANOUT)}
    uris = {
        key: render(i["Properties"]["IntegrationUri"])
        for key, i in stack.resources("AWS::ApiGatewayV2::Integration").items()
        if i["Properties"]["IntegrationType"] != "MOCK"
    }
    assert uris.pop("WebSocketIntegration") == (
        "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
        f"{render(websocket_alias)}/invocations"
    )
    assert set(uris.values()) == {render(sync_alias)}  # the HTTP API's
    permissions = [p["Properties"] for p in stack.resources("AWS::Lambda::Permission").values()]
    assert sorted(render(p["FunctionName"]) for p in permissions) == sorted(
        [render(sync_alias)] * 2 + [render(websocket_alias)]
    )
    for permission in permissions:
        assert permission["Principal"] == "apigateway.amazonaws.com"
    (mapping,) = stack.resources("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionName"] == fanout_alias
    assert stack.function(SYNC)["Environment"]["Variables"]["STRATASYNC_ARCHIVE_FUNCTION"] == archive_alias
    (config,) = stack.resources("AWS::Lambda::EventInvokeConfig").values()
    assert config["Properties"]["FunctionName"] == {"Ref": ARCHIVER}
    # CDK names the qualifier as the alias ARN's last part (arn:...:function:<name>:live).
    alias_name = {"Fn::Select": [7, {"Fn::Split": [":", archive_alias]}]}
    assert config["Properties"]["Qualifier"] in ("live", alias_name)
    assert config["Properties"]["MaximumRetryAttempts"] == 2
    assert config["Properties"]["MaximumEventAgeInSeconds"] == 21600
    dead_letters = {"TargetArn": {"Fn::GetAtt": ["ArchiveDeadLetterQueue", "Arn"]}}
    assert stack.function(ARCHIVER)["DeadLetterConfig"] == dead_letters


# ---------------------------------------------------------------------- the settings contract


def test_environment_is_the_settings_contract(stack: Stack) -> None:
    """Every STRATASYNC_* variable is a field of stratasync.handlers.settings.Settings, and the required
    ones and the ones the deployment relies on are set."""
    # The WebSocket settings are the server's side of issue 10: tolerated until Settings has them.
    fields = {f"STRATASYNC_{name.upper()}" for name in Settings.model_fields} | WS_SETTINGS
    sync = stack.function(SYNC)["Environment"]["Variables"]
    archiver = stack.function(ARCHIVER)["Environment"]["Variables"]
    websocket = stack.function(WEBSOCKET)["Environment"]["Variables"]
    fanout = stack.function(FANOUT)["Environment"]["Variables"]
    for variables in (sync, archiver, websocket, fanout):
        names = {name for name in variables if name.startswith("STRATASYNC_")}
        assert names <= fields, names - fields
        assert variables["STRATASYNC_TABLE_NAME"] == {"Ref": "EventTable"}
        assert variables["STRATASYNC_ARCHIVE_BUCKET"] == {"Ref": "ArchiveBucket"}
        assert variables["STRATASYNC_SEGMENT_EVENTS"] == {"Ref": "SegmentEvents"}
        assert variables["STRATASYNC_SEGMENT_BYTES"] == {"Ref": "SegmentBytes"}
    assert sync["STRATASYNC_AUTH_REQUIRED"] == {"Ref": "AuthRequired"}
    assert render(sync["STRATASYNC_AUTH_SECRET_ARN"]) == (
        "If(CreateAuthSecret, ${AuthSecret}, If(NoAuthSecret, , ${AuthSecretArn}))"
    )
    limits = ["MAX_EVENTS_PER_PUSH", "MAX_REQUEST_BYTES", "MAX_EVENT_BYTES", "MAX_STORE_ID_LENGTH"]
    limits += [
        "MAX_EVENT_NAME_LENGTH",
        "AUTH_JWKS_URL",
        "AUTH_AUDIENCE",
        "AUTH_ISSUER",
        "PRESIGN_EXPIRY_SECONDS",
    ]
    for name in limits:
        parameter = "".join(part.capitalize() for part in name.lower().split("_"))
        assert sync[f"STRATASYNC_{name}"] == {"Ref": parameter}, name
    assert "STRATASYNC_AUTH_HS256_SECRET" not in sync  # never a secret in plain text
    # The WebSocket function does what the sync function does, over WebSocket frames.
    assert {k: v for k, v in websocket.items() if k in sync} == sync
    endpoint = "https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/sync"
    for variables in (sync, websocket, fanout):  # the sync function sends to live pulls too
        assert variables["STRATASYNC_CONNECTIONS_TABLE"] == {"Ref": "ConnectionsTable"}
        assert render(variables["STRATASYNC_WS_ENDPOINT"]) == endpoint  # the @connections API
        assert variables["STRATASYNC_WS_ENABLED"] == "true"
    assert not WS_SETTINGS & set(archiver)
    assert not {"STRATASYNC_AUTH_SECRET_ARN", "STRATASYNC_ARCHIVE_FUNCTION"} & set(fanout)
    # The fan-out serves no request: without this it would need a secret to build its verifier.
    assert fanout["STRATASYNC_AUTH_REQUIRED"] == "false"


def test_parameter_limits_match_the_code(stack: Stack) -> None:
    """The limits' parameters allow exactly what stratasync.core.limits.Limits accepts at the top."""
    from stratasync.protocol.limits import MAX_PUSH_EVENTS, MAX_REQUEST_BYTES

    parameters = stack.template["Parameters"]
    assert int(parameters["MaxEventsPerPush"]["MaxValue"]) == MAX_PUSH_EVENTS
    assert int(parameters["MaxRequestBytes"]["MaxValue"]) == MAX_REQUEST_BYTES
    assert parameters["AuthRequired"]["Default"] == "true"


def test_parameter_defaults_are_the_settings_defaults(stack: Stack) -> None:
    """A parameter with a Settings field behind it defaults to that field's default (one value each:
    the construct's StratasyncProps, checked against the handler's Settings)."""
    parameters = stack.template["Parameters"]
    for name, field in Settings.model_fields.items():
        parameter = "".join(part.capitalize() for part in name.split("_"))
        if parameter in parameters and field.default is not None:
            default = field.default if not isinstance(field.default, bool) else str(field.default).lower()
            assert str(parameters[parameter]["Default"]) == str(default), name
    assert {"SegmentEvents", "SegmentBytes", "PresignExpirySeconds", "MaxEventsPerPush"} <= set(parameters)


# ---------------------------------------------------------------------- SAM and CDK agree


def test_same_parameters_outputs_and_conditions(both: tuple[Stack, Stack]) -> None:
    sam, cdk = both
    cdk_parameters = {k: v for k, v in cdk.template["Parameters"].items() if k != "BootstrapVersion"}
    assert cdk_parameters == sam.template["Parameters"]
    assert {k: render(v["Value"]) for k, v in cdk.template["Outputs"].items()} == {
        k: render(v["Value"]) for k, v in sam.template["Outputs"].items()
    }
    assert cdk.template["Conditions"] == sam.template["Conditions"]


def test_only_the_packaging_differs(both: tuple[Stack, Stack]) -> None:
    """Same resources under the same logical ids, same properties, except what packaging makes: the
    code (an asset and a layer, or SAM's CodeUri), the versions' hashed ids, the invoke config's id."""
    sam, cdk = both
    for logical_id, type_ in SHARED_RESOURCES.items():
        assert sam.template["Resources"][logical_id]["Type"] == type_, logical_id
        assert cdk.template["Resources"][logical_id]["Type"] == type_, logical_id

    def normal(stack: Stack) -> dict[str, Any]:
        resources = {}
        for key, resource in stack.template["Resources"].items():
            if resource["Type"] in (
                "AWS::Lambda::Version",
                "AWS::Lambda::LayerVersion",
                "AWS::CDK::Metadata",
            ):
                continue
            properties = {
                k: v for k, v in resource.get("Properties", {}).items() if k not in ("Code", "Layers")
            }
            if (
                resource["Type"] == "AWS::Lambda::EventInvokeConfig"
            ):  # checked in test_callers_invoke_the_alias
                key = "EventInvokeConfig"
                properties = {
                    k: v for k, v in properties.items() if k not in ("Qualifier", "DestinationConfig")
                }
            if resource["Type"] == "AWS::Lambda::Alias":
                properties.pop("FunctionVersion")
            if resource["Type"] == "AWS::Lambda::Function":
                properties.get("Tags", []).clear()
                properties.pop("Tags", None)
            resources[key] = (resource["Type"], properties, resource.get("Condition"))
        return resources

    def deep(value: Any) -> Any:
        """Intrinsics as comparable text at any depth (SAM writes !Sub where CDK writes Fn::Join)."""
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref")):
            return render(value)
        if isinstance(value, dict):
            return {key: deep(item) for key, item in value.items()}
        if isinstance(value, list):
            return [deep(item) for item in value]
        return value

    mine, theirs = normal(sam), normal(cdk)
    assert set(mine) == set(theirs)
    for key in mine:
        assert deep(mine[key][1]) == deep(theirs[key][1]), key
        assert mine[key][0] == theirs[key][0], key
        assert mine[key][2] == theirs[key][2], key
