"""The stratasync stack as a CDK app (the same resources as ../template.yaml, the SAM template)."""

from stratasync_infra.bundling import PipLayerBundling, dependencies_code
from stratasync_infra.stack import FUNCTIONS_DIR, StratasyncStack

__all__ = ["FUNCTIONS_DIR", "PipLayerBundling", "StratasyncStack", "dependencies_code"]
