"""The stratasync stack: the :class:`~stratasync_infra.construct.Stratasync` construct with its settings
as CloudFormation parameters, and logical ids without CDK's path hashes (``EventTable``,
``SyncFunction``, ...).

This one class makes both deployable templates: the CDK app (``infra/app.py``, code as assets and a
dependency layer) and, with :class:`~stratasync_infra.construct.SamPackaging`, ``template.yaml``
(:mod:`stratasync_infra.sam`). Since both have the same logical ids and parameters, one can switch
tools without a data migration.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from stratasync_infra.construct import Packaging, Stratasync, StratasyncProps
from stratasync_infra.parts import Concern

LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192]
LOG_RETENTION_DAYS += [2557, 2922, 3288, 3653]
#: The construct's id inside the stack; it is left out of the logical ids.
CONSTRUCT_ID = "Stratasync"


@dataclass(frozen=True)
class Parameter:
    """A CloudFormation parameter for one field of :class:`StratasyncProps` (its default is the field's)."""

    name: str
    prop: str
    group: str
    description: str = ""
    min_value: float | None = None
    max_value: float | None = None
    allowed_values: tuple[str, ...] = ()
    allowed_pattern: str | None = None


PARAMETERS = (
    Parameter(
        "AuthRequired",
        "auth_required",
        "Authentication",
        "Refuse requests without a valid JWT (STRATASYNC_AUTH_REQUIRED).",
        allowed_values=("true", "false"),
    ),
    Parameter(
        "AuthSecretArn",
        "auth_secret_arn",
        "Authentication",
        "The HS256 shared secret: empty = the stack creates a Secrets Manager secret with a generated"
        ' value; "none" = no shared secret (JWKS only); else the ARN of an existing secret whose'
        " SecretString is the key.",
        allowed_pattern=r"^$|^none$|^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$",
    ),
    Parameter(
        "AuthJwksUrl",
        "auth_jwks_url",
        "Authentication",
        "JWKS URL for RS256/ES256 tokens (Cognito, Auth0, ...); empty = none.",
        allowed_pattern=r"^$|^https://.+$",
    ),
    Parameter(
        "AuthAudience", "auth_audience", "Authentication", "Required `aud` claim; empty = not checked."
    ),
    Parameter("AuthIssuer", "auth_issuer", "Authentication", "Required `iss` claim; empty = not checked."),
    Parameter("MaxEventsPerPush", "max_events_per_push", "Request limits", min_value=1, max_value=100),
    Parameter("MaxRequestBytes", "max_request_bytes", "Request limits", min_value=1000, max_value=900_000),
    Parameter(
        "MaxEventBytes",
        "max_event_bytes",
        "Request limits",
        "At most MaxRequestBytes.",
        min_value=100,
        max_value=900_000,
    ),
    Parameter("MaxStoreIdLength", "max_store_id_length", "Request limits", min_value=1, max_value=512),
    Parameter("MaxEventNameLength", "max_event_name_length", "Request limits", min_value=1, max_value=1024),
    Parameter(
        "CorsAllowOrigin",
        "cors_allow_origin",
        "HTTP API",
        'The origin browsers may call the API from, e.g. https://app.example.com ("*" = any).',
    ),
    Parameter(
        "ThrottlingRateLimit",
        "throttling_rate_limit",
        "HTTP API",
        "Steady-state requests per second for the whole API.",
        min_value=1,
    ),
    Parameter("ThrottlingBurstLimit", "throttling_burst_limit", "HTTP API", min_value=1),
    Parameter(
        "SegmentEvents",
        "segment_events",
        "Eventlog archive",
        "Seal an archive segment at this many events ...",
        min_value=1,
        max_value=1_000_000,
    ),
    Parameter(
        "SegmentBytes",
        "segment_bytes",
        "Eventlog archive",
        "... or at this many bytes of event JSON, whichever comes first.",
        min_value=1,
        max_value=100_000_000,
    ),
    Parameter(
        "PresignExpirySeconds",
        "presign_expiry_seconds",
        "Eventlog archive",
        "Lifetime of the presigned segment URLs that GET /archive hands out.",
        min_value=1,
        max_value=3600,
    ),
    Parameter(
        "ArchiveTransitionDays",
        "archive_transition_days",
        "Eventlog archive",
        "Segments move to S3 Intelligent-Tiering after this many days.",
        min_value=0,
    ),
    Parameter(
        "LogRetentionInDays",
        "log_retention_days",
        "Operations",
        allowed_values=tuple(str(days) for days in LOG_RETENTION_DAYS),
    ),
    Parameter(
        "ConflictRateThreshold",
        "conflict_rate_threshold",
        "Operations",
        "Alarm when more than this share of pushes is refused with ServerAheadError.",
        min_value=0,
        max_value=1,
    ),
    Parameter(
        "AlarmEmail", "alarm_email", "Operations", "An address subscribed to the alarm topic (empty = none)."
    ),
)

DEFAULTS = {field.name: field.default for field in dataclasses.fields(StratasyncProps)}


class StratasyncStack(cdk.Stack):
    """The parameters, the construct, and the outputs (``SyncUrl``, ``WebSocketUrl``, ``TableName``,
    ...); ``websocket=False``: the construct without live sync (and without its outputs)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        packaging: Packaging | None = None,
        websocket: bool = True,
        **kwargs: Any,
    ) -> None:
        self._logical_ids: dict[str, str] = {}
        super().__init__(scope, construct_id, **kwargs)
        values: dict[str, Any] = {}
        for parameter in PARAMETERS:
            default = DEFAULTS[parameter.prop]
            options: dict[str, Any] = {"type": "String" if isinstance(default, str) else "Number"}
            # Allowed values are text; CloudFormation compares the default with them as text.
            options["default"] = str(default) if parameter.allowed_values else default
            for key in ("description", "min_value", "max_value", "allowed_pattern"):
                if getattr(parameter, key) not in (None, ""):
                    options[key] = getattr(parameter, key)
            if parameter.allowed_values:
                options["allowed_values"] = list(parameter.allowed_values)
            cfn = cdk.CfnParameter(self, parameter.name, **options)
            values[parameter.prop] = cfn.value_as_string if isinstance(default, str) else cfn.value_as_number
        groups: dict[str, list[str]] = {}
        for parameter in PARAMETERS:
            groups.setdefault(parameter.group, []).append(parameter.name)
        self.template_options.metadata = {
            "AWS::CloudFormation::Interface": {
                "ParameterGroups": [
                    {"Label": {"default": label}, "Parameters": names} for label, names in groups.items()
                ]
            }
        }

        self.backend = Stratasync(
            self, CONSTRUCT_ID, StratasyncProps(**values), packaging=packaging, websocket=websocket
        )
        backend = self.backend
        cdk.CfnOutput(
            self,
            "SyncUrl",
            description="The backend URL for makeHttpSync({ url }) and the Python client's backend_url.",
            value=backend.url,
        )
        if backend.websocket_url is not None and backend.connections is not None:
            cdk.CfnOutput(
                self,
                "WebSocketUrl",
                description="The WebSocket URL for makeWsSync({ url }) (live pull; push large batches"
                " over SyncUrl, see docs/deploy.md).",
                value=backend.websocket_url,
            )
        cdk.CfnOutput(self, "TableName", value=backend.table.table_name)
        if backend.connections is not None:
            cdk.CfnOutput(self, "ConnectionsTableName", value=backend.connections.table_name)
        cdk.CfnOutput(self, "ArchiveBucketName", value=backend.bucket.bucket_name)
        cdk.CfnOutput(
            self,
            "AuthSecretArnOutput",  # the parameter has the construct id; the output's logical id is the same
            description=(
                "The Secrets Manager secret holding the HS256 key (empty when AuthSecretArn is none)."
            ),
            value=backend.secret_arn,
        ).override_logical_id("AuthSecretArn")
        cdk.CfnOutput(self, "AlarmTopicArn", value=backend.topic.topic_arn)
        dashboard = backend.dashboard.node.default_child
        assert isinstance(dashboard, cdk.CfnResource)
        cdk.CfnOutput(self, "DashboardName", value=dashboard.ref)

        validations = cdk.Validations.of(self)
        validations.acknowledge(
            cdk.Acknowledgment(
                id="CloudFormation-Validate::W2509",
                reason="AuthSecretArn names a secret (an ARN), it is not one: no NoEcho",
            ),
        )
        validations.acknowledge(
            cdk.Acknowledgment(
                id="CloudFormation-Validate::W1001",
                reason="the AuthSecretArn output refers to AuthSecret only under its own condition (Fn::If)",
            ),
        )

    def _allocate_logical_id(self, cfn_element: cdk.CfnElement) -> str:
        """The construct path below the stack, without the construct's own id, its concerns' ids,
        ``Resource`` or ``Default``, and without CDK's hash: ``Stratasync/Storage/ArchiveBucket/Policy/
        Resource`` is ``ArchiveBucketPolicy``. Two paths that would give the same id are an error."""
        scopes = cfn_element.node.scopes[len(self.node.scopes) :]
        # The concerns (Storage, Functions, ...) group resources; they are not part of the names.
        parts = [scope.node.id for scope in scopes if not isinstance(scope, Concern)]
        if parts and parts[0] == CONSTRUCT_ID:
            parts = parts[1:]
        logical_id = "".join(
            re.sub(r"[^A-Za-z0-9]", "", part) for part in parts if part not in ("Resource", "Default")
        )
        previous = self._logical_ids.setdefault(logical_id, cfn_element.node.path)
        if previous != cfn_element.node.path:
            raise ValueError(f"{cfn_element.node.path} and {previous} would both be {logical_id}")
        return logical_id
