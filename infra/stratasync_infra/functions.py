"""The HTTP sync function and the archiver: their roles, log groups, environment and settings; and
:func:`live_access`, what every function that sends to live pulls gets (the sync function with the
WebSocket API, the WebSocket and fan-out functions: :mod:`~stratasync_infra.live`)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stratasync_infra.auth import AuthSecret
from stratasync_infra.packaging import DeployedFunction, FunctionSpec, Packaging
from stratasync_infra.parts import Concern, log_group, policy_statement, text
from stratasync_infra.props import StratasyncProps
from stratasync_infra.storage import Storage
from stratasync_infra.websocket_api import WebSocketApi

SYNC_TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
]
ARCHIVE_TABLE_ACTIONS = [*SYNC_TABLE_ACTIONS, "dynamodb:BatchWriteItem"]
#: The connections table, read and written (no Scan).
CONNECTIONS_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
]


def function_role(
    scope: Construct, construct_id: str, log_group: logs.LogGroup, statements: list[Any]
) -> iam.CfnRole:
    """A function's role: its log group, X-Ray, and ``statements`` (its data): nothing else."""
    base = [
        policy_statement("Logs", ["logs:CreateLogStream", "logs:PutLogEvents"], log_group.log_group_arn),
        # X-Ray takes no resource-level permissions.
        policy_statement("Tracing", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*"),
    ]
    return iam.CfnRole(
        scope,
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


def common_environment(props: StratasyncProps, storage: Storage) -> dict[str, str]:
    """What every function reads: only what the deployment decides (the rest are the Settings
    defaults, one place each)."""
    return {
        "STRATASYNC_TABLE_NAME": storage.table.table_name,
        "STRATASYNC_ARCHIVE_BUCKET": storage.bucket.bucket_name,
        "STRATASYNC_SEGMENT_EVENTS": text(props.segment_events),
        "STRATASYNC_SEGMENT_BYTES": text(props.segment_bytes),
    }


def live_access(storage: Storage, websocket: WebSocketApi) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """What a function that sends to live pulls needs: its environment (the connections table, the
    ``@connections`` endpoint, WebSocket limits on) and its statements (the connections table, and
    ``execute-api:ManageConnections`` on this API's stage only)."""
    connections = storage.connections
    assert connections is not None, "Storage(live=True) has a connections table"
    environment = {
        "STRATASYNC_CONNECTIONS_TABLE": connections.table_name,
        "STRATASYNC_WS_ENDPOINT": websocket.callback_url,
        # Every event must fit one of the WebSocket API's 128 KB messages.
        "STRATASYNC_WS_ENABLED": "true",
    }
    statements = [
        policy_statement("Connections", CONNECTIONS_ACTIONS, connections.table_arn),
        policy_statement("ManageConnections", "execute-api:ManageConnections", websocket.connections_arns()),
    ]
    return environment, statements


class Functions(Concern):
    """``SyncFunction`` (the HTTP sync endpoint) and ``ArchiveFunction`` (invoked asynchronously by
    it, failures to ``ArchiveDeadLetterQueue``), each with its own role and log group.

    With ``websocket_api``, the sync function also gets :func:`live_access` (it sends each push it
    commits to the store's live pulls; the fan-out from the stream is the safety net)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        props: StratasyncProps,
        *,
        storage: Storage,
        auth: AuthSecret,
        packaging: Packaging,
        websocket_api: WebSocketApi | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = sqs.Queue(
            self,
            "ArchiveDeadLetterQueue",
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        table, bucket = storage.table, storage.bucket
        segment_objects = bucket.arn_for_objects("stores/*")
        common = common_environment(props, storage)
        # So that a missing segment is a 404 (NoSuchKey), not a 403.
        list_archive = policy_statement("ListArchive", "s3:ListBucket", bucket.bucket_arn)

        # The archiver: invoked asynchronously by the sync function, failures to a dead-letter queue.
        logs_ = log_group(self, "ArchiveFunctionLogGroup", props.log_retention_days)
        role = function_role(
            self,
            "ArchiveFunctionRole",
            logs_,
            [
                policy_statement("EventTable", ARCHIVE_TABLE_ACTIONS, table.table_arn),
                policy_statement("WriteSegments", ["s3:PutObject", "s3:GetObject"], segment_objects),
                list_archive,
                policy_statement("DeadLetters", "sqs:SendMessage", self.dead_letters.queue_arn),
            ],
        )
        self.archiver: DeployedFunction = packaging.function(
            self,
            FunctionSpec(
                logical_id="ArchiveFunction",
                handler="stratasync.handlers.archiver.lambda_handler",
                description="stratasync archiver (seals old hot batches into S3 segments); invoked"
                " asynchronously by the sync function",
                timeout_seconds=300,
                environment={**common, "POWERTOOLS_LOG_LEVEL": "INFO"},
                role=role,
                log_group=logs_,
                dead_letter_queue=self.dead_letters,
                async_retries=2,
                async_max_age_seconds=6 * 3600,
            ),
        )

        live_environment, live_statements = (
            live_access(storage, websocket_api) if websocket_api is not None else ({}, [])
        )
        logs_ = log_group(self, "SyncFunctionLogGroup", props.log_retention_days)
        role = function_role(
            self,
            "SyncFunctionRole",
            logs_,
            [
                policy_statement("EventTable", SYNC_TABLE_ACTIONS, table.table_arn),
                policy_statement("ReadSegments", "s3:GetObject", segment_objects),
                list_archive,
                policy_statement(
                    "TriggerArchiver", "lambda:InvokeFunction", self.archiver.alias.function_arn
                ),
                *live_statements,
                cdk.Fn.condition_if(
                    auth.has_secret.logical_id,
                    policy_statement("AuthSecret", "secretsmanager:GetSecretValue", auth.resource),
                    cdk.Aws.NO_VALUE,
                ),
            ],
        )
        #: The sync function's environment (the WebSocket function's starts from it).
        self.sync_environment: dict[str, str] = {
            **common,
            "STRATASYNC_AUTH_REQUIRED": props.auth_required,
            "STRATASYNC_AUTH_SECRET_ARN": auth.secret_arn,
            "STRATASYNC_AUTH_JWKS_URL": props.auth_jwks_url,
            "STRATASYNC_AUTH_AUDIENCE": props.auth_audience,
            "STRATASYNC_AUTH_ISSUER": props.auth_issuer,
            "STRATASYNC_MAX_EVENTS_PER_PUSH": text(props.max_events_per_push),
            "STRATASYNC_MAX_REQUEST_BYTES": text(props.max_request_bytes),
            "STRATASYNC_MAX_EVENT_BYTES": text(props.max_event_bytes),
            "STRATASYNC_MAX_STORE_ID_LENGTH": text(props.max_store_id_length),
            "STRATASYNC_MAX_EVENT_NAME_LENGTH": text(props.max_event_name_length),
            # The alias: the snapshot-started version, with its retries and dead-letter queue.
            "STRATASYNC_ARCHIVE_FUNCTION": self.archiver.alias.function_arn,
            "STRATASYNC_PRESIGN_EXPIRY_SECONDS": text(props.presign_expiry_seconds),
            # With the WebSocket API: its live pulls, and every event must fit one of its messages.
            **live_environment,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        self.sync: DeployedFunction = packaging.function(
            self,
            FunctionSpec(
                logical_id="SyncFunction",
                handler="stratasync.handlers.sync.lambda_handler",
                description="stratasync sync endpoint (LiveStore sync-cf HTTP) and archive manifest",
                timeout_seconds=20,
                environment=self.sync_environment,
                role=role,
                log_group=logs_,
            ),
        )
