"""The ws function's log lines at INFO (the level both stacks deploy it with)."""

from __future__ import annotations

import logging

import pytest

from stratasync.core.ws_endpoint import MessageOutcome
from stratasync.handlers import ws
from stratasync.protocol.errors import ServerAheadError


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize(
    "outcome",
    [
        MessageOutcome("Ping"),
        MessageOutcome("Request", "SyncWsRpc.Pull", "s", live=True),
        MessageOutcome(
            "Request", "SyncWsRpc.Push", "s", error=ServerAheadError(minimum_expected_num=3, provided_num=1)
        ),
    ],
    ids=["ping", "pull", "refused-push"],
)
def test_every_outcome_logs_at_info(outcome: MessageOutcome) -> None:
    """Each message's log line is written. A field named like one of the log record's own
    ("message" was) made logging raise, and with it every invocation of the function at INFO."""
    records = Records()
    stdlib_logger = ws.logger._logger  # Powertools' Logger wraps a stdlib logger
    level = stdlib_logger.level
    stdlib_logger.addHandler(records)
    stdlib_logger.setLevel(logging.INFO)
    try:
        ws._observe(outcome)
    finally:
        stdlib_logger.removeHandler(records)
        stdlib_logger.setLevel(level)
    assert [getattr(record, "frame", None) for record in records.records] == [outcome.tag]
