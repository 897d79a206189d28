"""The CloudWatch dashboard: requests, events, the functions, the APIs, DynamoDB, the archive, live
sync."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from stratasync_infra.functions import Functions
from stratasync_infra.http_api import HttpApi
from stratasync_infra.live import LiveSync
from stratasync_infra.metrics import (
    FANOUT_SERVICE,
    WS_SERVICE,
    api_metric,
    lambda_metric,
    ours,
    table_metric,
    websocket_metric,
)
from stratasync_infra.parts import Concern
from stratasync_infra.storage import Storage
from stratasync_infra.websocket_api import WebSocketApi

MINUTE, FIVE_MINUTES = cdk.Duration.minutes(1), cdk.Duration.minutes(5)


class Dashboard(Concern):
    """``Dashboard`` (:attr:`dashboard`), two graphs a row; :meth:`add_row` adds one more."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        functions: Functions,
        http: HttpApi,
        websocket: WebSocketApi | None = None,
        live: LiveSync | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        sync, archiver, api_id = functions.sync, functions.archiver, http.api.api_id

        def table(name: str) -> cloudwatch.Metric:
            return table_metric(storage.table.table_name, name, MINUTE)

        def api(name: str, statistic: str = "Sum") -> cloudwatch.Metric:
            return api_metric(api_id, name, statistic, MINUTE)

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard")
        self.add_row(
            cloudwatch.GraphWidget(
                title="Sync requests",
                left=[ours("Requests", MINUTE), ours("Pushes", MINUTE), ours("Conflicts", MINUTE)],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Events pushed and pulled",
                left=[ours("EventsPushed", MINUTE), ours("EventsPulled", MINUTE)],
                width=12,
            ),
        )
        self.add_row(
            cloudwatch.GraphWidget(
                title="Sync function",
                left=[
                    lambda_metric(sync, "Duration", "p50", MINUTE),
                    lambda_metric(sync, "Duration", "p99", MINUTE),
                ],
                right=[
                    lambda_metric(sync, "Errors", "Sum", MINUTE),
                    lambda_metric(sync, "Throttles", "Sum", MINUTE),
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
        self.add_row(
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
                    ours("SegmentsSealed", MINUTE, "stratasync-archive"),
                    ours("EventsArchived", MINUTE, "stratasync-archive"),
                    lambda_metric(archiver, "Errors", "Sum", FIVE_MINUTES),
                    functions.dead_letters.metric_approximate_number_of_messages_visible(statistic="Maximum"),
                ],
                right=[lambda_metric(archiver, "AsyncEventAge", "Maximum", FIVE_MINUTES)],
                width=12,
            ),
        )
        self.add_row(
            cloudwatch.GraphWidget(
                title="Lag: archive (events past the segment threshold), commit to fan-out (ms)",
                left=[
                    ours("ArchiveLag", MINUTE, statistic="Maximum"),
                    ours("ArchiveLag", MINUTE, "stratasync-archive", statistic="Maximum"),
                ],
                right=[
                    ours("CommitToFanOutLag", MINUTE, FANOUT_SERVICE, statistic="p99"),
                    ours("CommitToFanOutLag", MINUTE, FANOUT_SERVICE, statistic="Maximum"),
                ],
                width=24,
            ),
        )
        if websocket is not None and live is not None:
            self._live(websocket, live)

    def _live(self, websocket: WebSocketApi, live: LiveSync) -> None:
        def ws(name: str, statistic: str = "Sum") -> cloudwatch.Metric:
            return websocket_metric(websocket.api_id, websocket.stage_name, name, statistic, MINUTE)

        self.add_row(
            cloudwatch.GraphWidget(
                title="WebSocket API",
                left=[ws("ConnectCount"), ws("MessageCount")],
                right=[ws("ClientError"), ws("IntegrationError"), ws("ExecutionError")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Live sync functions",
                left=[
                    lambda_metric(live.websocket, "Duration", "p99", MINUTE),
                    lambda_metric(live.fanout, "Duration", "p99", MINUTE),
                ],
                right=[
                    lambda_metric(live.websocket, "Errors", "Sum", MINUTE),
                    lambda_metric(live.fanout, "Errors", "Sum", MINUTE),
                ],
                width=12,
            ),
        )
        self.add_row(
            cloudwatch.GraphWidget(
                title="WebSocket pushes and pulls",
                left=[ours(name, MINUTE, WS_SERVICE) for name in ("Connections", "Pushes", "Conflicts")],
                right=[ours(name, MINUTE, WS_SERVICE) for name in ("EventsPushed", "EventsPulled")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Live fan-out: deliveries (by the push, by the stream), lag (ms), failures",
                left=[
                    ours("LiveDeliveries", MINUTE, "stratasync", label="delivered by HTTP pushes"),
                    ours("LiveDeliveries", MINUTE, WS_SERVICE, label="delivered by WebSocket pushes"),
                    ours("LiveDeliveries", MINUTE, FANOUT_SERVICE, label="delivered by the stream"),
                    ours("PushFanOutSkipped", MINUTE, "stratasync", label="HTTP pushes left to the stream"),
                    ours("PushFanOutSkipped", MINUTE, WS_SERVICE, label="WS pushes left to the stream"),
                    ours("LiveMessages", MINUTE, FANOUT_SERVICE),
                    ours("ConnectionsClosed", MINUTE, FANOUT_SERVICE),
                ],
                right=[
                    lambda_metric(live.fanout, "IteratorAge", "Maximum", MINUTE),
                    live.failures.metric_approximate_number_of_messages_visible(statistic="Maximum"),
                ],
                width=12,
            ),
        )

    def add_row(self, *widgets: cloudwatch.IWidget) -> None:
        """One row of widgets (each graph 12 wide: two a row)."""
        self.dashboard.add_widgets(*widgets)
