"""API Gateway's ``@connections`` management API behind :class:`ConnectionGateway`.

``PostToConnection`` and ``DeleteConnection`` on ``https://{api}.execute-api.{region}.amazonaws.com
/{stage}`` (``STRATASYNC_WS_ENDPOINT``; the dev server serves the same API on its private port).
Driver errors become the port's own: ``GoneException`` (410) :class:`ConnectionGoneError`;
``LimitExceededException`` and throttling :class:`SendThrottledError` (nothing was sent, the
caller may retry); everything else, timeouts included (the message may have arrived),
:class:`SendFailedError`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from stratasync.storage.aws import error_code, request_id_of
from stratasync.storage.subscriptions import (
    ConnectionGateway,
    ConnectionGoneError,
    SendFailedError,
    SendThrottledError,
)

_THROTTLED = frozenset(["LimitExceededException", "ThrottlingException", "TooManyRequestsException"])


def make_management_client(endpoint_url: str) -> Any:
    """An ``apigatewaymanagementapi`` client for one API's stage (botocore's retries off: a retried
    post that had arrived would arrive twice)."""
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint_url,
        config=Config(
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=2,
            read_timeout=5,
            tcp_keepalive=True,
            max_pool_connections=20,
        ),
    )


class ApiGatewayConnections(ConnectionGateway):
    """Sends through one WebSocket API stage's ``@connections`` endpoint."""

    def __init__(self, endpoint_url: str, client_factory: Callable[[], Any] | None = None) -> None:
        self.endpoint_url = endpoint_url
        self._client_factory = client_factory or functools.partial(make_management_client, endpoint_url)

    @functools.cached_property
    def _client(self) -> Any:
        return self._client_factory()

    def post(self, connection_id: str, data: str) -> None:
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data.encode())
        except ClientError as error:
            raise _translate(error, "PostToConnection") from error
        except BotoCoreError as error:
            raise SendFailedError(f"PostToConnection failed: {error}") from error

    def close(self, connection_id: str) -> None:
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except ClientError as error:
            translated = _translate(error, "DeleteConnection")
            if isinstance(translated, ConnectionGoneError):
                return
            raise translated from error
        except BotoCoreError as error:
            raise SendFailedError(f"DeleteConnection failed: {error}") from error


def _translate(error: ClientError, what: str) -> Exception:
    code = error_code(error)
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    message = f"{what} failed: {code}: {error} (request id {request_id_of(error)})"
    if code == "GoneException" or status == 410:
        return ConnectionGoneError(message)
    if code in _THROTTLED or status == 429:
        return SendThrottledError(message)
    return SendFailedError(message)
