"""The stratasync backend as one CDK construct: the single description of the stack.

Everything both deployments share is written here once: the table, the archive bucket, the dead-letter
queue, the auth secret, the functions' roles, log groups, environment and settings, the HTTP API with
its CORS and throttling, the alarms and the dashboard. How the functions' code is packaged is the one
thing that differs, and it is a :class:`Packaging`:

* :class:`CdkPackaging` (the default): ``functions/`` as a code asset, the dependencies as one layer
  built by pip (:mod:`stratasync_infra.bundling`), versions and a ``live`` alias from CDK;
* :class:`SamPackaging`: ``AWS::Serverless::Function`` resources with ``CodeUri: functions/``, which
  ``sam build`` fills from ``functions/requirements.txt``, and SAM's ``AutoPublishAlias``. The SAM
  template (``template.yaml``) is this construct synthesized with it (:mod:`stratasync_infra.sam`).

Both publish a version per deployment with SnapStart on, and everything that calls a function (the HTTP
API, the sync function's archive trigger) calls its ``live`` alias. Every value in
:class:`StratasyncProps` may be a token, e.g. a ``CfnParameter`` (see :mod:`stratasync_infra.stack`).

To add a resource (say the WebSocket API of the next issue), add it here once; a new function is one
more :class:`FunctionSpec` and both packagings deploy it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stratasync_infra.bundling import dependencies_code

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = ROOT / "functions"
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
MEMORY_MB = 1024
#: The alias every caller uses; each deployment publishes a version (SnapStart snapshots it) and
#: points the alias at it.
ALIAS = "live"
#: Not part of the CDK code asset (the layer holds the dependencies; SAM installs them itself).
CODE_EXCLUDES = ["*.egg-info", "**/__pycache__", "requirements.txt"]
#: The LiveStore client's JSON POST, its store id header, auth, and tracing headers (the sync
#: handler's CORSConfig allows the same; tests/infra checks it).
CORS_HEADERS = ["content-type", "x-livestore-store-id", "authorization", "b3", "traceparent", "tracestate"]
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latency": "$context.responseLatency",
    "integrationError": "$context.integrationErrorMessage",
}
SYNC_TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
]
ARCHIVE_TABLE_ACTIONS = [*SYNC_TABLE_ACTIONS, "dynamodb:BatchWriteItem"]

Number = int | float


@dataclass(frozen=True)
class StratasyncProps:
    """The deployment's settings; the SAM template's parameters are these (same defaults)."""

    #: ``"true"`` or ``"false"``: refuse requests without a valid JWT (STRATASYNC_AUTH_REQUIRED).
    auth_required: str = "true"
    #: ``""``: the construct creates a secret with a generated HS256 key; ``"none"``: no shared secret
    #: (JWKS only); else the ARN of an existing secret whose SecretString is the key.
    auth_secret_arn: str = ""
    auth_jwks_url: str = ""
    auth_audience: str = ""
    auth_issuer: str = ""
    max_events_per_push: Number = 100
    max_request_bytes: Number = 900_000
    max_event_bytes: Number = 900_000
    max_store_id_length: Number = 128
    max_event_name_length: Number = 128
    cors_allow_origin: str = "*"
    throttling_rate_limit: Number = 500
    throttling_burst_limit: Number = 1000
    segment_events: Number = 10_000
    segment_bytes: Number = 4_000_000
    presign_expiry_seconds: Number = 300
    archive_transition_days: Number = 30
    log_retention_days: Number = 30
    conflict_rate_threshold: Number = 0.5
    #: An address subscribed to the alarm topic (``""``: none).
    alarm_email: str = ""


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function, whatever packages it."""

    logical_id: str
    handler: str
    description: str
    timeout_seconds: int
    environment: dict[str, str]
    role: iam.CfnRole
    log_group: logs.LogGroup
    dead_letter_queue: sqs.Queue | None = None
    #: Asynchronous invocations (of the alias): retries and the oldest event still run, in seconds.
    async_retries: int | None = None
    async_max_age_seconds: int | None = None


@dataclass(frozen=True)
class DeployedFunction:
    """What the rest of the stack needs of a function: its name (metrics) and its alias (callers)."""

    function_name: str
    alias: lambda_.IFunction
    extra: dict[str, Any] = field(default_factory=dict)


