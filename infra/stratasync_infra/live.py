"""Live sync over WebSocket: the WebSocket function (the API's Lambda routes) and the fan-out
function (the eventlog's stream -> every live pull of the store), their roles and environment. Both,
and the HTTP sync function, reach live pulls with :func:`~stratasync_infra.functions.live_access`.

The fan-out reads new commit records from the ``EventTable`` stream (one shard reader per shard,
``ParallelizationFactor`` 1, so a store's commits arrive in order), in small batches with no
batching window (latency). A failing batch is split (``BisectBatchOnFunctionError``) and retried a
bounded number of times, for a bounded age, then its records go to ``FanoutFailureQueue`` (an
alarm watches it). Bounded, because an unbounded retry of one poison record would stop the shard,
i.e. live sync of every store on it, for up to the stream's 24 hours. Skipping is safe because a
fan-out sends each live pull everything from the pull's own ``sentSeq`` to the head, not the
record's events alone: the store's next commit delivers what a skipped record did not, and a pull
it cannot serve is closed, so its client re-pulls from its cursor. The HTTP sync function also sends
each push it commits to the store's live pulls itself; the fan-out stays as the safety net.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stratasync_infra.auth import AuthSecret
from stratasync_infra.functions import (
    SYNC_TABLE_ACTIONS,
    Functions,
    common_environment,
    function_role,
    live_access,
)
from stratasync_infra.packaging import DeployedFunction, FunctionSpec, Packaging
from stratasync_infra.parts import Concern, log_group, policy_statement
from stratasync_infra.props import StratasyncProps
from stratasync_infra.storage import Storage
from stratasync_infra.websocket_api import WebSocketApi

#: The commit records of new batches: INSERTs of ``b#<parent>`` items. Archive tombstones
#: (MODIFY), parts (``p#``), segment index items (``a#``) and deletions never invoke the fan-out.
FANOUT_FILTER = {"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "b#"}]}}}}
FANOUT_BATCH_SIZE = 10
FANOUT_RETRIES = 5
#: After 10 minutes (API Gateway's idle timeout) a record's fan-out is skipped (see above).
FANOUT_MAX_RECORD_AGE_SECONDS = 600
#: The stream permissions a DynamoDB event source needs; ListStreams takes no resource (only "*").
STREAM_ACTIONS = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
#: The eventlog as the fan-out reads it.
EVENTLOG_READ_ACTIONS = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"]


class LiveSync(Concern):
    """``WebSocketFunction`` and ``FanoutFunction`` (each with its role and log group), the stream
    event source of the fan-out (``FanoutEventSource``) and its ``FanoutFailureQueue``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        props: StratasyncProps,
        *,
        storage: Storage,
        auth: AuthSecret,
        functions: Functions,
        websocket: WebSocketApi,
        packaging: Packaging,
    ) -> None:
        super().__init__(scope, construct_id)
        table, bucket = storage.table, storage.bucket
        stream_arn = table.table_stream_arn
        assert stream_arn is not None, "Storage(live=True) has a stream"
        segment_objects = bucket.arn_for_objects("stores/*")
        # The connections table and this API's @connections (environment and role statements).
        live_environment, live_statements = live_access(storage, websocket)
        # The tiered eventlog: hot batches in the table, sealed segments in the bucket.
        read_segments = [
            policy_statement("ReadSegments", "s3:GetObject", segment_objects),
            policy_statement("ListArchive", "s3:ListBucket", bucket.bucket_arn),
        ]

        # The WebSocket function: the HTTP sync function's work over WebSocket frames, plus the
        # connections and live pulls (a pull turns live in a transaction that checks the head).
        logs_ = log_group(self, "WebSocketFunctionLogGroup", props.log_retention_days)
        role = function_role(
            self,
            "WebSocketFunctionRole",
            logs_,
            [
                policy_statement(
                    "EventTable", [*SYNC_TABLE_ACTIONS, "dynamodb:ConditionCheckItem"], table.table_arn
                ),
                *read_segments,
                policy_statement(
                    "TriggerArchiver", "lambda:InvokeFunction", functions.archiver.alias.function_arn
                ),
                *live_statements,
                cdk.Fn.condition_if(
                    auth.has_secret.logical_id,
                    policy_statement("AuthSecret", "secretsmanager:GetSecretValue", auth.resource),
                    cdk.Aws.NO_VALUE,
                ),
            ],
        )
        self.websocket: DeployedFunction = packaging.function(
            self,
            FunctionSpec(
                logical_id="WebSocketFunction",
                handler="stratasync.handlers.ws.lambda_handler",
                description="stratasync live sync (LiveStore sync-cf WebSocket): the WebSocket API's"
                " $connect, $disconnect, Request, Interrupt and $default routes",
                # Under API Gateway's 29 s integration timeout, so a slow request ends in Lambda.
                timeout_seconds=28,
                environment={**functions.sync_environment, **live_environment},
                role=role,
                log_group=logs_,
            ),
        )

        # The fan-out: new commit records from the stream, to every live pull of their store.
        self.failures = sqs.Queue(
            self,
            "FanoutFailureQueue",
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        logs_ = log_group(self, "FanoutFunctionLogGroup", props.log_retention_days)
        role = function_role(
            self,
            "FanoutFunctionRole",
            logs_,
            [
                policy_statement("EventTable", EVENTLOG_READ_ACTIONS, table.table_arn),
                policy_statement("EventStream", STREAM_ACTIONS, stream_arn),
                policy_statement("ListStreams", "dynamodb:ListStreams", "*"),
                *read_segments,
                *live_statements,
                # The event source's on-failure destination is sent to with the function's role.
                policy_statement("Failures", "sqs:SendMessage", self.failures.queue_arn),
            ],
        )
        self.fanout: DeployedFunction = packaging.function(
            self,
            FunctionSpec(
                logical_id="FanoutFunction",
                handler="stratasync.handlers.fanout.lambda_handler",
                description="stratasync live fan-out: new commits (the eventlog's stream) to the"
                " store's live WebSocket pulls",
                timeout_seconds=30,
                environment={
                    **common_environment(props, storage),
                    **live_environment,
                    # It serves no client request (the WebSocket function authorized each live pull
                    # at $connect), so it needs no token verifier, and no secret to build one.
                    "STRATASYNC_AUTH_REQUIRED": "false",
                    "POWERTOOLS_LOG_LEVEL": "INFO",
                },
                role=role,
                log_group=logs_,
            ),
        )
        self.event_source = lambda_.CfnEventSourceMapping(
            self,
            "FanoutEventSource",
            event_source_arn=stream_arn,
            function_name=self.fanout.alias.function_arn,  # the alias: SnapStart's version
            starting_position="LATEST",
            batch_size=FANOUT_BATCH_SIZE,
            maximum_batching_window_in_seconds=0,
            parallelization_factor=1,
            bisect_batch_on_function_error=True,
            maximum_retry_attempts=FANOUT_RETRIES,
            maximum_record_age_in_seconds=FANOUT_MAX_RECORD_AGE_SECONDS,
            # No ReportBatchItemFailures: the handler raises when a store could not be served in
            # full, and the whole batch is retried (a retry sends nothing twice).
            filter_criteria=lambda_.CfnEventSourceMapping.FilterCriteriaProperty(
                filters=[lambda_.CfnEventSourceMapping.FilterProperty(pattern=json.dumps(FANOUT_FILTER))]
            ),
            destination_config=lambda_.CfnEventSourceMapping.DestinationConfigProperty(
                on_failure=lambda_.CfnEventSourceMapping.OnFailureProperty(
                    destination=self.failures.queue_arn
                )
            ),
        )
