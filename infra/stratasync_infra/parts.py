"""What the parts of the :class:`~stratasync_infra.construct.Stratasync` construct share: the
:class:`Concern` base class, settings as environment text, IAM statements and log groups."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import Construct

Number = int | float


class Concern(Construct):
    """One part of the stack with one job (storage, functions, an API, alarms, ...).

    A concern groups resources in the construct tree (and in the CDK console); it adds nothing to
    the template. :class:`~stratasync_infra.stack.StratasyncStack` leaves concerns' ids out of the
    logical ids, so ``Stratasync/Storage/EventTable`` is ``EventTable``: moving a resource between
    concerns never replaces it.
    """


def text(value: str | Number) -> str:
    """A setting as an environment variable's text (a token stays a reference)."""
    if isinstance(value, str):
        return value
    if cdk.Token.is_unresolved(value):
        return cdk.Token.as_string(value)
    return str(int(value)) if float(value).is_integer() else str(value)


def policy_statement(sid: str, actions: list[str] | str, resource: Any) -> dict[str, Any]:
    """An Allow statement of an inline policy document (``resource``: one ARN or a list)."""
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}


def log_group(scope: Construct, construct_id: str, retention_days: Number) -> logs.LogGroup:
    """A log group with the deployment's retention, deleted with the stack."""
    group = logs.LogGroup(scope, construct_id, removal_policy=cdk.RemovalPolicy.DESTROY)
    child = group.node.default_child
    assert isinstance(child, logs.CfnLogGroup)
    # Any token (a parameter) works here, not only the enum's values.
    child.retention_in_days = retention_days
    return group
