"""How pulled upstream events meet local pending events (LiveStore's ``syncstate.ts`` merge).

Pure: no I/O, so the property tests can check it against a reference model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stratasync.client.events import LoggedEvent


@dataclass(frozen=True)
class MergePlan:
    """What to do with ``incoming`` upstream events given the ``pending`` local ones.

    The first :attr:`confirmed` pending events came back from upstream unchanged: they are
    confirmed. If :attr:`rebase`, the remaining pending events are rolled back, the upstream
    events from :attr:`confirmed` on are applied, and the pending ones re-applied on top with new
    sequence numbers. Otherwise the upstream events from :attr:`confirmed` on (if any) are applied
    and the remaining pending events stay pending as they are.
    """

    confirmed: int
    rebase: bool


def plan_merge(pending: Sequence[LoggedEvent], incoming: Sequence[dict[str, Any]]) -> MergePlan:
    """Compare upstream events with pending ones, both starting right after the upstream head."""
    matched = 0
    for local, remote in zip(pending, incoming, strict=False):
        if not local.same_event_as(remote):
            break
        matched += 1
    diverged = matched < len(pending) and matched < len(incoming)
    return MergePlan(confirmed=matched, rebase=diverged)
