"""Settings of the Lambda functions, read from the environment once per cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from aws_lambda_powertools.utilities import parameters
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stratasync.auth import AccessControl, Hooks, TokenVerifier
from stratasync.core.limits import Limits
from stratasync.core.sealing import DEFAULT_SEGMENT_BYTES, DEFAULT_SEGMENT_EVENTS
from stratasync.core.service import DEFAULT_PULL_RESPONSE_BYTES
from stratasync.protocol.ws import MAX_WS_EVENT_BYTES
from stratasync.storage.tiered import DEFAULT_CACHE_BYTES


class Settings(BaseModel):
    """Environment variables ``STRATASYNC_*`` (see the README's configuration table)."""

    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=3, max_length=255)
    dynamodb_endpoint: str | None = None
    storage_time_budget_seconds: float = Field(default=5.0, gt=0, le=25)
    pull_response_bytes: int = Field(default=DEFAULT_PULL_RESPONSE_BYTES, ge=1_000_000, le=5_500_000)

    # Authentication: required unless switched off; an HS256 secret and/or a JWKS URL.
    auth_required: bool = True
    auth_hs256_secret: str | None = None
    auth_secret_arn: str | None = None
    auth_secret_ssm_parameter: str | None = None
    auth_jwks_url: str | None = None
    auth_audience: str | None = None
    auth_issuer: str | None = None
    #: A module with ``authorize`` / ``on_push`` / ``on_pull`` functions (see stratasync.auth).
    hooks_module: str | None = None

    # Limits (each at most the protocol's own; defaults and bounds are Limits').
    max_events_per_push: int = Limits.max_events_per_push
    max_request_bytes: int = Limits.max_request_bytes
    max_event_bytes: int = Limits.max_event_bytes
    max_store_id_length: int = Limits.max_store_id_length
    max_event_name_length: int = Limits.max_event_name_length

    # The eventlog archive (off unless a bucket is named).
    archive_bucket: str | None = None
    s3_endpoint: str | None = None
    segment_events: int = Field(default=DEFAULT_SEGMENT_EVENTS, ge=1, le=1_000_000)
    segment_bytes: int = Field(default=DEFAULT_SEGMENT_BYTES, ge=1, le=100_000_000)
    #: Decoded segments a warm Lambda keeps (LRU), in bytes of event JSON.
    segment_cache_bytes: int = Field(default=DEFAULT_CACHE_BYTES, ge=0, le=2_000_000_000)
    presign_expiry_seconds: int = Field(default=300, ge=1, le=3600)
    #: The archiver function the push path invokes asynchronously (name or ARN); none: no trigger.
    archive_function: str | None = None
    #: Another Lambda API endpoint for that invoke (the dev server serves one).
    lambda_endpoint: str | None = None

    # Live sync over WebSocket (docs/websocket.md). On every function of a deployment that serves
    # WebSocket clients: a push (HTTP or WS) then refuses an event too large for one WS message.
    ws_enabled: bool = False
    #: The connections table (``pk``/``sk``, TTL ``expiresAt``): the ws and fanout functions.
    connections_table: str | None = Field(default=None, min_length=3, max_length=255)
    #: The ``@connections`` endpoint, ``https://{api}.execute-api.{region}.amazonaws.com/{stage}``.
    ws_endpoint: str | None = None
    #: A push fans its batch out to the live pulls itself, the stream's fan-out being the safety
    #: net (on the sync and ws functions, given the connections table and the endpoint).
    push_fan_out: bool = True
    #: Live subscriptions a fan-out sends to at once (each one's messages stay in order); 1: one
    #: after another, the pusher's own echo last (the in-process dev server's choice).
    send_concurrency: int = Field(default=8, ge=1, le=64)

    @property
    def publishes_pushes(self) -> bool:
        """A push of this function fans out itself (live sync is configured and not switched off)."""
        return bool(self.ws_enabled and self.connections_table and self.ws_endpoint and self.push_fan_out)

    @field_validator("ws_endpoint")
    @classmethod
    def _check_ws_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(
                "must be the @connections endpoint of the WebSocket API's stage, "
                "https://{api}.execute-api.{region}.amazonaws.com/{stage} (no query)"
            )
        return value.rstrip("/")

    def limits(self) -> Limits:
        """The request limits these settings name."""
        return Limits(
            max_events_per_push=self.max_events_per_push,
            max_request_bytes=self.max_request_bytes,
            max_event_bytes=self.max_event_bytes,
            max_store_id_length=self.max_store_id_length,
            max_event_name_length=self.max_event_name_length,
            ws_max_event_bytes=MAX_WS_EVENT_BYTES if self.ws_enabled else None,
        )

    def access_control(self) -> AccessControl:
        """Token verification and hooks; the shared secret is read from Secrets Manager or SSM once."""
        hooks = Hooks.from_module(self.hooks_module) if self.hooks_module else Hooks()
        if not self.auth_required:
            return AccessControl(None, hooks)
        secret = self.auth_hs256_secret
        if secret is None and self.auth_secret_arn:
            secret = parameters.get_secret(self.auth_secret_arn, max_age=3600)
        if secret is None and self.auth_secret_ssm_parameter:
            secret = parameters.get_parameter(self.auth_secret_ssm_parameter, decrypt=True, max_age=3600)
        if not secret and not self.auth_jwks_url:
            raise RuntimeError(
                "stratasync is misconfigured: authentication is required but neither a shared secret"
                " (STRATASYNC_AUTH_SECRET_ARN, STRATASYNC_AUTH_SECRET_SSM_PARAMETER,"
                " STRATASYNC_AUTH_HS256_SECRET) nor STRATASYNC_AUTH_JWKS_URL is set"
                " (or set STRATASYNC_AUTH_REQUIRED=false)"
            )
        verifier = TokenVerifier(
            hs256_secret=secret or None,
            jwks_url=self.auth_jwks_url,
            audience=self.auth_audience,
            issuer=self.auth_issuer,
        )
        return AccessControl(verifier, hooks)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``STRATASYNC_<FIELD>`` variables; a readable error names what is missing or wrong."""
        environ = os.environ if environ is None else environ
        values = {
            name: environ[f"STRATASYNC_{name.upper()}"]
            for name in cls.model_fields
            if environ.get(f"STRATASYNC_{name.upper()}")
        }
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            problems = "; ".join(
                f"STRATASYNC_{'.'.join(map(str, item['loc'])).upper()}: {item['msg']}"
                for item in error.errors()
            )
            raise RuntimeError(f"stratasync is misconfigured: {problems}") from None
