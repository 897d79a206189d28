"""Every error a client user can meet, in one hierarchy (importable from ``stratasync.client``)::

    StratasyncError                  the root: catch it to catch them all
    ├── ProtocolError                the backend's answer to a request
    │   ├── ServerAheadError         someone pushed first (the sync loop handles it)
    │   ├── BackendIdMismatchError   the backend was reset (the sync loop handles it)
    │   └── UnknownError             anything else; retried
    │       ├── InvalidRequestError  the backend refused the request (a limit, a rule)
    │       ├── UnauthorizedError    no valid token
    │       ├── ForbiddenError       the token does not grant this
    │       └── BackendUnavailableError   the backend's storage kept failing; retried
    ├── TransportError               the backend could not be reached; retried
    │   └── SegmentChecksumError     a bootstrap download does not match its manifest
    └── SyncError                    syncing stopped for a reason that retrying cannot fix
        ├── MaterializerError        a materializer failed while pulling, rebasing or resetting
        ├── PushRefusedError         the backend refused a pending event
        ├── BackendResetError        the backend was reset and the policy is "fail"
        └── UnknownEventError        an upstream event is not in the schema, policy "fail"

:meth:`Store.commit` raises ``ValueError`` for events it refuses (not in the schema, args that JSON
cannot carry) and whatever a failing materializer raised (e.g. ``sqlite3.IntegrityError``);
nothing is written then.
"""

from __future__ import annotations

from collections.abc import Sequence

from stratasync.client.events import LoggedEvent
from stratasync.protocol.errors import (
    BackendIdMismatchError,
    BackendUnavailableError,
    ForbiddenError,
    InvalidRequestError,
    ProtocolError,
    ServerAheadError,
    StratasyncError,
    UnauthorizedError,
    UnknownError,
)


class TransportError(StratasyncError):
    """The backend could not be reached or answered something that is not the protocol."""


class SegmentChecksumError(TransportError):
    """A downloaded segment does not match the manifest's size or SHA-256."""


class SyncError(StratasyncError):
    """Syncing stopped for a reason that retrying cannot fix."""


class UnknownEventError(SyncError):
    """An upstream event's name is not in this app's schema (policy ``"fail"``)."""


class BackendResetError(SyncError):
    """The backend was reset (its id changed) and the policy is ``"fail"``: nothing was changed locally.

    :attr:`pending` holds the events committed here that the old backend never confirmed. To go
    on, set ``store.on_backend_reset = "reset"`` and sync (they are kept and pushed to the new
    backend), or read them from here and start another store.
    """

    def __init__(
        self, message: str, *, pending: Sequence[LoggedEvent], backend_id: str | None, new_backend_id: str
    ) -> None:
        super().__init__(message)
        self.pending: list[LoggedEvent] = list(pending)
        self.backend_id = backend_id
        self.new_backend_id = new_backend_id


class MaterializerError(SyncError):
    """A materializer (or the validation of an event's args) failed while syncing.

    The transaction it happened in was rolled back: the eventlog and the tables are as they were
    before that pull, reset or discard. :attr:`event` is the event as the local eventlog holds it
    (for a pending event: its current seqNum, which :meth:`Store.discard_pending` takes), or as it
    came from upstream. :attr:`pending` tells which; :attr:`cause` is the original exception.
    """

    def __init__(self, event: LoggedEvent, cause: BaseException, context: str) -> None:
        kind = "pending event" if event.pending else "upstream event"
        super().__init__(
            f"materializer of {event.name!r} failed for {kind} #{event.seq_num} of client "
            f"{event.client_id!r} ({context}): {type(cause).__name__}: {cause}"
        )
        self.event = event
        self.cause = cause
        self.context = context

    @property
    def name(self) -> str:
        """The event's name."""
        return self.event.name

    @property
    def seq_num(self) -> int:
        """The event's seqNum (for a pending event: in the local eventlog now)."""
        return self.event.seq_num

    @property
    def client_id(self) -> str:
        """The clientId of the client that committed the event."""
        return self.event.client_id

    @property
    def pending(self) -> bool:
        """True for an event committed here and not confirmed yet (it can be discarded)."""
        return self.event.pending


class PushRefusedError(SyncError):
    """The backend refused to take a pending event (``InvalidRequestError``): retrying cannot help.

    :attr:`event` is the refused event (the backend answered the same to that event pushed
    alone), :attr:`cause` the backend's error. Every later pending event waits behind it:
    discard it with :meth:`Store.discard_pending` (or ship an app version that fixes it).
    """

    def __init__(self, event: LoggedEvent, cause: InvalidRequestError) -> None:
        super().__init__(
            f"the backend refused pending event #{event.seq_num} {event.name!r} of client "
            f"{event.client_id!r}: {cause}"
        )
        self.event = event
        self.cause = cause


#: Refusals that retrying cannot change (the app must fix its token or its events).
REFUSALS = (UnauthorizedError, ForbiddenError, InvalidRequestError)

__all__ = [
    "BackendIdMismatchError",
    "BackendResetError",
    "BackendUnavailableError",
    "ForbiddenError",
    "InvalidRequestError",
    "MaterializerError",
    "ProtocolError",
    "PushRefusedError",
    "SegmentChecksumError",
    "ServerAheadError",
    "StratasyncError",
    "SyncError",
    "TransportError",
    "UnauthorizedError",
    "UnknownError",
    "UnknownEventError",
]
