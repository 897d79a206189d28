"""Request limits, enforced before storage is touched (each configurable down from the protocol's)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from stratasync.protocol.errors import InvalidRequestError
from stratasync.protocol.limits import MAX_PUSH_EVENTS, MAX_REQUEST_BYTES, MAX_SEQ_NUM
from stratasync.protocol.messages import PushPayload

#: Store ids: letters, digits and ``_ - . : @ = +``, starting with a letter or digit.
STORE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@=+-]*")
#: How far one event's seqNum may jump past its parent. LiveStore numbers global events one by
#: one, so a bound this size never refuses a real client, and a store always keeps room for at
#: least MAX_SEQ_NUM / MAX_SEQ_NUM_STEP (about 9 billion) more events: no push can leave it full.
MAX_SEQ_NUM_STEP = 1_000_000


@dataclass(frozen=True)
class Limits:
    """What one request may carry."""

    max_events_per_push: int = MAX_PUSH_EVENTS
    max_request_bytes: int = MAX_REQUEST_BYTES
    max_event_bytes: int = MAX_REQUEST_BYTES
    max_store_id_length: int = 128
    max_event_name_length: int = 128
    #: With WebSocket live sync on: the largest event a WebSocket client can ever be sent
    #: (:data:`stratasync.protocol.ws.MAX_WS_EVENT_BYTES`), refused on every transport's push.
    ws_max_event_bytes: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.max_events_per_push <= MAX_PUSH_EVENTS:
            raise ValueError(f"max_events_per_push must be 1 to {MAX_PUSH_EVENTS}")
        if not 1_000 <= self.max_request_bytes <= MAX_REQUEST_BYTES:
            raise ValueError(f"max_request_bytes must be 1,000 to {MAX_REQUEST_BYTES}")
        if not 100 <= self.max_event_bytes <= self.max_request_bytes:
            raise ValueError("max_event_bytes must be 100 to max_request_bytes")
        if not 1 <= self.max_store_id_length <= 512 or not 1 <= self.max_event_name_length <= 1024:
            raise ValueError("store id and event name lengths must be positive and sensible")

    def check_body(self, size: int) -> None:
        if size > self.max_request_bytes:
            raise InvalidRequestError(f"request body is {size} bytes; the limit is {self.max_request_bytes}")

    def check_store_id(self, store_id: str) -> None:
        if len(store_id) > self.max_store_id_length:
            raise InvalidRequestError(
                f"storeId is {len(store_id)} characters; the limit is {self.max_store_id_length}"
            )
        if not STORE_ID_PATTERN.fullmatch(store_id):
            raise InvalidRequestError(
                "storeId may hold letters, digits and _ - . : @ = + and must start with a letter or digit"
            )

    def check_push(self, request: PushPayload, encoded_events: list[str]) -> None:
        if len(request.batch) > self.max_events_per_push:
            raise InvalidRequestError(
                f"batch has {len(request.batch)} events; the limit is {self.max_events_per_push}"
            )
        for index, (event, encoded) in enumerate(zip(request.batch, encoded_events, strict=True)):
            if event.seqNum - event.parentSeqNum > MAX_SEQ_NUM_STEP:
                step = event.seqNum - event.parentSeqNum
                raise InvalidRequestError(
                    f"batch[{index}]: seqNum {event.seqNum} jumps {step} past its parent "
                    f"{event.parentSeqNum}; at most {MAX_SEQ_NUM_STEP:,} is allowed, so that a store "
                    f"never runs out of seqNums (the largest is {MAX_SEQ_NUM:,})"
                )
            if len(event.name) > self.max_event_name_length:
                raise InvalidRequestError(
                    f"batch[{index}]: event name is {len(event.name)} characters; "
                    f"the limit is {self.max_event_name_length}"
                )
            size = len(encoded.encode())
            if size > self.max_event_bytes:
                raise InvalidRequestError(
                    f"batch[{index}]: event is {size} bytes encoded; the limit is {self.max_event_bytes}"
                )
            if self.ws_max_event_bytes is not None and size > self.ws_max_event_bytes:
                raise InvalidRequestError(
                    f"batch[{index}]: event is {size:,} bytes encoded; with WebSocket live sync on, the "
                    f"limit is {self.ws_max_event_bytes:,} (a WebSocket message of API Gateway, 128 KB, "
                    "must carry it to every live client)"
                )