class Packaging(Protocol):
    """Turns a :class:`FunctionSpec` into resources."""

    def function(self, scope: Construct, spec: FunctionSpec) -> DeployedFunction: ...


class CdkPackaging:
    """``functions/`` as the code asset, the dependencies as one pip-built layer (shared by all)."""

    def __init__(self) -> None:
        self._layers: dict[str, lambda_.LayerVersion] = {}

    def layer(self, scope: Construct) -> lambda_.LayerVersion:
        key = scope.node.path
        if key not in self._layers:
            self._layers[key] = lambda_.LayerVersion(
                scope,
                "Dependencies",
                description="stratasync's Python dependencies (functions/requirements.txt, from uv.lock)",
                code=dependencies_code(scope, FUNCTIONS_DIR, RUNTIME),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
            )
        return self._layers[key]

    def function(self, scope: Construct, spec: FunctionSpec) -> DeployedFunction:
        # The role is the construct's own (the same in both packagings); imported immutable, CDK adds
        # no statements to it (tracing and the dead-letter queue are granted there already).
        role = iam.Role.from_role_arn(scope, f"{spec.logical_id}RoleArn", spec.role.attr_arn, mutable=False)
        function = lambda_.Function(
            scope,
            spec.logical_id,
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=spec.handler,
            code=lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=CODE_EXCLUDES),
            layers=[self.layer(scope)],
            memory_size=MEMORY_MB,
            timeout=cdk.Duration.seconds(spec.timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE,
            role=role,
            log_group=spec.log_group,
            environment=spec.environment,
            dead_letter_queue=spec.dead_letter_queue,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS,
        )
        function.node.add_dependency(spec.role)
        alias = lambda_.Alias(
            scope, f"{spec.logical_id}Alias{ALIAS}", alias_name=ALIAS, version=function.current_version
        )
        if spec.async_retries is not None:
            alias.configure_async_invoke(
                retry_attempts=spec.async_retries,
                max_event_age=cdk.Duration.seconds(spec.async_max_age_seconds or 21600),
            )
        return DeployedFunction(function.function_name, alias)


class SamPackaging:
    """``AWS::Serverless::Function`` resources: ``sam build`` installs the requirements into each."""

    def __init__(self, code_uri: str = "functions/") -> None:
        self.code_uri = code_uri

    def function(self, scope: Construct, spec: FunctionSpec) -> DeployedFunction:
        stack = cdk.Stack.of(scope)
        stack.add_transform("AWS::Serverless-2016-10-31")
        cdk.Validations.of(stack).acknowledge(
            cdk.Acknowledgment(
                id="CloudFormation-Validate::F1020",
                reason="Ref <function>.Alias names the alias SAM's transform makes (CDK checks before it)",
            )
        )
        properties: dict[str, Any] = {
            "Description": spec.description,
            "CodeUri": self.code_uri,
            "Handler": spec.handler,
            "Runtime": RUNTIME.name,
            "Architectures": [ARCHITECTURE.name],
            "MemorySize": MEMORY_MB,
            "Timeout": spec.timeout_seconds,
            "Tracing": "Active",
            "Role": spec.role.attr_arn,
            "LoggingConfig": {"LogGroup": spec.log_group.log_group_name},
            "Environment": {"Variables": spec.environment},
            "SnapStart": {"ApplyOn": "PublishedVersions"},
            "AutoPublishAlias": ALIAS,
        }
        if spec.dead_letter_queue is not None:
            properties["DeadLetterQueue"] = {"Type": "SQS", "TargetArn": spec.dead_letter_queue.queue_arn}
        if spec.async_retries is not None:
            properties["EventInvokeConfig"] = {
                "MaximumRetryAttempts": spec.async_retries,
                "MaximumEventAgeInSeconds": spec.async_max_age_seconds or 21600,
            }
        function = cdk.CfnResource(
            scope, spec.logical_id, type="AWS::Serverless::Function", properties=properties
        )
        # SAM names the alias resource <function>Alias<name>; `Ref: <function>.Alias` is its ARN.
        alias_arn = cdk.Fn.ref(f"{stack.resolve(function.logical_id)}.Alias")
        alias = lambda_.Function.from_function_attributes(
            scope, f"{spec.logical_id}Alias{ALIAS}", function_arn=alias_arn, same_environment=True
        )
        return DeployedFunction(function.ref, alias)


