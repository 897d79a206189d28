"""A synchronous HTTP transport for the sync-cf protocol (Ping, Push, Pull), built on httpx."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from stratasync.protocol.errors import ProtocolError, error_from_wire
from stratasync.protocol.rpc import RpcTag


class TransportError(Exception):
    """The backend could not be reached or answered something that is not the protocol."""


@dataclass(frozen=True)
class PullPage:
    """One pull chunk: encoded events (with ``createdAt`` where known), its page info, backend id."""

    events: list[dict[str, Any]]
    created_at: list[str | None]
    page_info: dict[str, Any]
    backend_id: str

    @property
    def is_last(self) -> bool:
        return self.page_info.get("_tag") == "NoMore"


class SyncHttpTransport:
    """One store on one sync-cf backend, over HTTP (the request shape of LiveStore's ``makeHttpSync``)."""

    def __init__(
        self,
        url: str,
        store_id: str,
        *,
        payload: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 15.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.store_id = store_id
        self.payload = payload
        query = f"storeId={quote(store_id, safe='')}&transport=http"
        if payload is not None:
            query += "&payload=" + quote(json.dumps(payload, separators=(",", ":")), safe="")
        self._url = f"{url}?{query}"
        self._headers = {
            "content-type": "application/json",
            "x-livestore-store-id": store_id,
            **(headers or {}),
        }
        self._client = client if client is not None else httpx.Client(timeout=timeout)
        self._ids = itertools.count()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SyncHttpTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, tag: RpcTag, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
        request_id = str(next(self._ids))
        payload: dict[str, Any] = {"storeId": self.store_id, **fields}
        if self.payload is not None:
            payload["payload"] = self.payload
        body: dict[str, Any] = {
            "_tag": "Request",
            "id": request_id,
            "tag": tag.value,
            "payload": payload,
            "headers": [],
        }
        try:
            response = self._client.post(self._url, content=json.dumps(body), headers=self._headers)
            messages = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise TransportError(f"{tag.value}: {error}") from error
        if not isinstance(messages, list):
            raise TransportError(
                f"{tag.value}: HTTP {response.status_code}, not an RPC response: {messages!r}"
            )
        for message in messages:
            if message.get("_tag") == "Defect":
                raise TransportError(f"{tag.value}: backend reported a defect: {message.get('defect')!r}")
            if message.get("_tag") == "Exit" and message.get("exit", {}).get("_tag") == "Failure":
                cause = message["exit"].get("cause", {})
                if cause.get("_tag") == "Fail":
                    raise error_from_wire(cause.get("error"))
                raise TransportError(f"{tag.value}: backend failed: {cause!r}")
        return messages

    def ping(self) -> None:
        """Ask the backend for a ``Pong``."""
        self._call(RpcTag.PING, {})

    def push(self, batch: Sequence[Mapping[str, Any]], backend_id: str | None) -> None:
        """Push encoded events; raises :class:`~stratasync.protocol.ServerAheadError` and friends."""
        option = {"_tag": "Some", "value": backend_id} if backend_id is not None else {"_tag": "None"}
        self._call(RpcTag.PUSH, {"batch": list(batch), "backendId": option})

    def pull(self, cursor: tuple[str, int] | None) -> list[PullPage]:
        """Every page of one pull response after ``cursor`` (``(backendId, seqNum)``, None: from 0)."""
        if cursor is None:
            option: dict[str, Any] = {"_tag": "None"}
        else:
            option = {"_tag": "Some", "value": {"backendId": cursor[0], "eventSequenceNumber": cursor[1]}}
        pages = []
        for message in self._call(RpcTag.PULL, {"cursor": option}):
            if message.get("_tag") != "Chunk":
                continue
            for value in message["values"]:
                items = value["batch"]
                pages.append(
                    PullPage(
                        events=[item["eventEncoded"] for item in items],
                        created_at=[
                            item["metadata"]["value"]["createdAt"]
                            if item["metadata"]["_tag"] == "Some"
                            else None
                            for item in items
                        ],
                        page_info=value["pageInfo"],
                        backend_id=value["backendId"],
                    )
                )
        return pages


__all__ = ["ProtocolError", "PullPage", "SyncHttpTransport", "TransportError"]
