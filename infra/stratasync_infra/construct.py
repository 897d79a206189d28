"""The stratasync backend as one CDK construct: the single description of the stack.

Everything both deployments share is written once, in one module per concern, and :class:`Stratasync`
composes them:

* :mod:`~stratasync_infra.storage`: the eventlog table and the archive bucket;
* :mod:`~stratasync_infra.auth`: the HS256 auth secret (created, given, or none);
* :mod:`~stratasync_infra.functions`: the sync function and the archiver, their roles, log groups,
  environment and settings, the archiver's dead-letter queue; and what a function needs to send to
  live pulls (``live_access``: the sync function's with the WebSocket API, the live functions');
* :mod:`~stratasync_infra.http_api`: the HTTP API with its CORS, throttling and access logs;
* :mod:`~stratasync_infra.websocket_api` and :mod:`~stratasync_infra.live`: live sync over WebSocket
  (the API and its routes; the WebSocket function, and the fan-out from the eventlog's stream);
* :mod:`~stratasync_infra.alarms` and :mod:`~stratasync_infra.dashboard`: monitoring.

How the functions' code is packaged is the one thing that differs, and it is a
:class:`~stratasync_infra.packaging.Packaging` (:class:`CdkPackaging`, the default, or
:class:`SamPackaging`, from which ``template.yaml`` is made: :mod:`stratasync_infra.sam`).

Both publish a version per deployment with SnapStart on, and everything that calls a function (the
APIs, the sync function's archive trigger, the stream's event source) calls its ``live`` alias. Every value in
:class:`StratasyncProps` may be a token, e.g. a ``CfnParameter`` (see :mod:`stratasync_infra.stack`).

To add a resource, add it once to the concern it belongs to (or a new
:class:`~stratasync_infra.parts.Concern`); a new function is one more :class:`FunctionSpec` and both
packagings deploy it.
"""

from __future__ import annotations

from constructs import Construct

from stratasync_infra.alarms import Alarms
from stratasync_infra.auth import AuthSecret
from stratasync_infra.dashboard import Dashboard
from stratasync_infra.functions import Functions
from stratasync_infra.http_api import HttpApi
from stratasync_infra.live import LiveSync
from stratasync_infra.packaging import (
    ALIAS,
    FUNCTIONS_DIR,
    ROOT,
    CdkPackaging,
    DeployedFunction,
    FunctionSpec,
    Packaging,
    SamPackaging,
)
from stratasync_infra.props import StratasyncProps
from stratasync_infra.storage import Storage
from stratasync_infra.websocket_api import WebSocketApi

__all__ = [
    "ALIAS",
    "FUNCTIONS_DIR",
    "ROOT",
    "CdkPackaging",
    "DeployedFunction",
    "FunctionSpec",
    "Packaging",
    "SamPackaging",
    "Stratasync",
    "StratasyncProps",
]


class Stratasync(Construct):
    """HTTP API -> sync Lambda -> DynamoDB, the S3 archive and its archiver; WebSocket API -> live
    sync Lambda, and the stream fan-out to live pulls; alarms, dashboard.

    The concerns are attributes (``storage``, ``auth``, ``functions``, ``http``, ``websocket``,
    ``live``, ``alarms``, ``monitoring``), and so are the parts an app most often needs: ``table``,
    ``bucket``, ``connections``, ``api``, ``url``, ``websocket_url``, ``topic``, ``dashboard``,
    ``sync`` and ``archiver`` (each a :class:`DeployedFunction`), ``secret_arn`` (empty if there is
    none).

    ``websocket=False`` leaves live sync out (the WebSocket API, the connections table, the
    eventlog's stream, the WebSocket and fan-out functions): ``websocket``, ``live``,
    ``connections`` and ``websocket_url`` are then None.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        props: StratasyncProps | None = None,
        *,
        packaging: Packaging | None = None,
        websocket: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        self.props = props = props or StratasyncProps()
        self.packaging: Packaging = packaging or CdkPackaging()
        self.storage = Storage(self, "Storage", props, live=websocket)
        self.auth = AuthSecret(self, "Auth", props)
        # The API first (it needs nothing): the sync function sends to its live pulls too.
        self.websocket: WebSocketApi | None = WebSocketApi(self, "WebSocket") if websocket else None
        self.functions = Functions(
            self,
            "Functions",
            props,
            storage=self.storage,
            auth=self.auth,
            packaging=self.packaging,
            websocket_api=self.websocket,
        )
        self.http = HttpApi(self, "Http", props, sync=self.functions.sync)
        self.live: LiveSync | None = None
        if self.websocket is not None:
            self.live = LiveSync(
                self,
                "Live",
                props,
                storage=self.storage,
                auth=self.auth,
                functions=self.functions,
                websocket=self.websocket,
                packaging=self.packaging,
            )
            self.websocket.route_to(self.live.websocket)
        self.alarms = Alarms(
            self,
            "Alarms",
            props,
            storage=self.storage,
            functions=self.functions,
            http=self.http,
            live=self.live,
        )
        self.monitoring = Dashboard(
            self,
            "Monitoring",
            storage=self.storage,
            functions=self.functions,
            http=self.http,
            websocket=self.websocket,
            live=self.live,
        )

        self.table, self.bucket = self.storage.table, self.storage.bucket
        self.secret_arn = self.auth.secret_arn
        self.sync, self.archiver = self.functions.sync, self.functions.archiver
        self.api, self.url = self.http.api, self.http.url
        #: The URL for LiveStore's makeWsSync({ url }).
        self.websocket_url = self.websocket.url if self.websocket else None
        self.connections = self.storage.connections
        self.topic, self.dashboard = self.alarms.topic, self.monitoring.dashboard
