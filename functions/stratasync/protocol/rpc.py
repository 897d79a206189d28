"""The Effect-RPC JSON envelope that carries the three sync RPCs over HTTP.

A request body is ONE ``{"_tag": "Request", "id", "tag", "payload", "headers"}`` object; a
response is a JSON array of ``Chunk`` and ``Exit`` messages for that request id. Envelopes so
broken that no request id can be read are answered with an Effect-RPC ``Defect`` message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from stratasync.protocol import jsontext
from stratasync.protocol.errors import InvalidRequestError, ProtocolError
from stratasync.protocol.messages import PingPayload, PullPayload, PushPayload

_dumps = jsontext.dumps
#: An Effect-RPC request id: ASCII decimal digits (``str.isdigit`` also admits "²" and the like).
_REQUEST_ID = re.compile(r"[0-9]{1,20}")


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
        decoded = validate_payload(self.tag, self.payload, _PAYLOAD_MODELS[self.rpc])
        assert isinstance(decoded, PingPayload | PushPayload | PullPayload)
        return decoded


M = TypeVar("M", bound=BaseModel)


def validate_payload(tag: str, payload: Any, model: type[M]) -> M:
    """``payload`` validated against ``model``; :class:`InvalidRequestError` naming what is wrong."""
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise InvalidRequestError(
            f"invalid {tag} payload: {describe_validation_error(error)}",
            details=[
                {"loc": ".".join(str(part) for part in item["loc"]), "msg": item["msg"]}
                for item in error.errors(include_url=False, include_input=False)[:20]
            ],
        ) from None


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
        message = jsontext.loads(body)
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
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        raise EnvelopeError("an Effect-RPC Request needs an 'id' of 1 to 20 decimal digits as a string")
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


@dataclass(frozen=True)
class PullPage:
    """One page of a pull: encoded ``PullResponse.batch`` items, and how many events follow it in
    the log (0 on the last page: ``NoMore``; otherwise ``MoreKnown`` with that count)."""

    items: Sequence[str]
    remaining: int


def page_info(remaining: int) -> str:
    """The ``pageInfo`` of a page that ``remaining`` events follow."""
    return '{"_tag":"NoMore"}' if remaining <= 0 else f'{{"_tag":"MoreKnown","remaining":{remaining}}}'


def encode_pull_chunk(request_id: str, backend_id: str, page: PullPage) -> str:
    """One streamed ``Chunk`` message carrying one ``PullResponse``."""
    pull_response = (
        '{"batch":['
        + ",".join(page.items)
        + '],"pageInfo":'
        + page_info(page.remaining)
        + ',"backendId":'
        + _dumps(backend_id)
        + "}"
    )
    return '{"_tag":"Chunk","requestId":' + _dumps(request_id) + ',"values":[' + pull_response + "]}"


def encode_stream_exit(request_id: str) -> str:
    """The ``Exit`` message that ends a streamed RPC's response successfully."""
    return _dumps(_exit(request_id, {"_tag": "Success", "value": None}))


def encode_pull_stream(request_id: str, backend_id: str, pages: Iterable[PullPage]) -> str:
    """A whole streamed pull response: one ``Chunk`` per page, then the ``Exit``.

    No pages still answers one empty ``NoMore`` page, as the reference server does.
    """
    messages = [encode_pull_chunk(request_id, backend_id, page) for page in pages]
    if not messages:
        messages.append(encode_pull_chunk(request_id, backend_id, PullPage((), 0)))
    messages.append(encode_stream_exit(request_id))
    return "[" + ",".join(messages) + "]"
