"""The Effect-RPC JSON envelope that carries the three sync RPCs over HTTP.

A request body is ONE ``{"_tag": "Request", "id", "tag", "payload", "headers"}`` object; a
response is a JSON array of ``Chunk`` and ``Exit`` messages for that request id. Envelopes so
broken that no request id can be read are answered with an Effect-RPC ``Defect`` message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from stratasync.protocol.errors import InvalidRequestError, ProtocolError
from stratasync.protocol.limits import MAX_PULL_CHUNK_BYTES, MAX_PULL_EVENTS_PER_CHUNK
from stratasync.protocol.messages import PingPayload, PullPayload, PushPayload

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class RpcTag(StrEnum):
    """The RPCs of LiveStore's ``SyncHttpRpc`` group."""

    PING = "SyncHttpRpc.Ping"
    PUSH = "SyncHttpRpc.Push"
    PULL = "SyncHttpRpc.Pull"


_PAYLOAD_MODELS: dict[RpcTag, type[BaseModel]] = {
    RpcTag.PING: PingPayload,
    RpcTag.PUSH: PushPayload,
    RpcTag.PULL: PullPayload,
}


class EnvelopeError(Exception):
    """The body is not an Effect-RPC request at all (no request id can be read)."""


@dataclass(frozen=True)
class RpcRequest:
    """One decoded RPC request: its id, which RPC, and its still-untyped payload."""

    id: str
    tag: str
    payload: Any

    @property
    def rpc(self) -> RpcTag:
        """The RPC this request calls; :class:`InvalidRequestError` for an unknown tag."""
        try:
            return RpcTag(self.tag)
        except ValueError:
            known = ", ".join(tag.value for tag in RpcTag)
            raise InvalidRequestError(f"unknown RPC tag {self.tag!r}; this endpoint serves {known}") from None

    def decode_payload(self) -> PingPayload | PushPayload | PullPayload:
        """The payload validated against its RPC's model."""
        model = _PAYLOAD_MODELS[self.rpc]
        try:
            decoded = model.model_validate(self.payload)
        except ValidationError as error:
            raise InvalidRequestError(
                f"invalid {self.tag} payload: {describe_validation_error(error)}",
                details=[
                    {"loc": ".".join(str(part) for part in item["loc"]), "msg": item["msg"]}
                    for item in error.errors(include_url=False, include_input=False)[:20]
                ],
            ) from None
        assert isinstance(decoded, PingPayload | PushPayload | PullPayload)
        return decoded


def describe_validation_error(error: ValidationError) -> str:
    """A one-line, readable summary of a pydantic validation error."""
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:5]:
        location = ".".join(str(part) for part in item["loc"])
        parts.append(f"{location}: {item['msg']}" if location else item["msg"])
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def parse_request(body: bytes | str) -> RpcRequest:
    """Decode one Effect-RPC request envelope; :class:`EnvelopeError` if it is not one."""
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise EnvelopeError(f"request body is not valid JSON: {error}") from None
    except RecursionError:
        raise EnvelopeError("request body is nested too deeply to be an RPC request") from None
    if not isinstance(message, dict):
        raise EnvelopeError("request body must be one JSON object (an Effect-RPC Request)")
    if message.get("_tag") != "Request":
        raise EnvelopeError(
            f"expected an Effect-RPC message with _tag 'Request', got {message.get('_tag')!r}"
        )
    request_id = message.get("id")
    if not isinstance(request_id, str) or not request_id.isdigit():
        raise EnvelopeError("an Effect-RPC Request needs an 'id' of decimal digits as a string")
    tag = message.get("tag")
    if not isinstance(tag, str):
        raise EnvelopeError("an Effect-RPC Request needs a string 'tag'")
    return RpcRequest(id=request_id, tag=tag, payload=message.get("payload"))


def _exit(request_id: str, exit_value: dict[str, Any]) -> dict[str, Any]:
    return {"_tag": "Exit", "requestId": request_id, "exit": exit_value}


def encode_success(request_id: str, value: Any) -> str:
    """The response of a non-streaming RPC that succeeded with ``value``."""
    return _dumps([_exit(request_id, {"_tag": "Success", "value": value})])


def encode_failure(request_id: str, error: ProtocolError) -> str:
    """The response of an RPC that failed with a protocol error."""
    cause = {"_tag": "Fail", "error": error.to_wire()}
    return _dumps([_exit(request_id, {"_tag": "Failure", "cause": cause})])


def encode_defect(message: str) -> str:
    """The response to a body that is not an RPC request at all."""
    return _dumps([{"_tag": "Defect", "defect": {"name": "InvalidRequestError", "message": message}}])


def encode_pull_item(event_json: str, created_at: str | None) -> str:
    """One ``PullResponse.batch`` item from an already-encoded event."""
    if created_at is None:
        metadata = '{"_tag":"None"}'
    else:
        metadata = (
            '{"_tag":"Some","value":{"_tag":"SyncMessage.SyncMetadata","createdAt":'
            + _dumps(created_at)
            + "}}"
        )
    return '{"eventEncoded":' + event_json + ',"metadata":' + metadata + "}"


def split_pull_items(
    items: Sequence[str],
    *,
    max_events: int = MAX_PULL_EVENTS_PER_CHUNK,
    max_bytes: int = MAX_PULL_CHUNK_BYTES,
) -> list[Sequence[str]]:
    """Split encoded pull items into chunks of at most ``max_events`` items and about ``max_bytes``.

    A chunk always holds at least one item, so one item larger than ``max_bytes`` travels alone.
    """
    chunks: list[Sequence[str]] = []
    start = 0
    size = 0
    for index, item in enumerate(items):
        item_size = len(item.encode()) + 1
        if index > start and (index - start >= max_events or size + item_size > max_bytes):
            chunks.append(items[start:index])
            start, size = index, 0
        size += item_size
    if start < len(items):
        chunks.append(items[start:])
    return chunks


def encode_pull_stream(request_id: str, backend_id: str, chunks: Iterable[Sequence[str]]) -> str:
    """The streamed pull response: one ``Chunk`` per page, ``MoreKnown`` until the last (``NoMore``).

    An empty ``chunks`` still answers one empty ``NoMore`` page, as the reference server does.
    """
    pages = list(chunks) or [[]]
    remaining = sum(len(page) for page in pages)
    backend_json = _dumps(backend_id)
    messages = []
    for page in pages:
        remaining -= len(page)
        page_info = (
            '{"_tag":"NoMore"}' if remaining == 0 else f'{{"_tag":"MoreKnown","remaining":{remaining}}}'
        )
        pull_response = (
            '{"batch":[' + ",".join(page) + '],"pageInfo":' + page_info + ',"backendId":' + backend_json + "}"
        )
        messages.append(
            '{"_tag":"Chunk","requestId":' + _dumps(request_id) + ',"values":[' + pull_response + "]}"
        )
    messages.append(_dumps(_exit(request_id, {"_tag": "Success", "value": None})))
    return "[" + ",".join(messages) + "]"
