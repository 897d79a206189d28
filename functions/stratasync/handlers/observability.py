"""Powertools' Logger, Metrics and Tracer for the functions, with X-Ray imported only when tracing
is on.

Powertools' ``Tracer`` imports the X-Ray SDK even when tracing is disabled (it turns the SDK off
through the SDK). Outside Lambda, or with ``POWERTOOLS_TRACE_DISABLED`` set (the dev server, the
tests), :func:`make_tracer` returns :class:`NoTracer`, whose decorators do nothing, and the SDK
is never imported: a cold start that does not trace does not pay for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from stratasync.core.live_fanout import FanOutReport

F = TypeVar("F", bound=Callable[..., Any])

#: Events in a store's hot tier past the segment threshold (:func:`stratasync.core.sealing.archive_lag`):
#: sealable events the archiver has not sealed yet. The sync function emits it each time a push
#: completes a segment (so it keeps growing when the archiver fails), the archiver after each run.
ARCHIVE_LAG_METRIC = "ArchiveLag"
#: Milliseconds from a commit record's stream time (``ApproximateCreationDateTime``, whole seconds)
#: to the end of its delivery to live subscribers: the fan-out function emits one data point per
#: store and batch, in the ``stratasync`` namespace with its ``service`` dimension
#: (``stratasync-fanout``); the dashboard's lag row shows it next to ArchiveLag.
COMMIT_FANOUT_LAG_METRIC = "CommitToFanOutLag"
#: Live subscriptions a push brought to its batch itself (the sync and ws functions; the fan-out
#: function emits the same name for what the stream delivered), and the messages that took.
LIVE_DELIVERIES_METRIC = "LiveDeliveries"
LIVE_MESSAGES_METRIC = "LiveMessages"
#: Pushes that left their batch to the stream's fan-out (a large room, a contended claim that
#: did not clear, a storage error): the stream then adds up to a few hundred ms on AWS.
PUSH_FANOUT_SKIPPED_METRIC = "PushFanOutSkipped"


def observe_push_fan_out(metrics: MetricsLike, report: FanOutReport | None) -> None:
    """The metrics of a push's own fan-out (nothing when it did not run)."""
    if report is None:
        return
    from aws_lambda_powertools.metrics import MetricUnit

    metrics.add_metric(name=LIVE_DELIVERIES_METRIC, unit=MetricUnit.Count, value=report.delivered)
    metrics.add_metric(name=LIVE_MESSAGES_METRIC, unit=MetricUnit.Count, value=report.messages_sent)
    if report.skipped:
        metrics.add_metric(name=PUSH_FANOUT_SKIPPED_METRIC, unit=MetricUnit.Count, value=1)


class TracerLike(Protocol):
    """The part of Powertools' ``Tracer`` the handlers use (its decorator factories)."""

    def capture_lambda_handler(self, *, capture_response: bool | None = None) -> Callable[[F], F]: ...

    def capture_method(self, *, capture_response: bool | None = None) -> Callable[[F], F]: ...


class NoTracer:
    """``Tracer``'s decorator factories, doing nothing."""

    def capture_lambda_handler(self, *, capture_response: bool | None = None) -> Callable[[F], F]:
        return _unchanged

    def capture_method(self, *, capture_response: bool | None = None) -> Callable[[F], F]:
        return _unchanged


def _unchanged(function: F) -> F:
    return function


def tracing_enabled() -> bool:
    """Whether X-Ray tracing is on: in Lambda, unless ``POWERTOOLS_TRACE_DISABLED`` says otherwise."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in ("1", "true", "yes")
    return not disabled and "AWS_LAMBDA_FUNCTION_NAME" in os.environ


def make_tracer(service: str) -> TracerLike:
    """Powertools' ``Tracer`` when tracing is on, else :class:`NoTracer`."""
    if not tracing_enabled():
        return NoTracer()
    from aws_lambda_powertools import Tracer

    return cast(TracerLike, Tracer(service=service))


class MetricsLike(Protocol):
    """The part of Powertools' ``Metrics`` the handlers use."""

    def add_metric(self, name: str, unit: Any, value: float) -> None: ...

    def log_metrics(self, lambda_handler: F) -> F: ...


class NoMetrics:
    """``Metrics`` that records nothing."""

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        pass

    def log_metrics(self, lambda_handler: F) -> F:
        return lambda_handler


def make_metrics(namespace: str, service: str) -> MetricsLike:
    """Powertools' ``Metrics`` (CloudWatch EMF lines on stdout), or :class:`NoMetrics` when
    ``POWERTOOLS_METRICS_DISABLED`` (or ``POWERTOOLS_DEV``) turns metrics off.

    With metrics off, Powertools' own ``Metrics`` still collects every data point and prints them
    all once 100 have piled up; :class:`NoMetrics` collects nothing at all.
    """
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if is_metrics_disabled():
        return NoMetrics()
    return cast(MetricsLike, Metrics(namespace=namespace, service=service))
