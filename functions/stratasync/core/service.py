"""Push and pull over an :class:`~stratasync.storage.EventLogStorage`, with the protocol's errors."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from stratasync.auth.access import AccessControl
from stratasync.core.limits import Limits
from stratasync.protocol import jsontext
from stratasync.protocol.errors import BackendIdMismatchError, InvalidRequestError, ServerAheadError
from stratasync.protocol.limits import MAX_PULL_CHUNK_BYTES, MAX_PULL_EVENTS_PER_CHUNK
from stratasync.protocol.messages import Cursor, PushPayload
from stratasync.protocol.rpc import PullPage, encode_pull_item
from stratasync.storage.base import (
    AppendOutcome,
    BackendChangedError,
    EventBatch,
    EventLogStorage,
    HeadMismatchError,
    LogHead,
)

#: Default cap on one HTTP pull response, in bytes on the wire (see :mod:`stratasync.core.endpoint`),
#: below Lambda's 6 MB response limit with room to spare.
DEFAULT_PULL_RESPONSE_BYTES = 4_500_000


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
    #: When the batch was committed (``createdAt`` of its events): where commit-to-fan-out lag is
    #: measured from (the live transports' metric).
    committed_at: str = ""
    #: The batch's events as committed: ``(seqNum, event JSON)``, in order (the push path's
    #: fan-out sends them without reading them back).
    batch: tuple[tuple[int, str], ...] = ()


@dataclass
class PullStream:
    """The pages of one pull, read lazily from storage as the transport sends them.

    A pull is a snapshot of the log up to the head read when it began: every page's ``remaining``
    counts the events after it up to that head, so the last page says ``NoMore`` exactly when
    the client has everything the backend had. A transport that stops early (a size cap) must
    :meth:`close` the stream; the last page it sent then says ``MoreKnown``.
    """

    backend_id: str
    head: LogHead
    pages: Iterator[PullPage]
    #: True when the cursor is at (or past) the head: there is nothing to send.
    empty: bool = False

    def close(self) -> None:
        """Stop reading from storage."""
        close = getattr(self.pages, "close", None)
        if close is not None:
            close()


class SyncService:
    """The backend's sync rules, independent of transport and of storage technology."""

    def __init__(
        self,
        store: EventLogStorage,
        *,
        pull_response_bytes: int = DEFAULT_PULL_RESPONSE_BYTES,
        limits: Limits | None = None,
        access: AccessControl | None = None,
        clock: Callable[[], str] = utc_now_iso,
    ) -> None:
        self.store = store
        #: The HTTP transport's cap on one pull response, in bytes on the wire.
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
        :class:`InvalidRequestError` for events that break a limit or are not JSON (NaN, Infinity):
        nothing is written then.

        The batch names the backend id it was checked against, so storage never commits it into
        another incarnation of the store (one that a reset started after the id was read).
        """
        encoded = [_encode_event(index, event.to_json_dict()) for index, event in enumerate(request.batch)]
        self.limits.check_push(request, encoded)
        claimed = request.backend_id_value
        backend_id = self.store.backend_id(store_id)
        for attempt in range(2):
            if claimed is not None and claimed != backend_id:
                raise BackendIdMismatchError(expected=backend_id, received=claimed)
            batch = EventBatch(
                parent_seq_num=request.batch[0].parentSeqNum,
                events=[(event.seqNum, text) for event, text in zip(request.batch, encoded, strict=True)],
                created_at=self._clock(),
                backend_id=backend_id,
            )
            try:
                outcome = self.store.append(store_id, batch)
                break
            except HeadMismatchError as error:
                raise ServerAheadError(minimum_expected_num=error.head, provided_num=error.parent) from None
            except BackendChangedError as error:
                # The store was reset since its backend id was read (a warm process's cache): check
                # the push against the new incarnation (a client that named the old one is refused).
                if attempt:
                    raise
                backend_id = error.backend_id
        return PushResult(
            events=len(batch.events),
            head=batch.last_seq_num,
            already_committed=outcome is AppendOutcome.ALREADY_COMMITTED,
            parent=batch.parent_seq_num,
            raw_bytes=sum(len(text.encode()) for text in encoded),
            committed_at=batch.created_at,
            batch=tuple(batch.events),
        )

    def pull(
        self, store_id: str, cursor: Cursor | None, *, page_bytes: int = MAX_PULL_CHUNK_BYTES
    ) -> PullStream:
        """The events after the cursor, in order, as pages of at most 100 events and about
        ``page_bytes`` bytes each, read lazily (see :class:`PullStream`).

        A cursor past the head names events this backend does not have (the head never moves
        back; only a restore that lost the events after its last archived segment makes that
        happen): the client's log and the backend's have parted, so it is told to start over,
        exactly as after a reset (:class:`BackendIdMismatchError`).
        """
        current = self.store.current(store_id)
        backend_id, head = current.backend_id, current.head
        if cursor is not None and cursor.backendId != backend_id:
            raise BackendIdMismatchError(expected=backend_id, received=cursor.backendId)
        after = cursor.eventSequenceNumber if cursor is not None else 0
        if cursor is not None and after > head.seq_num:
            raise BackendIdMismatchError(expected=backend_id, received=cursor.backendId)
        if head.seq_num <= after:
            return PullStream(backend_id, head, iter(()), empty=True)
        return PullStream(backend_id, head, self._pages(store_id, after, head, page_bytes))

    def _pages(self, store_id: str, after: int, head: LogHead, page_bytes: int) -> Generator[PullPage]:
        events = self.store.read(store_id, after)
        try:
            items: list[str] = []
            size = 0
            last_position = 0
            for event in events:
                if event.seq_num > head.seq_num:
                    break  # committed after this pull began: the next pull brings it
                item = encode_pull_item(event.event_json, event.created_at)
                item_size = len(item.encode()) + 1
                if items and (len(items) >= MAX_PULL_EVENTS_PER_CHUNK or size + item_size > page_bytes):
                    yield PullPage(items, head.events - last_position)
                    items, size = [], 0
                items.append(item)
                size += item_size
                last_position = event.position
            if items:
                yield PullPage(items, head.events - last_position)
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()


def _encode_event(index: int, event: dict[str, object]) -> str:
    try:
        return jsontext.dumps(event)
    except jsontext.NotJsonError as error:
        raise InvalidRequestError(f"batch[{index}]: {error}") from None
