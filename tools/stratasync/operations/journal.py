"""What an operation did and what it still has to do, said as it goes.

Every operation that changes a store is a fixed list of steps, each safe to crash after and each
done again (or skipped) by a re-run. The journal prints each step as it is done, so an operation
that stops (a crash, Ctrl-C, a refused call) has already said how far it got; :meth:`Journal.stopped`
says the rest: what remains, and that running the same command again finishes it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class Journal:
    """The steps of one operation on one store (``steps``: their names, in order)."""

    operation: str
    store_id: str
    steps: Sequence[str]
    #: Where progress lines go (None: nowhere; the CLI passes stderr).
    out: TextIO | None = None
    done: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Called after each step (tests inject crashes here): the step's name.
    checkpoint: Callable[[str], None] = field(default=lambda step: None)

    def did(self, step: str, text: str) -> None:
        """Step ``step`` is done: ``text`` says what it did."""
        if step not in self.steps:
            raise ValueError(f"unknown step {step!r}")
        self.done.append((step, text))
        self._say(f"  done: {text}")
        self.checkpoint(step)

    def note(self, text: str) -> None:
        self.notes.append(text)
        self._say(f"  note: {text}")

    def remaining(self) -> list[str]:
        finished = {step for step, _ in self.done}
        return [step for step in self.steps if step not in finished]

    def stopped(self, error: BaseException) -> str:
        """What to tell the operator when the operation stopped at ``error``."""
        done = "; ".join(text for _, text in self.done) or "nothing"
        remaining = ", ".join(self.remaining()) or "nothing"
        return (
            f"stratasync backend {self.operation}: stopped on store {self.store_id!r}: {error}\n"
            f"  done so far: {done}\n"
            f"  not done: {remaining}\n"
            f"  run the same command again to finish it"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "storeId": self.store_id,
            "done": [{"step": step, "what": text} for step, text in self.done],
            "remaining": self.remaining(),
            "notes": list(self.notes),
        }

    def _say(self, line: str) -> None:
        if self.out is not None:
            print(line, file=self.out, flush=True)


def stderr_journal(operation: str, store_id: str, steps: Sequence[str], *, quiet: bool = False) -> Journal:
    return Journal(operation, store_id, steps, out=None if quiet else sys.stderr)


def progress_bar(total: int | None, desc: str, unit: str = " events") -> Any:
    """A tqdm bar on stderr, shown when stderr is a terminal (long work: exports, imports, erases)."""
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, disable=None, leave=False
    )
