"""The CloudWatch metrics the alarms and the dashboard read."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch

from stratasync_infra.packaging import DeployedFunction

#: The namespace of the handlers' EMF metrics (Powertools Metrics); ``service`` is their dimension.
NAMESPACE = "stratasync"
#: The live functions' ``service`` dimensions (functions/stratasync/handlers/{ws,fanout}.py).
WS_SERVICE, FANOUT_SERVICE = "stratasync-ws", "stratasync-fanout"


def lambda_metric(
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


def api_metric(api_id: str, name: str, statistic: str, period: cdk.Duration) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/ApiGateway",
        metric_name=name,
        dimensions_map={"ApiId": api_id},
        statistic=statistic,
        period=period,
    )


def websocket_metric(
    api_id: str, stage: str, name: str, statistic: str, period: cdk.Duration
) -> cloudwatch.Metric:
    """A WebSocket API stage's metric (ConnectCount, MessageCount, ClientError, ExecutionError, ...)."""
    return cloudwatch.Metric(
        namespace="AWS/ApiGateway",
        metric_name=name,
        dimensions_map={"ApiId": api_id, "Stage": stage},
        statistic=statistic,
        period=period,
    )


def table_metric(table_name: str, name: str, period: cdk.Duration) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/DynamoDB",
        metric_name=name,
        dimensions_map={"TableName": table_name},
        statistic="Sum",
        period=period,
    )


def ours(
    name: str,
    period: cdk.Duration,
    service: str = "stratasync",
    statistic: str = "Sum",
    label: str | None = None,
) -> cloudwatch.Metric:
    """One of the handlers' EMF metrics."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic=statistic,
        period=period,
        label=label,
    )
