"""Events as the local eventlog holds them (:class:`LoggedEvent`), in their wire encoding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LoggedEvent:
    """An event of the local eventlog (global sequence numbers).

    ``args`` are the wire encoding (camelCase keys, JSON values) exactly as committed or received;
    ``pending`` is True for an event committed here that the backend has not confirmed yet;
    ``created_at`` is the backend's timestamp (None while pending, and for old backends).
    """

    seq_num: int
    parent_seq_num: int
    name: str
    args: Any
    client_id: str
    session_id: str
    pending: bool
    created_at: str | None = None

    def encoded(self) -> dict[str, Any]:
        """The event as encoded on the wire."""
        return {
            "name": self.name,
            "args": self.args,
            "seqNum": self.seq_num,
            "parentSeqNum": self.parent_seq_num,
            "clientId": self.client_id,
            "sessionId": self.session_id,
        }

    def same_event_as(self, wire: dict[str, Any]) -> bool:
        """True if ``wire`` (from the backend) is this very event."""
        return (
            wire.get("seqNum") == self.seq_num
            and wire.get("name") == self.name
            and wire.get("clientId") == self.client_id
            and wire.get("sessionId") == self.session_id
            and wire.get("args") == self.args
        )

    def renumbered(self, seq_num: int) -> LoggedEvent:
        """This event, still pending, moved to ``seq_num`` (parent ``seq_num - 1``): a rebase."""
        return LoggedEvent(
            seq_num=seq_num,
            parent_seq_num=seq_num - 1,
            name=self.name,
            args=self.args,
            client_id=self.client_id,
            session_id=self.session_id,
            pending=True,
        )

    @classmethod
    def from_wire(cls, event: dict[str, Any], *, pending: bool = False) -> LoggedEvent:
        """An encoded event (as pulled) as a :class:`LoggedEvent`; missing fields get placeholders."""
        return cls(
            seq_num=event.get("seqNum", 0),
            parent_seq_num=event.get("parentSeqNum", 0),
            name=event.get("name", "?"),
            args=event.get("args"),
            client_id=event.get("clientId", "?"),
            session_id=event.get("sessionId", "?"),
            pending=pending,
        )


__all__ = ["LoggedEvent"]
