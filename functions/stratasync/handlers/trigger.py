"""The push path's archive trigger: an asynchronous invoke of the archiver Lambda.

Only when a push probably completed a segment (:meth:`ArchivePolicy.worth_triggering`), so it
costs one ``Invoke`` per segment, not per push. It never fails a push: errors are logged, and
the next crossing triggers again.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from stratasync.core.sealing import ArchivePolicy
from stratasync.core.service import PushResult

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

logger = logging.getLogger(__name__)


class ArchiveTrigger:
    """Invokes ``function`` with ``{"storeId": ...}`` (InvocationType ``Event``)."""

    def __init__(
        self, function: str, policy: ArchivePolicy, client_factory: Callable[[], LambdaClient]
    ) -> None:
        self.function = function
        self.policy = policy
        self._client_factory = client_factory

    @functools.cached_property
    def _client(self) -> LambdaClient:
        """Made on first use: most pushes complete no segment, so a cold start need not pay for it."""
        return self._client_factory()

    @classmethod
    def create(cls, function: str, policy: ArchivePolicy, endpoint_url: str | None) -> ArchiveTrigger:
        config = Config(
            connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 2}
        )
        return cls(function, policy, lambda: boto3.client("lambda", endpoint_url=endpoint_url, config=config))

    def after_push(self, store_id: str, push: PushResult) -> bool:
        """Invoke the archiver if this push probably completed a segment; True if it did."""
        if push.already_committed or not self.policy.worth_triggering(
            push.parent, push.head, push.raw_bytes, push.events
        ):
            return False
        try:
            self._client.invoke(
                FunctionName=self.function,
                InvocationType="Event",
                Payload=json.dumps({"storeId": store_id}).encode(),
            )
        except (BotoCoreError, ClientError):
            logger.exception("could not trigger the archiver")
            return False
        return True
