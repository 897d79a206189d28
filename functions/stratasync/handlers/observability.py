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
from typing import Any, Protocol, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


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
