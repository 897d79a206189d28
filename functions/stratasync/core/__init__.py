"""The sync rules: push (total order per store), pull (ordered pages from a cursor), ping."""

from stratasync.core.endpoint import RpcResponse, handle_rpc
from stratasync.core.service import PullResult, PushResult, SyncService

__all__ = ["PullResult", "PushResult", "RpcResponse", "SyncService", "handle_rpc"]
