"""The deployment's settings: :class:`StratasyncProps`."""

from __future__ import annotations

from dataclasses import dataclass

from stratasync_infra.parts import Number


@dataclass(frozen=True)
class StratasyncProps:
    """The deployment's settings; the SAM template's parameters are these (same defaults)."""

    #: ``"true"`` or ``"false"``: refuse requests without a valid JWT (STRATASYNC_AUTH_REQUIRED).
    auth_required: str = "true"
    #: ``""``: the construct creates a secret with a generated HS256 key; ``"none"``: no shared secret
    #: (JWKS only); else the ARN of an existing secret whose SecretString is the key.
    auth_secret_arn: str = ""
    auth_jwks_url: str = ""
    auth_audience: str = ""
    auth_issuer: str = ""
    max_events_per_push: Number = 100
    max_request_bytes: Number = 900_000
    max_event_bytes: Number = 900_000
    max_store_id_length: Number = 128
    max_event_name_length: Number = 128
    cors_allow_origin: str = "*"
    throttling_rate_limit: Number = 500
    throttling_burst_limit: Number = 1000
    segment_events: Number = 10_000
    segment_bytes: Number = 4_000_000
    presign_expiry_seconds: Number = 300
    archive_transition_days: Number = 30
    log_retention_days: Number = 30
    conflict_rate_threshold: Number = 0.5
    #: An address subscribed to the alarm topic (``""``: none).
    alarm_email: str = ""
