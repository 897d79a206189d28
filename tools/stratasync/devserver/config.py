"""How to run ``stratasync dev`` (:class:`DevServerConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DevServerConfig:
    """How to run ``stratasync dev``."""

    host: str = "127.0.0.1"
    port: int = 8787
    #: None: an embedded moto. Otherwise DynamoDB Local, another emulator, or a real AWS endpoint.
    dynamodb_endpoint: str | None = None
    table_name: str = "stratasync"
    workers: int = 2
    log_level: str = "WARNING"
    #: Print the handler's CloudWatch EMF metric lines too.
    show_metrics: bool = False
    #: Require HS256 tokens signed with this secret (None: authentication off).
    auth_secret: str | None = None
    #: None: the embedded moto serves S3 too. Otherwise SeaweedFS, MinIO, or a real AWS endpoint.
    s3_endpoint: str | None = None
    #: The archive bucket (created if missing).
    bucket: str = "stratasync-archive"
    #: Seal a segment at this many events or bytes of event JSON (small values: segments at once).
    segment_events: int = 10_000
    segment_bytes: int = 4_000_000
    #: Serve LiveStore's makeWsSync too (pushes then refuse events too large for WebSocket).
    websocket: bool = True
    #: The WebSocket API's idle timeout and connection lifetime (API Gateway: 10 min and 2 h).
    ws_idle_timeout_seconds: float = 600.0
    ws_max_lifetime_seconds: float = 7200.0
    #: How often the stream poller reads the eventlog's stream while WebSocket clients are connected.
    stream_poll_interval: float = 0.01
    #: With the embedded moto: how long after a commit's stream record is written the poller reads
    #: it (Lambda's poller reads a shard about four times a second; see :mod:`.streams`).
    stream_read_delay: float = 0.1
    extra_env: dict[str, str] = field(default_factory=dict)
    #: A built web app served at /app/ (the dev server's extra, see :mod:`.webapp`); None: not built.
    web_app_dir: str | None = None
    #: Run the functions in threads of this process instead of worker processes, their calls to
    #: the embedded moto and the private port without a socket (:mod:`.loopback`): faster, less
    #: like Lambda (:class:`~stratasync.devserver.functions.ThreadFunction`). One per process.
    in_process: bool = False
    #: Keep the eventlog and the connections in this process's memory instead of DynamoDB
    #: (implies ``in_process``; the embedded moto still serves S3): the fastest dev server, and
    #: the least like AWS (see docs/dev-server.md). No DynamoDB endpoint, so no operator commands.
    memory: bool = False

    def __post_init__(self) -> None:
        if self.memory:
            if self.dynamodb_endpoint is not None:
                raise ValueError(
                    "--memory keeps the eventlog in this process's memory: it cannot be combined"
                    " with --dynamodb-endpoint"
                )
            if self.s3_endpoint is not None:
                raise ValueError(
                    "--memory keeps the eventlog in this process's memory: an archive on --s3-endpoint"
                    " would outlive it (the next run would start the archived stores afresh); use"
                    " the embedded moto's S3, or drop --memory"
                )
            self.in_process = True

    @property
    def connections_table(self) -> str:
        return f"{self.table_name}-connections"