def _text(value: str | Number) -> str:
    """A setting as an environment variable's text (a token stays a reference)."""
    if isinstance(value, str):
        return value
    if cdk.Token.is_unresolved(value):
        return cdk.Token.as_string(value)
    return str(int(value)) if float(value).is_integer() else str(value)


def _policy_statement(sid: str, actions: list[str] | str, resource: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}


class Stratasync(Construct):
    """HTTP API -> sync Lambda -> DynamoDB, the S3 archive and its archiver, alarms, dashboard.

    Attributes for the rest of an app: ``table``, ``bucket``, ``api``, ``topic``, ``sync`` and
    ``archiver`` (each a :class:`DeployedFunction`), ``secret_arn`` (empty if there is none).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        props: StratasyncProps | None = None,
        *,
        packaging: Packaging | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.props = props or StratasyncProps()
        self.packaging: Packaging = packaging or CdkPackaging()
        self._conditions()
        self._storage()
        self._functions()
        self._api()
        self._alarms()
        self._dashboard()

    # ------------------------------------------------------------------ conditions
    def _conditions(self) -> None:
        secret, email = self.props.auth_secret_arn, self.props.alarm_email
        self.create_secret = cdk.CfnCondition(
            self, "CreateAuthSecret", expression=cdk.Fn.condition_equals(secret, "")
        )
        self.no_secret = cdk.CfnCondition(
            self, "NoAuthSecret", expression=cdk.Fn.condition_equals(secret, "none")
        )
        self.has_secret = cdk.CfnCondition(
            self,
            "HasAuthSecret",
            expression=cdk.Fn.condition_not(cast(cdk.ICfnConditionExpression, self.no_secret)),
        )
        self.has_email = cdk.CfnCondition(
            self, "HasAlarmEmail", expression=cdk.Fn.condition_not(cdk.Fn.condition_equals(email, ""))
        )

    # ------------------------------------------------------------------ storage
    def _storage(self) -> None:
        self.table = dynamodb.Table(
            self,
            "EventTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.bucket = s3.Bucket(
            self,
            "ArchiveBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            lifecycle_rules=[
                # stores/<store>/segments/...: immutable, read when clients bootstrap; a re-run of
                # the archiver may write the same key again, so old versions go after a week.
                s3.LifecycleRule(
                    id="segments",
                    prefix="stores/",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                            transition_after=cdk.Duration.days(self.props.archive_transition_days),
                        )
                    ],
                    noncurrent_version_expiration=cdk.Duration.days(7),
                ),
                s3.LifecycleRule(
                    id="incomplete-uploads-and-delete-markers",
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                    expired_object_delete_marker=True,
                ),
            ],
        )
        self.secret = secretsmanager.CfnSecret(
            self,
            "AuthSecret",
            description="stratasync HS256 shared secret (sign client tokens with it)",
            generate_secret_string=secretsmanager.CfnSecret.GenerateSecretStringProperty(
                password_length=64, exclude_punctuation=True
            ),
        )
        self.secret.cfn_options.condition = self.create_secret
        given = self.props.auth_secret_arn
        #: The HS256 secret's ARN for the function ("" when there is none).
        self.secret_arn = cdk.Token.as_string(
            cdk.Fn.condition_if(
                self.create_secret.logical_id,
                self.secret.ref,
                cdk.Fn.condition_if(self.no_secret.logical_id, "", given),
            )
        )
        self._secret_resource = cdk.Fn.condition_if(self.create_secret.logical_id, self.secret.ref, given)
        self.dead_letters = sqs.Queue(
            self,
            "ArchiveDeadLetterQueue",
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )

    # ------------------------------------------------------------------ functions
    def _log_group(self, construct_id: str) -> logs.LogGroup:
        group = logs.LogGroup(self, construct_id, removal_policy=cdk.RemovalPolicy.DESTROY)
        child = group.node.default_child
        assert isinstance(child, logs.CfnLogGroup)
        # Any token (a parameter) works here, not only the enum's values.
        child.retention_in_days = self.props.log_retention_days
        return group

    def _role(self, construct_id: str, log_group: logs.LogGroup, statements: list[Any]) -> iam.CfnRole:
        """A function's role: its log group, X-Ray, and ``statements`` (its data): nothing else."""
        base = [
            _policy_statement("Logs", ["logs:CreateLogStream", "logs:PutLogEvents"], log_group.log_group_arn),
            # X-Ray takes no resource-level permissions.
            _policy_statement("Tracing", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*"),
        ]
        return iam.CfnRole(
            self,
            construct_id,
            assume_role_policy_document={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            policies=[
                iam.CfnRole.PolicyProperty(
                    policy_name="stratasync",
                    policy_document={"Version": "2012-10-17", "Statement": base + statements},
                )
            ],
        )

    def _functions(self) -> None:
        props = self.props
        segment_objects = self.bucket.arn_for_objects("stores/*")
        # Only what the deployment decides: the rest are the Settings defaults (one place each).
        common = {
            "STRATASYNC_TABLE_NAME": self.table.table_name,
            "STRATASYNC_ARCHIVE_BUCKET": self.bucket.bucket_name,
            "STRATASYNC_SEGMENT_EVENTS": _text(props.segment_events),
            "STRATASYNC_SEGMENT_BYTES": _text(props.segment_bytes),
        }
        # So that a missing segment is a 404 (NoSuchKey), not a 403.
        list_archive = _policy_statement("ListArchive", "s3:ListBucket", self.bucket.bucket_arn)

        # The archiver: invoked asynchronously by the sync function, failures to a dead-letter queue.
        log_group = self._log_group("ArchiveFunctionLogGroup")
        role = self._role(
            "ArchiveFunctionRole",
            log_group,
            [
                _policy_statement("EventTable", ARCHIVE_TABLE_ACTIONS, self.table.table_arn),
                _policy_statement("WriteSegments", ["s3:PutObject", "s3:GetObject"], segment_objects),
                list_archive,
                _policy_statement("DeadLetters", "sqs:SendMessage", self.dead_letters.queue_arn),
            ],
        )
        self.archiver = self.packaging.function(
            self,
            FunctionSpec(
                logical_id="ArchiveFunction",
                handler="stratasync.handlers.archiver.lambda_handler",
                description="stratasync archiver (seals old hot batches into S3 segments); invoked"
                " asynchronously by the sync function",
                timeout_seconds=300,
                environment={**common, "POWERTOOLS_LOG_LEVEL": "INFO"},
                role=role,
                log_group=log_group,
                dead_letter_queue=self.dead_letters,
                async_retries=2,
                async_max_age_seconds=6 * 3600,
            ),
        )

        log_group = self._log_group("SyncFunctionLogGroup")
        role = self._role(
            "SyncFunctionRole",
            log_group,
            [
                _policy_statement("EventTable", SYNC_TABLE_ACTIONS, self.table.table_arn),
                _policy_statement("ReadSegments", "s3:GetObject", segment_objects),
                list_archive,
                _policy_statement(
                    "TriggerArchiver", "lambda:InvokeFunction", self.archiver.alias.function_arn
                ),
                cdk.Fn.condition_if(
                    self.has_secret.logical_id,
                    _policy_statement("AuthSecret", "secretsmanager:GetSecretValue", self._secret_resource),
                    cdk.Aws.NO_VALUE,
                ),
            ],
        )
        self.sync = self.packaging.function(
            self,
            FunctionSpec(
                logical_id="SyncFunction",
                handler="stratasync.handlers.sync.lambda_handler",
                description="stratasync sync endpoint (LiveStore sync-cf HTTP) and archive manifest",
                timeout_seconds=20,
                environment={
                    **common,
                    "STRATASYNC_AUTH_REQUIRED": props.auth_required,
                    "STRATASYNC_AUTH_SECRET_ARN": self.secret_arn,
                    "STRATASYNC_AUTH_JWKS_URL": props.auth_jwks_url,
                    "STRATASYNC_AUTH_AUDIENCE": props.auth_audience,
                    "STRATASYNC_AUTH_ISSUER": props.auth_issuer,
                    "STRATASYNC_MAX_EVENTS_PER_PUSH": _text(props.max_events_per_push),
                    "STRATASYNC_MAX_REQUEST_BYTES": _text(props.max_request_bytes),
                    "STRATASYNC_MAX_EVENT_BYTES": _text(props.max_event_bytes),
                    "STRATASYNC_MAX_STORE_ID_LENGTH": _text(props.max_store_id_length),
                    "STRATASYNC_MAX_EVENT_NAME_LENGTH": _text(props.max_event_name_length),
                    # The alias: the snapshot-started version, with its retries and dead-letter queue.
                    "STRATASYNC_ARCHIVE_FUNCTION": self.archiver.alias.function_arn,
                    "STRATASYNC_PRESIGN_EXPIRY_SECONDS": _text(props.presign_expiry_seconds),
                    "POWERTOOLS_LOG_LEVEL": "INFO",
                },
                role=role,
                log_group=log_group,
            ),
        )

    # ------------------------------------------------------------------ HTTP API
    def _api(self) -> None:
        self.api = apigw.HttpApi(
            self,
            "HttpApi",
            api_name=cdk.Aws.STACK_NAME,
            description="stratasync sync endpoint (POST /) and archive manifest (GET /archive)",
            create_default_stage=False,
            cors_preflight=apigw.CorsPreflightOptions(
                allow_origins=[self.props.cors_allow_origin],
                allow_methods=[
                    apigw.CorsHttpMethod.GET,
                    apigw.CorsHttpMethod.POST,
                    apigw.CorsHttpMethod.OPTIONS,
                ],
                allow_headers=CORS_HEADERS,
                max_age=cdk.Duration.seconds(600),
            ),
        )
        access_logs = self._log_group("ApiAccessLogGroup")
        self.stage = apigw.HttpStage(
            self,
            "HttpApiApiGatewayDefaultStage",  # the logical id SAM's HttpApi gave the stage
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(
                rate_limit=self.props.throttling_rate_limit, burst_limit=self.props.throttling_burst_limit
            ),
        )
        stage = self.stage.node.default_child
        assert isinstance(stage, apigw.CfnStage)
        stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=access_logs.log_group_arn,
            format=json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")),
        )
        integration = integrations.HttpLambdaIntegration("SyncIntegration", self.sync.alias)
        self.api.add_routes(path="/", methods=[apigw.HttpMethod.POST], integration=integration)
        self.api.add_routes(path="/archive", methods=[apigw.HttpMethod.GET], integration=integration)
        #: The backend URL for makeHttpSync({ url }) and the Python client's backend_url.
        self.url = f"{self.api.api_endpoint}/"

    # ------------------------------------------------------------------ alarms
    def _alarms(self) -> None:
        self.topic = sns.Topic(self, "AlarmTopic", display_name="stratasync alarms", enforce_ssl=True)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
            )
        )
        subscription = sns.CfnSubscription(
            self,
            "AlarmEmailSubscription",
            topic_arn=self.topic.topic_arn,
            protocol="email",
            endpoint=self.props.alarm_email,
        )
        subscription.cfn_options.condition = self.has_email

        five_minutes = cdk.Duration.minutes(5)
        service = {"service": "stratasync"}
        self._alarm(
            "SyncErrorsAlarm",
            "The sync function failed (it answers every request, so any error is a bug or an outage).",
            self._lambda_metric(self.sync, "Errors", "Sum", five_minutes),
            threshold=1,
        )
        self._alarm(
            "SyncThrottlesAlarm",
            "The sync function was throttled (account or reserved concurrency exhausted).",
            self._lambda_metric(self.sync, "Throttles", "Sum", five_minutes),
            threshold=1,
        )
        self._alarm(
            "ApiServerErrorsAlarm",
            "The HTTP API answered 5xx (integration failures or timeouts).",
            self._api_metric("5xx", "Sum", five_minutes),
            threshold=5,
        )
        self._alarm(
            "TableThrottlesAlarm",
            "DynamoDB throttled reads or writes (one store over a partition's 1,000 WCU / 3,000 RCU"
            " per second).",
            cloudwatch.MathExpression(
                expression="reads + writes",
                label="Read and write throttle events",
                period=five_minutes,
                using_metrics={
                    "reads": self._table_metric("ReadThrottleEvents", five_minutes),
                    "writes": self._table_metric("WriteThrottleEvents", five_minutes),
                },
            ),
            threshold=1,
        )
        self._alarm(
            "ConflictRateAlarm",
            "A large share of pushes is refused with ServerAheadError (Conflicts / Pushes, from the sync"
            " function's EMF metrics), i.e. many clients race on the same stores. Only counted from 20"
            " pushes per 5 minutes on.",
            cloudwatch.MathExpression(
                expression="IF(pushes >= 20, conflicts / pushes, 0)",
                label="Conflicts per push",
                period=five_minutes,
                using_metrics={
                    name.lower(): cloudwatch.Metric(
                        namespace="stratasync",
                        metric_name=name,
                        dimensions_map=service,
                        statistic="Sum",
                        period=five_minutes,
                    )
                    for name in ("Conflicts", "Pushes")
                },
            ),
            threshold=self.props.conflict_rate_threshold,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
        )
        self._alarm(
            "ArchiverErrorsAlarm",
            "An archiver run failed (it is retried; hot batches stay in DynamoDB until a run succeeds).",
            self._lambda_metric(self.archiver, "Errors", "Sum", five_minutes),
            threshold=1,
        )
        self._alarm(
            "ArchiveLagAlarm",
            "Archive requests wait too long before the archiver runs them (AsyncEventAge of its"
            " asynchronous invocations over 15 minutes): sealed-to-be segments pile up in DynamoDB.",
            self._lambda_metric(self.archiver, "AsyncEventAge", "Maximum", five_minutes),
            threshold=900_000,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
        )
        self._alarm(
            "ArchiveDeadLettersAlarm",
            "Archive requests failed all retries and went to the dead-letter queue (the next push that"
            " completes a segment triggers again).",
            self.dead_letters.metric_approximate_number_of_messages_visible(
                period=five_minutes, statistic="Maximum"
            ),
            threshold=1,
        )

    @staticmethod
    def _lambda_metric(
        function: DeployedFunction, name: str, statistic: str, period: cdk.Duration
    ) -> cloudwatch.Metric:
        """A function's metric over all its versions (the FunctionName dimension alone)."""
        return cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name=name,
            dimensions_map={"FunctionName": function.function_name},
            statistic=statistic,
            period=period,
        )

    def _api_metric(self, name: str, statistic: str, period: cdk.Duration) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/ApiGateway",
            metric_name=name,
            dimensions_map={"ApiId": self.api.api_id},
            statistic=statistic,
            period=period,
        )

    def _table_metric(self, name: str, period: cdk.Duration) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/DynamoDB",
            metric_name=name,
            dimensions_map={"TableName": self.table.table_name},
            statistic="Sum",
            period=period,
        )

    def _alarm(
        self,
        construct_id: str,
        description: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        ),
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        alarm.add_ok_action(cw_actions.SnsAction(self.topic))
        return alarm

    # ------------------------------------------------------------------ dashboard
    def _dashboard(self) -> None:
        minute, five_minutes = cdk.Duration.minutes(1), cdk.Duration.minutes(5)

        def ours(name: str, service: str = "stratasync") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="stratasync",
                metric_name=name,
                dimensions_map={"service": service},
                statistic="Sum",
                period=minute,
            )

        def table(name: str) -> cloudwatch.Metric:
            return self._table_metric(name, minute)

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Sync requests", left=[ours("Requests"), ours("Pushes"), ours("Conflicts")], width=12
            ),
            cloudwatch.GraphWidget(
                title="Events pushed and pulled", left=[ours("EventsPushed"), ours("EventsPulled")], width=12
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Sync function",
                left=[
                    self._lambda_metric(self.sync, "Duration", "p50", minute),
                    self._lambda_metric(self.sync, "Duration", "p99", minute),
                ],
                right=[
                    self._lambda_metric(self.sync, "Errors", "Sum", minute),
                    self._lambda_metric(self.sync, "Throttles", "Sum", minute),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="HTTP API",
                left=[
                    self._api_metric("Count", "Sum", minute),
                    self._api_metric("4xx", "Sum", minute),
                    self._api_metric("5xx", "Sum", minute),
                ],
                right=[self._api_metric("Latency", "p99", minute)],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="DynamoDB",
                left=[
                    table("ConsumedWriteCapacityUnits"),
                    table("ConsumedReadCapacityUnits"),
                    table("WriteThrottleEvents"),
                    table("ReadThrottleEvents"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Archive",
                left=[
                    ours("SegmentsSealed", "stratasync-archive"),
                    ours("EventsArchived", "stratasync-archive"),
                    self._lambda_metric(self.archiver, "Errors", "Sum", five_minutes),
                    self.dead_letters.metric_approximate_number_of_messages_visible(statistic="Maximum"),
                ],
                right=[self._lambda_metric(self.archiver, "AsyncEventAge", "Maximum", five_minutes)],
                width=12,
            ),
        )
