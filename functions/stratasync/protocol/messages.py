"""Wire models of the three RPC payloads and of events (``sync-message-types.ts`` upstream).

Models validate what arrives; responses are built as plain dicts/JSON fragments by
:mod:`stratasync.protocol.rpc`, because the hot path (pull) only re-emits stored events.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from stratasync.protocol.limits import MAX_PUSH_EVENTS, MAX_SEQ_NUM

T = TypeVar("T")

NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]
SeqNum = Annotated[StrictInt, Field(ge=0, le=MAX_SEQ_NUM)]


class _WireModel(BaseModel):
    # Unknown extra fields are ignored, as Effect Schema's Struct decoding does.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class NoneOption(_WireModel):
    """Effect's ``Option.none()`` in JSON: ``{"_tag": "None"}``."""

    tag: Literal["None"] = Field(alias="_tag")


class SomeOption(_WireModel, Generic[T]):
    """Effect's ``Option.some(value)`` in JSON: ``{"_tag": "Some", "value": ...}``."""

    tag: Literal["Some"] = Field(alias="_tag")
    value: T


def option_value(option: NoneOption | SomeOption[T]) -> T | None:
    """The value inside an Effect ``Option``, or ``None``."""
    return option.value if isinstance(option, SomeOption) else None


class WireEvent(_WireModel):
    """A global event as encoded on the wire (``LiveStoreEvent.Global.Encoded``)."""

    name: NonEmptyStr
    args: Any = None
    seqNum: SeqNum  # noqa: N815 - wire name
    parentSeqNum: SeqNum  # noqa: N815 - wire name
    clientId: NonEmptyStr  # noqa: N815 - wire name
    sessionId: NonEmptyStr  # noqa: N815 - wire name

    def to_json_dict(self) -> dict[str, Any]:
        """The event as the client sent it (an absent ``args`` stays absent)."""
        return self.model_dump(exclude_unset=True)


class Cursor(_WireModel):
    """A pull cursor: the last event the client has, and the backend it came from."""

    backendId: StrictStr  # noqa: N815 - wire name
    eventSequenceNumber: SeqNum  # noqa: N815 - wire name


class _StorePayload(_WireModel):
    storeId: NonEmptyStr  # noqa: N815 - wire name
    payload: Any = None


class PingPayload(_StorePayload):
    """``SyncHttpRpc.Ping`` payload."""


class PullPayload(_StorePayload):
    """``SyncHttpRpc.Pull`` payload: an optional cursor (no cursor: from the beginning)."""

    cursor: Annotated[NoneOption | SomeOption[Cursor], Field(discriminator="tag")]

    @property
    def cursor_value(self) -> Cursor | None:
        return option_value(self.cursor)


class PushPayload(_StorePayload):
    """``SyncHttpRpc.Push`` payload: a batch of 1 to 100 events forming one parent chain."""

    batch: Annotated[list[WireEvent], Field(min_length=1, max_length=MAX_PUSH_EVENTS)]
    backendId: Annotated[NoneOption | SomeOption[StrictStr], Field(discriminator="tag")]  # noqa: N815

    @property
    def backend_id_value(self) -> str | None:
        return option_value(self.backendId)

    @model_validator(mode="after")
    def _check_chain(self) -> PushPayload:
        previous: WireEvent | None = None
        for index, event in enumerate(self.batch):
            if event.seqNum <= event.parentSeqNum:
                raise ValueError(
                    f"batch[{index}]: seqNum {event.seqNum} must be greater than parentSeqNum "
                    f"{event.parentSeqNum}"
                )
            if previous is not None and event.parentSeqNum != previous.seqNum:
                raise ValueError(
                    f"batch[{index}]: parentSeqNum {event.parentSeqNum} must equal the previous "
                    f"event's seqNum {previous.seqNum}"
                )
            previous = event
        return self
