"""The Lambda functions' dependencies as a layer, built by pip on this machine (no Docker).

``functions/requirements.txt`` (exported from uv.lock's ``lambda`` group) is installed with ``pip
install --target`` for the functions' platform (``manylinux`` wheels for arm64 and the runtime's
CPython), so the layer is right for Lambda whatever machine runs ``cdk deploy``. pip runs only when
CDK bundles assets, i.e. for ``cdk deploy`` and ``cdk synth``; tests and ``cdk synth
--exclusively`` skip bundling with the standard context ``aws:cdk:bundling-stacks=[]``, and ``-c
stratasync:dependenciesDir=<dir>`` uses a folder built beforehand (it must hold
``python/<packages>``).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

#: Wheels that run on Lambda's arm64 Amazon Linux 2023 (glibc 2.34).
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")


def pip_command(requirements: Path, target: Path, python_version: str) -> list[str]:
    """The pip invocation that installs ``requirements`` for Lambda arm64 into ``target``."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # No bytecode: pip would compile it for the deploying machine's Python (say *.cpython-311.pyc),
    # which the 3.13 runtime never reads (about 10 MB of the layer).
    command += ["--requirement", str(requirements), "--target", str(target), "--no-compile"]
    command += ["--implementation", "cp", "--python-version", python_version, "--only-binary=:all:"]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    return command


@jsii.implements(cdk.ILocalBundling)
class PipLayerBundling:
    """Local bundling: ``pip install`` into ``<output>/python`` (the layer's import path)."""

    def __init__(self, requirements: Path, python_version: str) -> None:
        self.requirements = requirements
        self.python_version = python_version

    def try_bundle(self, output_dir: str, *options: Any, **flattened_options: Any) -> bool:
        # jsii passes the BundlingOptions struct positionally, while its type stubs list the
        # struct's fields as keywords: accept either (none of them is needed here).
        subprocess.run(
            pip_command(self.requirements, Path(output_dir) / "python", self.python_version), check=True
        )
        return True


def dependencies_code(scope: Construct, functions_dir: Path, runtime: lambda_.Runtime) -> lambda_.Code:
    """The layer's code: a pre-built folder if the context names one, else pip-bundled.

    The asset's hash is the requirements' content, the runtime and the pip options, so the layer is
    rebuilt (and re-uploaded) only when those change, not on every code change.
    """
    prebuilt = scope.node.try_get_context("stratasync:dependenciesDir")
    if prebuilt:
        return lambda_.Code.from_asset(str(prebuilt))
    requirements = functions_dir / "requirements.txt"
    python_version = runtime.name.removeprefix("python")
    options = pip_command(Path("requirements.txt"), Path("target"), python_version)[1:]
    digest = hashlib.sha256(requirements.read_bytes() + runtime.name.encode() + b"arm64")
    digest.update(" ".join(options).encode())
    return lambda_.Code.from_asset(
        str(functions_dir),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=digest.hexdigest(),
        bundling=cdk.BundlingOptions(
            # Only used if local bundling declined, which it never does: no Docker needed.
            image=cdk.DockerImage.from_registry("public.ecr.aws/sam/build-python3.13"),
            local=PipLayerBundling(requirements, python_version),
        ),
    )
