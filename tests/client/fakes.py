"""An in-process transport to a real backend core (SyncService + handle_rpc), with fault injection."""

from __future__ import annotations

import json
from typing import Any

from stratasync.client.transport import RpcTransport, TransportError
from stratasync.core import SyncService, handle_rpc
from stratasync.protocol.rpc import RpcTag


class InProcessTransport(RpcTransport):
    """Talks the wire protocol (JSON envelopes) to a SyncService without HTTP.

    ``lose_next_response``: the backend handles the next request, then the response is lost.
    ``fail_next``: the next request never reaches the backend (a network error).
    """

    def __init__(self, service: SyncService, store_id: str) -> None:
        super().__init__(store_id)
        self.service = service
        self.lose_next_response = False
        self.fail_next = False
        self.requests = 0

    def _exchange(self, tag: RpcTag, body: dict[str, Any]) -> Any:
        self.requests += 1
        if self.fail_next:
            self.fail_next = False
            raise TransportError(f"{tag.value}: connection refused (injected)")
        response = handle_rpc(self.service, json.dumps(body).encode(), {"storeId": self.store_id})
        if self.lose_next_response:
            self.lose_next_response = False
            raise TransportError(f"{tag.value}: response lost (injected)")
        return json.loads(response.body)
