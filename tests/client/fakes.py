"""An in-process transport to a real backend core (SyncService + handle_rpc), with fault injection."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from stratasync.client.transport import (
    Cursor,
    PullPage,
    TransportError,
    check_response,
    pull_fields,
    pull_pages,
    push_fields,
    request_body,
)
from stratasync.core import SyncService, handle_rpc
from stratasync.protocol.rpc import RpcTag


class InProcessTransport:
    """Talks the wire protocol (JSON envelopes) to a SyncService without HTTP.

    ``lose_next_response``: the backend handles the next request, then the response is lost.
    ``fail_next``: the next request never reaches the backend (a network error).
    """

    def __init__(self, service: SyncService, store_id: str) -> None:
        self.service = service
        self.store_id = store_id
        self._ids = itertools.count()
        self.lose_next_response = False
        self.fail_next = False
        self.requests = 0

    def _call(self, tag: RpcTag, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.requests += 1
        if self.fail_next:
            self.fail_next = False
            raise TransportError(f"{tag.value}: connection refused (injected)")
        body = json.dumps(request_body(str(next(self._ids)), tag, self.store_id, None, fields)).encode()
        response = handle_rpc(self.service, body, {"storeId": self.store_id})
        if self.lose_next_response:
            self.lose_next_response = False
            raise TransportError(f"{tag.value}: response lost (injected)")
        return check_response(tag, json.loads(response.body))

    def ping(self) -> None:
        self._call(RpcTag.PING, {})

    def push(self, batch: Sequence[Mapping[str, Any]], backend_id: str | None) -> None:
        self._call(RpcTag.PUSH, push_fields(batch, backend_id))

    def pull(self, cursor: Cursor | None) -> list[PullPage]:
        return pull_pages(self._call(RpcTag.PULL, pull_fields(cursor)))

    def close(self) -> None:
        pass
