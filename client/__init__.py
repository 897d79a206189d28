"""The stratasync Python client: talk the LiveStore sync-cf HTTP protocol to any such backend."""

from stratasync.client.transport import PullPage, SyncHttpTransport, TransportError

__all__ = ["PullPage", "SyncHttpTransport", "TransportError"]
