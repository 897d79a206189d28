"""The stratasync stack in CDK: the same resources, parameters, logical ids and outputs as the SAM
template (../template.yaml), so one can switch tools without a data migration. tests/infra checks
both templates for the security properties and for agreement.

The one difference is packaging: SAM's ``sam build`` installs ``functions/requirements.txt`` into
each function, while here the code asset is ``functions/`` alone and the dependencies are one
layer built by pip (see :mod:`stratasync_infra.bundling`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

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
from constructs import Construct, IConstruct

from stratasync_infra.bundling import dependencies_code

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
RUNTIME = lambda_.Runtime.PYTHON_3_13
#: Not part of the Lambda bundle: the client library (a symlink), build metadata, caches.
CODE_EXCLUDES = ["stratasync/client", "*.egg-info", "**/__pycache__", "requirements.txt"]
#: The LiveStore client's JSON POST, its store id header, auth, and tracing headers.
CORS_HEADERS = ["content-type", "x-livestore-store-id", "authorization", "b3", "traceparent", "tracestate"]
LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192]
LOG_RETENTION_DAYS += [2557, 2922, 3288, 3653]
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


def _logical_id(construct: IConstruct, logical_id: str) -> None:
    """Give the construct's CloudFormation resource the SAM template's logical id."""
    child = construct.node.default_child
    assert isinstance(child, cdk.CfnResource), construct.node.path
    child.override_logical_id(logical_id)


def _child(construct: Construct, name: str) -> IConstruct:
    """A child construct an L2 made for us (a resource policy, say)."""
    child = construct.node.try_find_child(name)
    assert child is not None, f"{construct.node.path}/{name}"
    return child


class StratasyncStack(cdk.Stack):
    """HTTP API -> sync Lambda -> DynamoDB, the S3 archive and its archiver, alarms, dashboard."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._parameters()
        self._storage()
        self._functions()
        self._api()
        self._alarms()
        self._dashboard()
        self._outputs()
        validations = cdk.Validations.of(self)
        validations.acknowledge(
            cdk.Acknowledgment(
                id="CloudFormation-Validate::W2509",
                reason="AuthSecretArn names a secret (an ARN), it is not one: no NoEcho",
            ),
        )
        validations.acknowledge(
            cdk.Acknowledgment(
                id="CloudFormation-Validate::W1001",
                reason="the AuthSecretArn output refers to AuthSecret only under its own condition (Fn::If)",
            ),
        )

    # ------------------------------------------------------------------ parameters
    def _parameters(self) -> None:
        def number(name: str, default: float, low: float | None, high: float | None, text: str = "") -> None:
            options: dict[str, Any] = {"type": "Number", "default": default}
            if low is not None:
                options["min_value"] = low
            if high is not None:
                options["max_value"] = high
            if text:
                options["description"] = text
            self.params[name] = cdk.CfnParameter(self, name, **options)

        self.params: dict[str, cdk.CfnParameter] = {}
        self.params["AuthRequired"] = cdk.CfnParameter(
            self,
            "AuthRequired",
            default="true",
            allowed_values=["true", "false"],
            description="Refuse requests without a valid JWT (STRATASYNC_AUTH_REQUIRED).",
        )
        self.params["AuthSecretArn"] = cdk.CfnParameter(
            self,
            "AuthSecretArn",
            default="",
            allowed_pattern=r"^$|^none$|^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$",
            description=(
                "The HS256 shared secret: empty = the stack creates a Secrets Manager secret with a"
                ' generated value; "none" = no shared secret (JWKS only); else the ARN of an existing'
                " secret whose SecretString is the key."
            ),
        )
        self.params["AuthJwksUrl"] = cdk.CfnParameter(
            self,
            "AuthJwksUrl",
            default="",
            allowed_pattern=r"^$|^https://.+$",
            description="JWKS URL for RS256/ES256 tokens (Cognito, Auth0, ...); empty = none.",
        )
        self.params["AuthAudience"] = cdk.CfnParameter(
            self, "AuthAudience", default="", description="Required `aud` claim; empty = not checked."
        )
        self.params["AuthIssuer"] = cdk.CfnParameter(
            self, "AuthIssuer", default="", description="Required `iss` claim; empty = not checked."
        )
        number("MaxEventsPerPush", 100, 1, 100)
        number("MaxRequestBytes", 900_000, 1000, 900_000)
        number("MaxEventBytes", 900_000, 100, 900_000, "At most MaxRequestBytes.")
        number("MaxStoreIdLength", 128, 1, 512)
        number("MaxEventNameLength", 128, 1, 1024)
        self.params["CorsAllowOrigin"] = cdk.CfnParameter(
            self,
            "CorsAllowOrigin",
            default="*",
            description=(
                'The origin browsers may call the API from, e.g. https://app.example.com ("*" = any).'
            ),
        )
        number("ThrottlingRateLimit", 500, 1, None, "Steady-state requests per second for the whole API.")
        number("ThrottlingBurstLimit", 1000, 1, None)
        number("SegmentEvents", 10_000, 1, 1_000_000, "Seal an archive segment at this many events ...")
        number(
            "SegmentBytes",
            4_000_000,
            1,
            100_000_000,
            "... or at this many bytes of event JSON, whichever first.",
        )
        number(
            "PresignExpirySeconds", 300, 1, 3600, "Lifetime of the presigned segment URLs of GET /archive."
        )
        number(
            "ArchiveTransitionDays",
            30,
            0,
            None,
            "Segments move to S3 Intelligent-Tiering after this many days.",
        )
        self.params["LogRetentionInDays"] = cdk.CfnParameter(
            self,
            "LogRetentionInDays",
            type="Number",
            default="30",  # a string, like the allowed values (CloudFormation compares them as text)
            allowed_values=[str(days) for days in LOG_RETENTION_DAYS],
        )
        number(
            "ConflictRateThreshold",
            0.5,
            0,
            1,
            "Alarm when more than this share of pushes is refused with ServerAheadError.",
        )
        self.params["AlarmEmail"] = cdk.CfnParameter(
            self,
            "AlarmEmail",
            default="",
            description="An address subscribed to the alarm topic (empty = none).",
        )

        self.create_secret = cdk.CfnCondition(
            self, "CreateAuthSecret", expression=cdk.Fn.condition_equals(self.text("AuthSecretArn"), "")
        )
        self.no_secret = cdk.CfnCondition(
            self, "NoAuthSecret", expression=cdk.Fn.condition_equals(self.text("AuthSecretArn"), "none")
        )
        self.has_secret = cdk.CfnCondition(
            self,
            "HasAuthSecret",
            expression=cdk.Fn.condition_not(cast(cdk.ICfnConditionExpression, self.no_secret)),
        )
        self.has_email = cdk.CfnCondition(
            self,
            "HasAlarmEmail",
            expression=cdk.Fn.condition_not(cdk.Fn.condition_equals(self.text("AlarmEmail"), "")),
        )

    def text(self, name: str) -> str:
        """A parameter's value as a string token (what an environment variable takes)."""
        return self.params[name].value_as_string

    def num(self, name: str) -> float:
        """A parameter's value as a number token."""
        return self.params[name].value_as_number

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
        _logical_id(self.table, "EventTable")

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
                            transition_after=cdk.Duration.days(self.num("ArchiveTransitionDays")),
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
        _logical_id(self.bucket, "ArchiveBucket")
        assert self.bucket.policy is not None
        _logical_id(self.bucket.policy, "ArchiveBucketPolicy")

        self.secret = secretsmanager.CfnSecret(
            self,
            "AuthSecret",
            description="stratasync HS256 shared secret (sign client tokens with it)",
            generate_secret_string=secretsmanager.CfnSecret.GenerateSecretStringProperty(
                password_length=64, exclude_punctuation=True
            ),
        )
        self.secret.cfn_options.condition = self.create_secret
        self.secret.override_logical_id("AuthSecret")
        self.secret_arn = cdk.Fn.condition_if(
            self.create_secret.logical_id,
            self.secret.ref,
            cdk.Fn.condition_if(self.no_secret.logical_id, "", self.text("AuthSecretArn")),
        ).to_string()

    # ------------------------------------------------------------------ functions
    def _log_group(self, logical_id: str) -> logs.LogGroup:
        group = logs.LogGroup(self, logical_id, removal_policy=cdk.RemovalPolicy.DESTROY)
        child = group.node.default_child
        assert isinstance(child, logs.CfnLogGroup)
        child.retention_in_days = self.num("LogRetentionInDays")
        child.override_logical_id(logical_id)
        return group

    def _function(
        self,
        logical_id: str,
        handler: str,
        description: str,
        timeout: int,
        environment: dict[str, str],
        **options: Any,
    ) -> lambda_.Function:
        function = lambda_.Function(
            self,
            logical_id,
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=CODE_EXCLUDES),
            layers=[self.deps_layer],
            memory_size=1024,
            timeout=cdk.Duration.seconds(timeout),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self._log_group(f"{logical_id}LogGroup"),
            environment={**environment, "POWERTOOLS_LOG_LEVEL": "INFO"},
            **options,
        )
        _logical_id(function, logical_id)
        return function

    def _functions(self) -> None:
        self.deps_layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            description="stratasync's Python dependencies (functions/requirements.txt)",
            code=dependencies_code(self, FUNCTIONS_DIR, RUNTIME),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.ARM_64],
        )
        segments = {
            "STRATASYNC_SEGMENT_EVENTS": self.text("SegmentEvents"),
            "STRATASYNC_SEGMENT_BYTES": self.text("SegmentBytes"),
        }
        stores = {
            "STRATASYNC_TABLE_NAME": self.table.table_name,
            "STRATASYNC_STORAGE_TIME_BUDGET_SECONDS": "5",
        }
        segment_objects = self.bucket.arn_for_objects("stores/*")

        # The archiver: invoked asynchronously by the sync function, failures to a dead-letter queue.
        self.dead_letters = sqs.Queue(
            self,
            "ArchiveDeadLetterQueue",
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        _logical_id(self.dead_letters, "ArchiveDeadLetterQueue")
        _logical_id(_child(self.dead_letters, "Policy"), "ArchiveDeadLetterQueuePolicy")
        self.archiver = self._function(
            "ArchiveFunction",
            "stratasync.handlers.archiver.lambda_handler",
            "stratasync archiver (seals old hot batches into S3 segments); invoked asynchronously by"
            " the sync function",
            300,
            {**stores, "STRATASYNC_ARCHIVE_BUCKET": self.bucket.bucket_name, **segments},
            dead_letter_queue=self.dead_letters,
            retry_attempts=2,
            max_event_age=cdk.Duration.hours(6),
        )
        self.archiver.add_to_role_policy(
            iam.PolicyStatement(
                sid="EventTable", actions=ARCHIVE_TABLE_ACTIONS, resources=[self.table.table_arn]
            )
        )
        self.archiver.add_to_role_policy(
            iam.PolicyStatement(
                sid="WriteSegments", actions=["s3:PutObject", "s3:GetObject"], resources=[segment_objects]
            )
        )
        # So that a missing segment is a 404 (NoSuchKey), not a 403.
        self.archiver.add_to_role_policy(
            iam.PolicyStatement(
                sid="ListArchive", actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn]
            )
        )

        self.sync = self._function(
            "SyncFunction",
            "stratasync.handlers.sync.lambda_handler",
            "stratasync sync endpoint (LiveStore sync-cf HTTP) and archive manifest",
            20,
            {
                **stores,
                "STRATASYNC_PULL_RESPONSE_BYTES": "4500000",
                "STRATASYNC_AUTH_REQUIRED": self.text("AuthRequired"),
                "STRATASYNC_AUTH_SECRET_ARN": self.secret_arn,
                "STRATASYNC_AUTH_JWKS_URL": self.text("AuthJwksUrl"),
                "STRATASYNC_AUTH_AUDIENCE": self.text("AuthAudience"),
                "STRATASYNC_AUTH_ISSUER": self.text("AuthIssuer"),
                "STRATASYNC_MAX_EVENTS_PER_PUSH": self.text("MaxEventsPerPush"),
                "STRATASYNC_MAX_REQUEST_BYTES": self.text("MaxRequestBytes"),
                "STRATASYNC_MAX_EVENT_BYTES": self.text("MaxEventBytes"),
                "STRATASYNC_MAX_STORE_ID_LENGTH": self.text("MaxStoreIdLength"),
                "STRATASYNC_MAX_EVENT_NAME_LENGTH": self.text("MaxEventNameLength"),
                "STRATASYNC_ARCHIVE_BUCKET": self.bucket.bucket_name,
                "STRATASYNC_ARCHIVE_FUNCTION": self.archiver.function_name,
                **segments,
                "STRATASYNC_PRESIGN_EXPIRY_SECONDS": self.text("PresignExpirySeconds"),
            },
        )
        self.sync.add_to_role_policy(
            iam.PolicyStatement(
                sid="EventTable", actions=SYNC_TABLE_ACTIONS, resources=[self.table.table_arn]
            )
        )
        self.sync.add_to_role_policy(
            iam.PolicyStatement(sid="ReadSegments", actions=["s3:GetObject"], resources=[segment_objects])
        )
        self.sync.add_to_role_policy(
            iam.PolicyStatement(
                sid="ListArchive", actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn]
            )
        )
        self.sync.add_to_role_policy(
            iam.PolicyStatement(
                sid="TriggerArchiver",
                actions=["lambda:InvokeFunction"],
                resources=[self.archiver.function_arn],
            )
        )
        # The shared secret's statement exists only when there is a secret: an inline policy of the
        # role under Fn::If (as in the SAM template), so it is in place before the function runs.
        role = self.sync.role
        assert role is not None
        role_resource = role.node.default_child
        assert isinstance(role_resource, iam.CfnRole)
        secret = self.secret_resource_arn()
        role_resource.add_property_override(
            "Policies",
            [
                cdk.Fn.condition_if(
                    self.has_secret.logical_id,
                    {
                        "PolicyName": "auth-secret",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Sid": "AuthSecret",
                                    "Effect": "Allow",
                                    "Action": "secretsmanager:GetSecretValue",
                                    "Resource": secret,
                                }
                            ],
                        },
                    },
                    cdk.Aws.NO_VALUE,
                )
            ],
        )

    def secret_resource_arn(self) -> Any:
        """The shared secret's ARN where there is one (the created one, or the parameter's)."""
        return cdk.Fn.condition_if(self.create_secret.logical_id, self.secret.ref, self.text("AuthSecretArn"))

    # ------------------------------------------------------------------ HTTP API
    def _api(self) -> None:
        self.api = apigw.HttpApi(
            self,
            "HttpApi",
            api_name=self.stack_name,
            description="stratasync sync endpoint (POST /) and archive manifest (GET /archive)",
            create_default_stage=False,
            cors_preflight=apigw.CorsPreflightOptions(
                allow_origins=[self.text("CorsAllowOrigin")],
                allow_methods=[
                    apigw.CorsHttpMethod.GET,
                    apigw.CorsHttpMethod.POST,
                    apigw.CorsHttpMethod.OPTIONS,
                ],
                allow_headers=CORS_HEADERS,
                max_age=cdk.Duration.seconds(600),
            ),
        )
        _logical_id(self.api, "HttpApi")
        access_logs = self._log_group("ApiAccessLogGroup")
        self.stage = apigw.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(
                rate_limit=self.num("ThrottlingRateLimit"), burst_limit=self.num("ThrottlingBurstLimit")
            ),
        )
        stage = self.stage.node.default_child
        assert isinstance(stage, apigw.CfnStage)
        stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=access_logs.log_group_arn,
            format=json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")),
        )
        stage.override_logical_id("HttpApiApiGatewayDefaultStage")
        integration = integrations.HttpLambdaIntegration("SyncIntegration", self.sync)
        self.api.add_routes(path="/", methods=[apigw.HttpMethod.POST], integration=integration)
        self.api.add_routes(path="/archive", methods=[apigw.HttpMethod.GET], integration=integration)

    # ------------------------------------------------------------------ alarms
    def _alarms(self) -> None:
        self.topic = sns.Topic(self, "AlarmTopic", display_name="stratasync alarms", enforce_ssl=True)
        _logical_id(self.topic, "AlarmTopic")
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        _logical_id(_child(self.topic, "Policy"), "AlarmTopicPolicy")
        subscription = sns.CfnSubscription(
            self,
            "AlarmEmailSubscription",
            topic_arn=self.topic.topic_arn,
            protocol="email",
            endpoint=self.text("AlarmEmail"),
        )
        subscription.cfn_options.condition = self.has_email
        subscription.override_logical_id("AlarmEmailSubscription")

        five_minutes = cdk.Duration.minutes(5)
        table_name = {"TableName": self.table.table_name}
        service = {"service": "stratasync"}
        self._alarm(
            "SyncErrorsAlarm",
            "The sync function failed (it answers every request, so any error is a bug or an outage).",
            self.sync.metric_errors(period=five_minutes, statistic="Sum"),
            threshold=1,
        )
        self._alarm(
            "SyncThrottlesAlarm",
            "The sync function was throttled (account or reserved concurrency exhausted).",
            self.sync.metric_throttles(period=five_minutes, statistic="Sum"),
            threshold=1,
        )
        self._alarm(
            "ApiServerErrorsAlarm",
            "The HTTP API answered 5xx (integration failures or timeouts).",
            cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name="5xx",
                dimensions_map={"ApiId": self.api.api_id},
                statistic="Sum",
                period=five_minutes,
            ),
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
                    "reads": cloudwatch.Metric(
                        namespace="AWS/DynamoDB",
                        metric_name="ReadThrottleEvents",
                        dimensions_map=table_name,
                        statistic="Sum",
                        period=five_minutes,
                    ),
                    "writes": cloudwatch.Metric(
                        namespace="AWS/DynamoDB",
                        metric_name="WriteThrottleEvents",
                        dimensions_map=table_name,
                        statistic="Sum",
                        period=five_minutes,
                    ),
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
            threshold=self.num("ConflictRateThreshold"),
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
        )
        self._alarm(
            "ArchiverErrorsAlarm",
            "An archiver run failed (it is retried; hot batches stay in DynamoDB until a run succeeds).",
            self.archiver.metric_errors(period=five_minutes, statistic="Sum"),
            threshold=1,
        )
        self._alarm(
            "ArchiveLagAlarm",
            "Archive requests wait too long before the archiver runs them (AsyncEventAge of its"
            " asynchronous invocations over 15 minutes): sealed-to-be segments pile up in DynamoDB.",
            self.archiver.metric("AsyncEventAge", period=five_minutes, statistic="Maximum"),
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

    def _alarm(
        self,
        logical_id: str,
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
            logical_id,
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
        _logical_id(alarm, logical_id)
        return alarm

    # ------------------------------------------------------------------ dashboard
    def _dashboard(self) -> None:
        minute = cdk.Duration.minutes(1)

        def ours(name: str, service: str = "stratasync", statistic: str = "Sum") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="stratasync",
                metric_name=name,
                dimensions_map={"service": service},
                statistic=statistic,
                period=minute,
            )

        def api(name: str, statistic: str = "Sum") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name=name,
                dimensions_map={"ApiId": self.api.api_id},
                statistic=statistic,
                period=minute,
            )

        def table(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/DynamoDB",
                metric_name=name,
                dimensions_map={"TableName": self.table.table_name},
                statistic="Sum",
                period=minute,
            )

        dashboard = cloudwatch.Dashboard(self, "Dashboard")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Sync requests",
                left=[ours("Requests"), ours("Pushes"), ours("Conflicts")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Events pushed and pulled", left=[ours("EventsPushed"), ours("EventsPulled")], width=12
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Sync function",
                left=[
                    self.sync.metric_duration(statistic="p50", period=minute),
                    self.sync.metric_duration(statistic="p99", period=minute),
                ],
                right=[
                    self.sync.metric_errors(statistic="Sum", period=minute),
                    self.sync.metric_throttles(statistic="Sum", period=minute),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="HTTP API",
                left=[api("Count"), api("4xx"), api("5xx")],
                right=[api("Latency", "p99")],
                width=12,
            ),
        )
        dashboard.add_widgets(
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
                    self.archiver.metric_errors(statistic="Sum", period=cdk.Duration.minutes(5)),
                    self.dead_letters.metric_approximate_number_of_messages_visible(statistic="Maximum"),
                ],
                right=[
                    self.archiver.metric("AsyncEventAge", statistic="Maximum", period=cdk.Duration.minutes(5))
                ],
                width=12,
            ),
        )
        _logical_id(dashboard, "Dashboard")
        self.dashboard = dashboard

    # ------------------------------------------------------------------ outputs
    def _outputs(self) -> None:
        cdk.CfnOutput(
            self,
            "SyncUrl",
            description="The backend URL for makeHttpSync({ url }) and the Python client's backend_url.",
            value=f"{self.api.api_endpoint}/",
        )
        cdk.CfnOutput(self, "TableName", value=self.table.table_name)
        cdk.CfnOutput(self, "ArchiveBucketName", value=self.bucket.bucket_name)
        cdk.CfnOutput(
            self,
            "AuthSecretArnOutput",  # the parameter has the construct id; the outputs' is the same
            description=(
                "The Secrets Manager secret holding the HS256 key (empty when AuthSecretArn is none)."
            ),
            value=self.secret_arn,
        ).override_logical_id("AuthSecretArn")
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.topic.topic_arn)
        dashboard = self.dashboard.node.default_child
        assert isinstance(dashboard, cdk.CfnResource)
        cdk.CfnOutput(self, "DashboardName", value=dashboard.ref)
