"""The sync loop's backoff: exponential with full jitter, and the contention backoff."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for network errors, timeouts and ``UnknownError``.

    A round refused with ``ServerAheadError`` (others pushed first) is retried at once while the
    rounds bring new upstream events (real contention: the next push may win). When the backend
    keeps refusing and nothing new arrives, the rounds back off with the same full jitter,
    capped at :attr:`contention_max_seconds`.
    """

    initial_seconds: float = 0.1
    max_seconds: float = 10.0
    contention_max_seconds: float = 1.0

    def delay(self, attempt: int) -> float:
        """The wait before retry number ``attempt + 1`` after a failure."""
        return random.uniform(0, min(self.max_seconds, self.initial_seconds * 2**attempt))

    def contention_delay(self, refusals: int) -> float:
        """The wait after ``refusals`` refused rounds in a row that brought nothing new (0 for one)."""
        if refusals <= 1:
            return 0.0
        cap = min(self.max_seconds, self.contention_max_seconds, self.initial_seconds * 2 ** (refusals - 2))
        return random.uniform(0, cap)
