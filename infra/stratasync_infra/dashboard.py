"""The CloudWatch dashboard: requests, events, the functions, the APIs, DynamoDB, the archive."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from stratasync_infra.functions import Functions
from stratasync_infra.http_api import HttpApi
from stratasync_infra.metrics import api_metric, lambda_metric, ours, table_metric
from stratasync_infra.parts import Concern
from stratasync_infra.storage import Storage

MINUTE, FIVE_MINUTES = cdk.Duration.minutes(1), cdk.Duration.minutes(5)


class Dashboard(Concern):
    """``Dashboard`` (:attr:`dashboard`), two graphs a row; :meth:`add_row` adds one more."""

    def __init__(
        self, scope: Construct, construct_id: str, *, storage: Storage, functions: Functions, http: HttpApi
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

    def add_row(self, *widgets: cloudwatch.IWidget) -> None:
        """One row of widgets (each graph 12 wide: two a row)."""
        self.dashboard.add_widgets(*widgets)
