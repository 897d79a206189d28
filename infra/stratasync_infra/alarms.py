"""The alarms, and the SNS topic they notify (``AlarmEmail`` subscribes to it)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from stratasync_infra.functions import Functions
from stratasync_infra.http_api import HttpApi
from stratasync_infra.live import LiveSync
from stratasync_infra.metrics import WS_SERVICE, api_metric, lambda_metric, ours, table_metric
from stratasync_infra.parts import Concern
from stratasync_infra.props import StratasyncProps
from stratasync_infra.storage import Storage

MINUTE, FIVE_MINUTES = cdk.Duration.minutes(1), cdk.Duration.minutes(5)
#: The fan-out's stream consumer lags when its oldest record waits longer than this (milliseconds).
FANOUT_ITERATOR_AGE_MS = 30_000


class Alarms(Concern):
    """``AlarmTopic`` and the alarms on the sync path, the archive and live sync; :meth:`alarm` adds
    one more."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        props: StratasyncProps,
        *,
        storage: Storage,
        functions: Functions,
        http: HttpApi,
        live: LiveSync | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.has_email = cdk.CfnCondition(
            self,
            "HasAlarmEmail",
            expression=cdk.Fn.condition_not(cdk.Fn.condition_equals(props.alarm_email, "")),
        )
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
            endpoint=props.alarm_email,
        )
        subscription.cfn_options.condition = self.has_email

        sync, archiver, table = functions.sync, functions.archiver, storage.table.table_name
        self.alarm(
            "SyncErrorsAlarm",
            "The sync function failed (it answers every request, so any error is a bug or an outage).",
            lambda_metric(sync, "Errors", "Sum", FIVE_MINUTES),
            threshold=1,
        )
        self.alarm(
            "SyncThrottlesAlarm",
            "The sync function was throttled (account or reserved concurrency exhausted).",
            lambda_metric(sync, "Throttles", "Sum", FIVE_MINUTES),
            threshold=1,
        )
        self.alarm(
            "ApiServerErrorsAlarm",
            "The HTTP API answered 5xx (integration failures or timeouts).",
            api_metric(http.api.api_id, "5xx", "Sum", FIVE_MINUTES),
            threshold=5,
        )
        self.alarm(
            "TableThrottlesAlarm",
            "DynamoDB throttled reads or writes (one store over a partition's 1,000 WCU / 3,000 RCU"
            " per second).",
            cloudwatch.MathExpression(
                expression="reads + writes",
                label="Read and write throttle events",
                period=FIVE_MINUTES,
                using_metrics={
                    "reads": table_metric(table, "ReadThrottleEvents", FIVE_MINUTES),
                    "writes": table_metric(table, "WriteThrottleEvents", FIVE_MINUTES),
                },
            ),
            threshold=1,
        )
        self._conflict_rate(props, "ConflictRateAlarm", "sync", "stratasync")
        self.alarm(
            "ArchiverErrorsAlarm",
            "An archiver run failed (it is retried; hot batches stay in DynamoDB until a run succeeds).",
            lambda_metric(archiver, "Errors", "Sum", FIVE_MINUTES),
            threshold=1,
        )
        self.alarm(
            "ArchiveLagAlarm",
            "Archive requests wait too long before the archiver runs them (AsyncEventAge of its"
            " asynchronous invocations over 15 minutes): sealed-to-be segments pile up in DynamoDB.",
            lambda_metric(archiver, "AsyncEventAge", "Maximum", FIVE_MINUTES),
            threshold=900_000,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
        )
        self.alarm(
            "ArchiveDeadLettersAlarm",
            "Archive requests failed all retries and went to the dead-letter queue (the next push that"
            " completes a segment triggers again).",
            functions.dead_letters.metric_approximate_number_of_messages_visible(
                period=FIVE_MINUTES, statistic="Maximum"
            ),
            threshold=1,
        )
        if live is not None:
            self._live(props, live)

    def _conflict_rate(self, props: StratasyncProps, alarm_id: str, function: str, service: str) -> None:
        self.alarm(
            alarm_id,
            "A large share of pushes is refused with ServerAheadError (Conflicts / Pushes, from the"
            f" {function} function's EMF metrics), i.e. many clients race on the same stores. Only"
            " counted from 20 pushes per 5 minutes on.",
            cloudwatch.MathExpression(
                expression="IF(pushes >= 20, conflicts / pushes, 0)",
                label="Conflicts per push",
                period=FIVE_MINUTES,
                using_metrics={
                    name.lower(): ours(name, FIVE_MINUTES, service) for name in ("Conflicts", "Pushes")
                },
            ),
            threshold=props.conflict_rate_threshold,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
        )

    def _live(self, props: StratasyncProps, live: LiveSync) -> None:
        # Pushes over WebSocket are counted by the WebSocket function (its own service dimension).
        self._conflict_rate(props, "WebSocketConflictRateAlarm", "WebSocket", WS_SERVICE)
        self.alarm(
            "WebSocketErrorsAlarm",
            "The WebSocket function failed (it answers every frame it is given, so any error is a bug"
            " or an outage: pushes and pulls over WebSocket fail).",
            lambda_metric(live.websocket, "Errors", "Sum", FIVE_MINUTES),
            threshold=1,
        )
        self.alarm(
            "FanoutErrorsAlarm",
            "The fan-out failed on a batch of new commits (it is retried; until it succeeds, live"
            " pulls of those stores get nothing new).",
            lambda_metric(live.fanout, "Errors", "Sum", FIVE_MINUTES),
            threshold=1,
        )
        self.alarm(
            "FanoutIteratorAgeAlarm",
            "The fan-out lags behind the eventlog's stream (IteratorAge over 30 s in 3 of 5 minutes):"
            " live clients see other clients' changes late.",
            lambda_metric(live.fanout, "IteratorAge", "Maximum", MINUTE),
            threshold=FANOUT_ITERATOR_AGE_MS,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=5,
            datapoints_to_alarm=3,
        )
        self.alarm(
            "FanoutFailuresAlarm",
            "Stream records failed all fan-out retries and went to the failure queue: a store's live"
            " pulls got those commits only if another commit followed (or they reconnected).",
            live.failures.metric_approximate_number_of_messages_visible(
                period=FIVE_MINUTES, statistic="Maximum"
            ),
            threshold=1,
        )

    def alarm(
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
        """An alarm that notifies the topic when it fires and when it clears; no data is not a breach."""
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
