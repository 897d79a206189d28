"""stratasync's one error hierarchy, and the protocol's error values, which know their wire form.

Everything stratasync raises on purpose derives from :class:`StratasyncError`::

    StratasyncError
    ├── ProtocolError            an error value of the sync protocol (the backend's answer)
    │   ├── ServerAheadError, BackendIdMismatchError
    │   └── UnknownError         (wire kind in cause.name:) InvalidRequestError, UnauthorizedError,
    │                            ForbiddenError, BackendUnavailableError
    ├── StorageError             the backend's storage layer (stratasync.storage), with the AWS
    │                            request id: HeadMismatchError, StorageUnavailableError, ...
    ├── TransportError           the client could not reach the backend (stratasync.client)
    └── SyncError                the client stopped syncing for a reason retrying cannot fix

The LiveStore client decodes a push failure as one of ``ServerAheadError``,
``BackendIdMismatchError`` or ``UnknownError`` and a pull failure as one of the last two, so
every refusal the backend makes travels as one of these tagged objects.
"""

from __future__ import annotations

from typing import Any


class StratasyncError(Exception):
    """The root of every error stratasync raises on purpose (catch this to catch them all)."""


class ProtocolError(StratasyncError):
    """An error the backend reports to the client inside an RPC ``Exit`` failure."""

    tag: str = "UnknownError"

    def to_wire(self) -> dict[str, Any]:
        """The tagged JSON object the client decodes."""
        raise NotImplementedError


class ServerAheadError(ProtocolError):
    """The push's parent is not the backend's head: pull, rebase and push again."""

    tag = "ServerAheadError"

    def __init__(self, minimum_expected_num: int, provided_num: int) -> None:
        super().__init__(
            f"the backend's head is {minimum_expected_num}, the push's parent is {provided_num}: "
            "pull, rebase and push again"
        )
        self.minimum_expected_num = minimum_expected_num
        self.provided_num = provided_num

    def to_wire(self) -> dict[str, Any]:
        return {
            "_tag": self.tag,
            "minimumExpectedNum": self.minimum_expected_num,
            "providedNum": self.provided_num,
        }


class BackendIdMismatchError(ProtocolError):
    """The client's cursor or push names another backend incarnation: the client must reset."""

    tag = "BackendIdMismatchError"

    def __init__(self, expected: str, received: str) -> None:
        super().__init__(f"backend id is {expected!r}, the request carries {received!r}")
        self.expected = expected
        self.received = received

    def to_wire(self) -> dict[str, Any]:
        return {"_tag": self.tag, "expected": self.expected, "received": self.received}


class UnknownError(ProtocolError):
    """Any other failure. ``kind`` names it for people and programs (``cause.name`` on the wire)."""

    tag = "UnknownError"
    kind = "UnknownError"

    def __init__(self, message: str, *, note: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.note = note
        self.details = details

    def to_wire(self) -> dict[str, Any]:
        cause: dict[str, Any] = {"name": self.kind, "message": self.message}
        if self.details is not None:
            cause["details"] = self.details
        wire: dict[str, Any] = {"_tag": self.tag, "cause": cause}
        if self.note is not None:
            wire["note"] = self.note
        return wire


class InvalidRequestError(UnknownError):
    """The request is malformed or breaks a limit; nothing was written."""

    kind = "InvalidRequestError"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message, note="stratasync refused the request; nothing was written", details=details)


class UnauthorizedError(UnknownError):
    """The request carries no valid token; nothing was read or written."""

    kind = "UnauthorizedError"

    def __init__(self, message: str) -> None:
        super().__init__(message, note="authentication failed; nothing was read or written")


class ForbiddenError(UnknownError):
    """The token is valid but does not grant this action on this store (or an app hook refused)."""

    kind = "ForbiddenError"

    def __init__(self, message: str) -> None:
        super().__init__(message, note="not allowed; nothing was read or written")


class BackendUnavailableError(UnknownError):
    """The backend's storage kept failing (throttling, transient errors) past the request's time
    budget; retry later. (Wire kind ``StorageUnavailableError``.)"""

    kind = "StorageUnavailableError"

    def __init__(self, message: str) -> None:
        super().__init__(message, note="transient storage failure; retry later")


def error_from_wire(wire: Any) -> ProtocolError:
    """The exception for a tagged error object received from a backend."""
    if not isinstance(wire, dict):
        return UnknownError(f"malformed error from backend: {wire!r}")
    tag = wire.get("_tag")
    if tag == ServerAheadError.tag:
        return ServerAheadError(int(wire["minimumExpectedNum"]), int(wire["providedNum"]))
    if tag == BackendIdMismatchError.tag:
        return BackendIdMismatchError(str(wire["expected"]), str(wire["received"]))
    cause = wire.get("cause")
    message = str((cause.get("message") if isinstance(cause, dict) else None) or cause or wire)
    kind = cause.get("name") if isinstance(cause, dict) else None
    known: dict[str, type[UnknownError]] = {
        cls.kind: cls
        for cls in (InvalidRequestError, UnauthorizedError, ForbiddenError, BackendUnavailableError)
    }
    error = known[kind](message) if isinstance(kind, str) and kind in known else UnknownError(message)
    error.note = wire.get("note")
    error.details = cause
    if isinstance(kind, str):
        error.kind = kind
    return error
