"""The sync rules: push (total order per store), pull (ordered pages from a cursor), ping."""

from stratasync.core.endpoint import PullSummary, RpcResponse, handle_rpc
from stratasync.core.service import PullStream, PushResult, SyncService

__all__ = ["PullStream", "PullSummary", "PushResult", "RpcResponse", "SyncService", "handle_rpc"]
