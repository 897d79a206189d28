"""CDK-only checks with aws_cdk.assertions: packaging (code asset plus a dependency layer, both
arm64), and nothing that the SAM template does not have (no helper Lambdas, no wildcard grants); the
construct on its own, as a user's app would use it."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests import emulators
from tests.infra.conftest import ROOT, Synthesized

with contextlib.suppress(ImportError):  # reported by the cdk_synth fixture (skip locally, fail in CI)
    from aws_cdk.assertions import Match, Template


@pytest.fixture(scope="module")
def template(cdk_synth: Synthesized) -> Any:
    return Template.from_json(cdk_synth.template)


def test_exactly_four_functions_and_one_dependency_layer(template: Any) -> None:
    # sync, archiver, WebSocket, fan-out: no log-retention or auto-delete helpers
    template.resource_count_is("AWS::Lambda::Function", 4)
    template.resource_count_is("AWS::Lambda::LayerVersion", 1)
    template.has_resource_properties(
        "AWS::Lambda::LayerVersion",
        {"CompatibleArchitectures": ["arm64"], "CompatibleRuntimes": ["python3.13"]},
    )
    template.all_resources_properties(
        "AWS::Lambda::Function",
        {"Layers": [{"Ref": Match.string_like_regexp("^Dependencies")}], "Architectures": ["arm64"]},
    )


def test_function_code_is_the_backend_packages_only(cdk_synth: Synthesized) -> None:
    """The code asset is functions/: the backend's portions of the stratasync namespace package."""
    assets = [path for path in cdk_synth.template_path.parent.glob("asset.*") if path.is_dir()]
    code = [path for path in assets if (path / "stratasync" / "handlers" / "sync.py").exists()]
    assert len(code) == 1, assets
    assert (code[0] / "stratasync" / "handlers" / "archiver.py").exists()
    packages = {path.name for path in (code[0] / "stratasync").iterdir()}
    assert packages == {"auth", "core", "handlers", "protocol", "storage"}  # no client, devserver, cli
    assert not list(code[0].glob("*.egg-info"))
    assert not list(code[0].rglob("__pycache__"))
    assert not (code[0] / "requirements.txt").exists()  # the layer's input, not code


def test_no_resource_wildcards_outside_xray(template: Any) -> None:
    documents = [
        p["Properties"]["PolicyDocument"] for p in template.find_resources("AWS::IAM::Policy").values()
    ]
    for role in template.find_resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]  # no AWS-managed grants on `*`
        documents += [policy["PolicyDocument"] for policy in role["Properties"].get("Policies", [])]
    assert documents
    for document in documents:
        for statement in document["Statement"]:
            if "Fn::If" in statement:
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if statement["Resource"] == "*":
                # X-Ray, and ListStreams (the stream event source's), take no resource but "*".
                assert all(a.startswith("xray:") or a == "dynamodb:ListStreams" for a in actions), statement


def test_the_dependency_layer_is_built_by_pip_for_arm64(tmp_path: Path) -> None:
    """The pip command the layer's local bundling runs (at deploy time) targets Lambda's platform."""
    try:
        from stratasync_infra.bundling import pip_command
    except ImportError:
        emulators.missing("aws-cdk-lib is not installed (bash scripts/install-infra-tools.sh)")
    command = pip_command(ROOT / "functions" / "requirements.txt", tmp_path / "python", "3.13")
    assert command[command.index("--python-version") + 1] == "3.13"
    assert command[command.index("--target") + 1] == str(tmp_path / "python")
    assert "--only-binary=:all:" in command
    platforms = {command[i + 1] for i, arg in enumerate(command) if arg == "--platform"}
    assert platforms
    assert all(platform.endswith("_aarch64") for platform in platforms)


def test_the_construct_in_an_app_of_ones_own() -> None:
    """Stratasync dropped into another stack: CDK's own ids (two instances do not collide), props
    given as plain values, SnapStart and the alias as in the standalone stack."""
    try:
        import aws_cdk as cdk
        from stratasync_infra import Stratasync, StratasyncProps
    except ImportError:
        emulators.missing("aws-cdk-lib is not installed (bash scripts/install-infra-tools.sh)")
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "MyApp")
    Stratasync(
        stack, "Sync", StratasyncProps(auth_required="false", segment_events=500, alarm_email="ops@x.y")
    )
    Stratasync(stack, "Staging")
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Lambda::Function", 8)
    template.resource_count_is("AWS::Lambda::Alias", 8)
    template.resource_count_is("AWS::Lambda::LayerVersion", 2)  # one per construct, shared by concerns
    template.resource_count_is("AWS::DynamoDB::Table", 4)
    template.resource_count_is("AWS::ApiGatewayV2::Api", 4)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "SnapStart": {"ApplyOn": "PublishedVersions"},
            "Environment": {
                "Variables": Match.object_like(
                    {"STRATASYNC_SEGMENT_EVENTS": "500", "STRATASYNC_AUTH_REQUIRED": "false"}
                )
            },
        },
    )
    assert not template.find_parameters("*", {"Type": "Number"})  # the construct makes no parameters


