"""``stratasync dev``: the Lambda handler on localhost, over an embedded moto or real endpoints."""

from stratasync.devserver.server import DevServer, DevServerConfig

__all__ = ["DevServer", "DevServerConfig"]
