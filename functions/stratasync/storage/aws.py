"""Calls to AWS services: the one place where driver errors become the storage layer's own.

Both adapters (DynamoDB and S3) send every call through :func:`call_within_budget`:

* throttling and transient faults are retried with full-jitter exponential backoff inside a time
  budget: botocore's own retryable set (its standard retry mode's throttling and transient error
  codes), any HTTP 5xx or 429, and connection errors and timeouts (``BotoCoreError``);
* an error the adapter handles itself (a failed condition, a missing object) is whatever its
  ``special`` function maps it to;
* everything else becomes :class:`StorageError`, and a budget that runs out
  :class:`StorageUnavailableError`, both carrying the AWS request id of the failed call.

botocore's own retries are off on the clients (:func:`client_config`), so the budget is the only
retry loop, and a whole request stays within the Lambda's time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker

from stratasync.storage.base import StorageError, StorageUnavailableError

T = TypeVar("T")

#: botocore's standard retry mode: its throttling and transient error codes.
RETRYABLE_ERROR_CODES = frozenset(
    [
        *getattr(ThrottledRetryableChecker, "_THROTTLED_ERROR_CODES", ()),
        *getattr(TransientRetryableChecker, "_TRANSIENT_ERROR_CODES", ()),
        # DynamoDB and S3 name some 5xx faults; their status is retried anyway, the codes say so too.
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
    ]
)


def client_config(**options: Any) -> Config:
    """A botocore config for the adapters: botocore's retries off (the budget retries), no client
    side parameter validation (the adapters build their requests; PynamoDB does the same)."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        parameter_validation=False,
        connect_timeout=3,
        read_timeout=10,
        tcp_keepalive=True,
        **options,
    )


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def request_id_of(error: BaseException | None) -> str | None:
    """The AWS request id of a failed call, when the service answered."""
    if not isinstance(error, ClientError):
        return None
    metadata = error.response.get("ResponseMetadata", {})
    request_id = metadata.get("RequestId") or metadata.get("HTTPHeaders", {}).get("x-amz-request-id")
    return str(request_id) if request_id else None


def is_retryable(error: ClientError) -> bool:
    """Throttling or a transient fault: botocore's retryable codes, any 5xx, or 429."""
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return error_code(error) in RETRYABLE_ERROR_CODES or status >= 500 or status == 429


def call_within_budget(
    call: Callable[[], T],
    *,
    what: str,
    budget_seconds: float,
    special: Callable[[ClientError], Exception | None] = lambda error: None,
) -> T:
    """``call()`` until it returns, retrying throttling and transient faults within the budget."""
    deadline = time.monotonic() + budget_seconds
    tries = 0
    while True:
        try:
            return call()
        except ClientError as error:
            mapped = special(error)
            if mapped is not None:
                raise mapped from error
            if not is_retryable(error):
                raise StorageError(
                    f"{what} failed: {error_code(error)}: {error}", request_id=request_id_of(error)
                ) from error
            last_error: BotoCoreError | ClientError = error
        except BotoCoreError as error:  # connection refused or reset, timeouts, broken streams
            last_error = error
        tries += 1
        delay = random.uniform(0, min(1.0, 0.025 * 2**tries))
        if time.monotonic() + delay >= deadline:
            raise StorageUnavailableError(
                f"{what} still failing after {tries} attempts ({budget_seconds:g} s budget): {last_error}",
                request_id=request_id_of(last_error),
            ) from last_error
        time.sleep(delay)
