"""The stratasync backend for CDK: the :class:`Stratasync` construct (drop it into your app), the
:class:`StratasyncStack` that wraps it with CloudFormation parameters (infra/app.py), and the SAM
template made from the same stack (:mod:`stratasync_infra.sam`, ../template.yaml)."""

from stratasync_infra.bundling import PipLayerBundling, dependencies_code
from stratasync_infra.construct import Stratasync
from stratasync_infra.packaging import (
    ALIAS,
    FUNCTIONS_DIR,
    CdkPackaging,
    DeployedFunction,
    FunctionSpec,
    Packaging,
    SamPackaging,
)
from stratasync_infra.parts import Concern
from stratasync_infra.props import StratasyncProps
from stratasync_infra.stack import StratasyncStack

__all__ = [
    "ALIAS",
    "FUNCTIONS_DIR",
    "CdkPackaging",
    "Concern",
    "DeployedFunction",
    "FunctionSpec",
    "Packaging",
    "PipLayerBundling",
    "SamPackaging",
    "Stratasync",
    "StratasyncProps",
    "StratasyncStack",
    "dependencies_code",
]
