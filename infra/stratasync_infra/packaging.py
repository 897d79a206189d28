"""How a function gets its code: the one thing the two deployments do differently.

A function is a :class:`FunctionSpec` (handler, settings, role, log group); a :class:`Packaging` turns
it into resources and returns a :class:`DeployedFunction` (its name for metrics, its ``live`` alias
for callers):

* :class:`CdkPackaging` (the default): ``functions/`` as a code asset, the dependencies as one layer
  built by pip (:mod:`stratasync_infra.bundling`), versions and a ``live`` alias from CDK;
* :class:`SamPackaging`: ``AWS::Serverless::Function`` resources with ``CodeUri: functions/``, which
  ``sam build`` fills from ``functions/requirements.txt``, and SAM's ``AutoPublishAlias``.

Both publish a version per deployment with SnapStart on; callers use the alias.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stratasync_infra.bundling import dependencies_code
from stratasync_infra.parts import Concern

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = ROOT / "functions"
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
MEMORY_MB = 1024
#: The alias every caller uses; each deployment publishes a version (SnapStart snapshots it) and
#: points the alias at it.
ALIAS = "live"
#: Not part of the CDK code asset (the layer holds the dependencies; SAM installs them itself).
CODE_EXCLUDES = ["*.egg-info", "**/__pycache__", "requirements.txt"]


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function, whatever packages it."""

    logical_id: str
    handler: str
    description: str
    timeout_seconds: int
    environment: dict[str, str]
    role: iam.CfnRole
    log_group: logs.LogGroup
    dead_letter_queue: sqs.Queue | None = None
    #: Asynchronous invocations (of the alias): retries and the oldest event still run, in seconds.
    async_retries: int | None = None
    async_max_age_seconds: int | None = None


@dataclass(frozen=True)
class DeployedFunction:
    """What the rest of the stack needs of a function: its name (metrics) and its alias (callers)."""

    function_name: str
    alias: lambda_.IFunction
    extra: dict[str, Any] = field(default_factory=dict)


class Packaging(Protocol):
    """Turns a :class:`FunctionSpec` into resources."""

    def function(self, scope: Construct, spec: FunctionSpec) -> DeployedFunction: ...


class CdkPackaging:
    """``functions/`` as the code asset, the dependencies as one pip-built layer (shared by all)."""

    def __init__(self) -> None:
        self._layers: dict[str, lambda_.LayerVersion] = {}

    def layer(self, scope: Construct) -> lambda_.LayerVersion:
        """The one layer of the construct that ``scope`` belongs to (functions of several concerns
        share it): a child of the first scope above the concerns."""
        while isinstance(scope, Concern) and isinstance(scope.node.scope, Construct):
            scope = scope.node.scope
        key = scope.node.path
        if key not in self._layers:
            self._layers[key] = lambda_.LayerVersion(
                scope,
                "Dependencies",
                description="stratasync's Python dependencies (functions/requirements.txt, from uv.lock)",
                code=dependencies_code(scope, FUNCTIONS_DIR, RUNTIME),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
            )
        return self._layers[key]

    def function(self, scope: Construct, spec: FunctionSpec) -> DeployedFunction:
        # The role is the construct's own (the same in both packagings); imported immutable, CDK adds
        # no statements to it (tracing and the dead-letter queue are granted there already).
        role = iam.Role.from_role_arn(scope, f"{spec.logical_id}RoleArn", spec.role.attr_arn, mutable=False)
        function = lambda_.Function(
            scope,
            spec.logical_id,
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=spec.handler,
            code=lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=CODE_EXCLUDES),
            layers=[self.layer(scope)],
            memory_size=MEMORY_MB,
            timeout=cdk.Duration.seconds(spec.timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE,
            role=role,
            log_group=spec.log_group,
            environment=spec.environment,
            dead_letter_queue=spec.dead_letter_queue,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS,
        )
        function.node.add_dependency(spec.role)
        alias = lambda_.Alias(
            scope, f"{spec.logical_id}Alias{ALIAS}", alias_name=ALIAS, version=function.current_version
        )
        if spec.async_retries is not None:
            alias.configure_async_invoke(
                retry_attempts=spec.async_retries,
                max_event_age=cdk.Duration.seconds(spec.async_max_age_seconds or 21600),
            )
        return DeployedFunction(function.function_name, alias)


class SamPackaging:
    """``AWS::Serverless::Function`` resources: ``sam build`` installs the requirements into each."""

    def __init__(self, code_uri: str = "functions/") -> None:
        self.code_uri = code_uri

    def function(self, scope: Construct, spec: FunctionSpec) -> DeployedFunction:
        stack = cdk.Stack.of(scope)
        stack.add_transform("AWS::Serverless-2016-10-31")
        cdk.Validations.of(stack).acknowledge(
            cdk.Acknowledgment(
                id="CloudFormation-Validate::F1020",
                reason="Ref <function>.Alias names the alias SAM's transform makes (CDK checks before it)",
            )
        )
        properties: dict[str, Any] = {
            "Description": spec.description,
            "CodeUri": self.code_uri,
            "Handler": spec.handler,
            "Runtime": RUNTIME.name,
            "Architectures": [ARCHITECTURE.name],
            "MemorySize": MEMORY_MB,
            "Timeout": spec.timeout_seconds,
            "Tracing": "Active",
            "Role": spec.role.attr_arn,
            "LoggingConfig": {"LogGroup": spec.log_group.log_group_name},
            "Environment": {"Variables": spec.environment},
            "SnapStart": {"ApplyOn": "PublishedVersions"},
            "AutoPublishAlias": ALIAS,
        }
        if spec.dead_letter_queue is not None:
            properties["DeadLetterQueue"] = {"Type": "SQS", "TargetArn": spec.dead_letter_queue.queue_arn}
        if spec.async_retries is not None:
            properties["EventInvokeConfig"] = {
                "MaximumRetryAttempts": spec.async_retries,
                "MaximumEventAgeInSeconds": spec.async_max_age_seconds or 21600,
            }
        function = cdk.CfnResource(
            scope, spec.logical_id, type="AWS::Serverless::Function", properties=properties
        )
        # SAM names the alias resource <function>Alias<name>; `Ref: <function>.Alias` is its ARN.
        alias_arn = cdk.Fn.ref(f"{stack.resolve(function.logical_id)}.Alias")
        alias = lambda_.Function.from_function_attributes(
            scope, f"{spec.logical_id}Alias{ALIAS}", function_arn=alias_arn, same_environment=True
        )
        return DeployedFunction(function.ref, alias)
