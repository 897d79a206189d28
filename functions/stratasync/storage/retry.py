"""Retrying transient storage faults with jittered exponential backoff inside a time budget.

Each adapter's one choke point wraps a single attempt: it raises :class:`TransientFault` for
throttling and connection errors (retried) and its own errors for everything else (not).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from stratasync.storage.base import StorageUnavailableError

T = TypeVar("T")


class TransientFault(Exception):  # noqa: N818 - a signal between attempt and loop, never seen outside
    """One attempt met a fault worth retrying (``cause``: the driver's exception)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def within_budget(attempt: Callable[[], T], *, budget_seconds: float, what: str) -> T:
    """``attempt()`` until it returns, retrying :class:`TransientFault` with full-jitter backoff;
    :class:`StorageUnavailableError` once the next wait would pass ``budget_seconds``."""
    deadline = time.monotonic() + budget_seconds
    tries = 0
    while True:
        try:
            return attempt()
        except TransientFault as fault:
            last_error = fault.cause
        tries += 1
        delay = random.uniform(0, min(1.0, 0.025 * 2**tries))
        if time.monotonic() + delay >= deadline:
            raise StorageUnavailableError(
                f"{what} still failing after {tries} attempts ({budget_seconds:g} s budget): {last_error}"
            ) from last_error
        time.sleep(delay)
