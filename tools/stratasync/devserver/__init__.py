"""``stratasync dev``: the Lambda handler on localhost, over an embedded moto or real endpoints."""

from stratasync.devserver.config import DevServerConfig
from stratasync.devserver.server import DevServer

__all__ = ["DevServer", "DevServerConfig"]
