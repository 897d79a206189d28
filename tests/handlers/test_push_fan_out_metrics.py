"""The metrics of a push's own fan-out (the sync and ws functions emit them)."""

from __future__ import annotations

from typing import Any

from stratasync.core.live import FanOutReport
from stratasync.handlers.observability import observe_push_fan_out


class Recorder:
    def __init__(self) -> None:
        self.points: list[tuple[str, float]] = []

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.points.append((name, value))

    def log_metrics(self, lambda_handler: Any) -> Any:
        return lambda_handler


def test_a_push_that_delivered_and_one_left_to_the_stream() -> None:
    recorder = Recorder()
    observe_push_fan_out(recorder, FanOutReport("s", head=3, delivered=2, messages_sent=2))
    assert recorder.points == [("LiveDeliveries", 2), ("LiveMessages", 2)]
    recorder.points.clear()
    observe_push_fan_out(recorder, FanOutReport("s", skipped=True))
    assert recorder.points == [("LiveDeliveries", 0), ("LiveMessages", 0), ("PushFanOutSkipped", 1)]


def test_a_push_whose_fan_out_did_not_run_emits_nothing() -> None:
    recorder = Recorder()
    observe_push_fan_out(recorder, None)
    assert recorder.points == []