def test_the_construct_without_websocket() -> None:
    """``websocket=False``: the HTTP backend alone, with no trace of live sync (no API, table, stream,
    function or grant), and the sync function does not refuse events too large for WebSocket nor
    send to live pulls (no connections table or @connections endpoint, no grant on either)."""
    try:
        import aws_cdk as cdk
        from stratasync_infra import Stratasync
    except ImportError:
        emulators.missing("aws-cdk-lib is not installed (bash scripts/install-infra-tools.sh)")
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "HttpOnly")
    backend = Stratasync(stack, "Sync", websocket=False)
    assert backend.websocket is None
    assert backend.live is None
    assert backend.websocket_url is None
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Lambda::Function", 2)
    template.resource_count_is("AWS::DynamoDB::Table", 1)
    template.resource_count_is("AWS::ApiGatewayV2::Api", 1)
    template.resource_count_is("AWS::Lambda::EventSourceMapping", 0)
    (table,) = template.find_resources("AWS::DynamoDB::Table").values()
    assert "StreamSpecification" not in table["Properties"]
    text = json.dumps(template.to_json())
    live_settings = ("STRATASYNC_WS_ENABLED", "STRATASYNC_CONNECTIONS_TABLE", "STRATASYNC_WS_ENDPOINT")
    for absent in ("execute-api:ManageConnections", *live_settings):
        assert absent not in text
    (sync,) = [
        function["Properties"]
        for function in template.find_resources("AWS::Lambda::Function").values()
        if function["Properties"]["Handler"] == "stratasync.handlers.sync.lambda_handler"
    ]
    assert not set(live_settings) & set(sync["Environment"]["Variables"])
    (role,) = [
        role["Properties"]
        for key, role in template.find_resources("AWS::IAM::Role").items()
        if {"Fn::GetAtt": [key, "Arn"]} == sync["Role"]
    ]
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    sids = {statement.get("Sid") for statement in statements}
    assert "EventTable" in sids
    assert not {"Connections", "ManageConnections"} & sids
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == 8
    assert not [key for key in alarms if "Fanout" in key or "WebSocket" in key]


def _tiny_wheel(folder: Path) -> Path:
    """A pure-Python wheel made by hand, so pip installs it offline."""
    import zipfile

    wheel = folder / "tinydep-1.0-py3-none-any.whl"
    files = {
        "tinydep/__init__.py": "VALUE = 42\n",
        "tinydep-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n",
        "tinydep-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    files["tinydep-1.0.dist-info/RECORD"] = (
        "".join(f"{name},,\n" for name in files) + "tinydep-1.0.dist-info/RECORD,,\n"
    )
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


def test_local_bundling_runs_pip_through_cdk(tmp_path: Path) -> None:
    """CDK calls PipLayerBundling.try_bundle (through jsii) at synth time with bundling on, and the
    layer asset then holds the requirements under python/ (a local wheel: no network)."""
    try:
        import aws_cdk as cdk
        from aws_cdk import aws_lambda as lambda_
        from stratasync_infra.bundling import PipLayerBundling
    except ImportError:
        emulators.missing("aws-cdk-lib is not installed (bash scripts/install-infra-tools.sh)")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{_tiny_wheel(tmp_path)}\n")
    source = tmp_path / "source"
    source.mkdir()
    (source / "requirements.txt").write_text(requirements.read_text())
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = cdk.Stack(app, "bundling")
    lambda_.LayerVersion(
        stack,
        "Layer",
        code=lambda_.Code.from_asset(
            str(source),
            bundling=cdk.BundlingOptions(
                image=cdk.DockerImage.from_registry("unused"), local=PipLayerBundling(requirements, "3.13")
            ),
        ),
    )
    app.synth()
    installed = list((tmp_path / "cdk.out").glob("asset.*/python/tinydep/__init__.py"))
    assert len(installed) == 1
    assert installed[0].read_text() == "VALUE = 42\n"


def test_the_construct_is_one_module_per_concern() -> None:
    """Issue 11: the construct's modules stay small (Stratasync composes Storage, Functions, HttpApi,
    ...: see construct.py); the logical ids they keep are checked in test_stacks.SHARED_RESOURCES."""
    modules = sorted((ROOT / "infra" / "stratasync_infra").glob("*.py"))
    assert len(modules) >= 8
    for module in modules:
        lines = len(module.read_text().splitlines())
        assert lines <= 400, f"{module.name} has {lines} lines: split it by concern"
