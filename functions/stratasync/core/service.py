"""Push and pull over an :class:`~stratasync.storage.EventStore`, with the protocol's errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from stratasync.auth.access import AccessControl
from stratasync.core.limits import Limits
from stratasync.protocol.errors import BackendIdMismatchError, ServerAheadError
from stratasync.protocol.messages import Cursor, PushPayload
from stratasync.protocol.rpc import encode_pull_item, split_pull_items
from stratasync.storage.base import AppendOutcome, EventBatch, EventStore, HeadMismatchError

#: Default cap on one pull response, below Lambda's 6 MB response limit with room to spare.
DEFAULT_PULL_RESPONSE_BYTES = 4_500_000

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def utc_now_iso() -> str:
    """The current time as JavaScript's ``Date.prototype.toISOString`` writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class PushResult:
    """A push that was accepted (``already_committed``: a retry of a batch committed before)."""

    events: int
    head: int
    already_committed: bool
    #: The batch's parent and the size of its events' JSON (the archive trigger looks at both).
    parent: int = 0
    raw_bytes: int = 0


@dataclass(frozen=True)
class PullResult:
    """The pages of one pull response: encoded batch items split into protocol chunks."""

    backend_id: str
    chunks: list[list[str]]
    events: int
    #: True if more events exist than fit in this response (the client pulls again from its new cursor).
    truncated: bool


class SyncService:
    """The backend's sync rules, independent of transport and of storage technology."""

    def __init__(
        self,
        store: EventStore,
        *,
        pull_response_bytes: int = DEFAULT_PULL_RESPONSE_BYTES,
        limits: Limits | None = None,
        access: AccessControl | None = None,
        clock: Callable[[], str] = utc_now_iso,
    ) -> None:
        self.store = store
        self.pull_response_bytes = pull_response_bytes
        #: What one request may carry (checked before storage is touched).
        self.limits = limits or Limits()
        #: Authentication and authorization (none: every request is allowed).
        self.access = access or AccessControl()
        self._clock = clock

    def push(self, store_id: str, request: PushPayload) -> PushResult:
        """Append the batch iff its parent is the store's head.

        Raises :class:`BackendIdMismatchError` or :class:`ServerAheadError` (with the newest
        head storage reported); a retry of an already committed batch is acknowledged again.
        """
        encoded = [_dumps(event.to_json_dict()) for event in request.batch]
        self.limits.check_push(request, encoded)
        backend_id = self.store.backend_id(store_id)
        claimed = request.backend_id_value
        if claimed is not None and claimed != backend_id:
            raise BackendIdMismatchError(expected=backend_id, received=claimed)
        batch = EventBatch(
            parent_seq_num=request.batch[0].parentSeqNum,
            events=[(event.seqNum, text) for event, text in zip(request.batch, encoded, strict=True)],
            created_at=self._clock(),
        )
        try:
            outcome = self.store.append(store_id, batch)
        except HeadMismatchError as error:
            raise ServerAheadError(minimum_expected_num=error.head, provided_num=error.parent) from None
        return PushResult(
            events=len(batch.events),
            head=batch.last_seq_num,
            already_committed=outcome is AppendOutcome.ALREADY_COMMITTED,
            parent=batch.parent_seq_num,
            raw_bytes=sum(len(text.encode()) for text in encoded),
        )

    def pull(self, store_id: str, cursor: Cursor | None) -> PullResult:
        """Events after the cursor, in order, in chunks, up to :attr:`pull_response_bytes`."""
        backend_id = self.store.backend_id(store_id)
        if cursor is not None and cursor.backendId != backend_id:
            raise BackendIdMismatchError(expected=backend_id, received=cursor.backendId)
        after = cursor.eventSequenceNumber if cursor is not None else 0
        items: list[str] = []
        size = 0
        truncated = False
        events = self.store.read(store_id, after)
        for event in events:
            if size >= self.pull_response_bytes:
                truncated = True
                break
            item = encode_pull_item(event.event_json, event.created_at)
            items.append(item)
            size += len(item.encode())
        if hasattr(events, "close"):
            events.close()
        return PullResult(
            backend_id=backend_id,
            chunks=[list(chunk) for chunk in split_pull_items(items)],
            events=len(items),
            truncated=truncated,
        )
