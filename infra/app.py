#!/usr/bin/env python3
"""The CDK app: ``cdk deploy`` from this folder (see docs/deploy.md).

The stack's name is ``stratasync`` unless the context says otherwise (``-c stackName=...``);
``-c stratasync:websocket=false`` leaves live sync over WebSocket out. It is
the same StratasyncStack that ../template.yaml is made from; in an app of your own, use the
``Stratasync`` construct it wraps.
"""

from __future__ import annotations

import aws_cdk as cdk
from stratasync_infra import StratasyncStack

app = cdk.App()
StratasyncStack(
    app,
    app.node.try_get_context("stackName") or "stratasync",
    description="stratasync: a LiveStore-compatible sync backend (HTTP and WebSocket APIs, Lambda,"
    " DynamoDB, S3 archive)",
    websocket=str(app.node.try_get_context("stratasync:websocket") or "true").lower() != "false",
)
app.synth()
