"""The stratasync backend as one CDK construct: the single description of the stack.

Everything both deployments share is written once, in one module per concern, and :class:`Stratasync`
composes them:

* :mod:`~stratasync_infra.storage`: the eventlog table and the archive bucket;
* :mod:`~stratasync_infra.auth`: the HS256 auth secret (created, given, or none);
* :mod:`~stratasync_infra.functions`: the sync function and the archiver, their roles, log groups,
  environment and settings, the archiver's dead-letter queue;
* :mod:`~stratasync_infra.http_api`: the HTTP API with its CORS, throttling and access logs;
* :mod:`~stratasync_infra.alarms` and :mod:`~stratasync_infra.dashboard`: monitoring.

How the functions' code is packaged is the one thing that differs, and it is a
:class:`~stratasync_infra.packaging.Packaging` (:class:`CdkPackaging`, the default, or
:class:`SamPackaging`, from which ``template.yaml`` is made: :mod:`stratasync_infra.sam`).

Both publish a version per deployment with SnapStart on, and everything that calls a function (the HTTP
API, the sync function's archive trigger) calls its ``live`` alias. Every value in
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
    """HTTP API -> sync Lambda -> DynamoDB, the S3 archive and its archiver, alarms, dashboard.

    The concerns are attributes (``storage``, ``auth``, ``functions``, ``http``, ``alarms``,
    ``monitoring``), and so are the parts an app most often needs: ``table``, ``bucket``, ``api``,
    ``url``, ``topic``, ``dashboard``, ``sync`` and ``archiver`` (each a :class:`DeployedFunction`),
    ``secret_arn`` (empty if there is none).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        props: StratasyncProps | None = None,
        *,
        packaging: Packaging | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.props = props = props or StratasyncProps()
        self.packaging: Packaging = packaging or CdkPackaging()
        self.storage = Storage(self, "Storage", props)
        self.auth = AuthSecret(self, "Auth", props)
        self.functions = Functions(
            self, "Functions", props, storage=self.storage, auth=self.auth, packaging=self.packaging
        )
        self.http = HttpApi(self, "Http", props, sync=self.functions.sync)
        self.alarms = Alarms(
            self, "Alarms", props, storage=self.storage, functions=self.functions, http=self.http
        )
        self.monitoring = Dashboard(
            self, "Monitoring", storage=self.storage, functions=self.functions, http=self.http
        )

        self.table, self.bucket = self.storage.table, self.storage.bucket
        self.secret_arn = self.auth.secret_arn
        self.sync, self.archiver = self.functions.sync, self.functions.archiver
        self.api, self.url = self.http.api, self.http.url
        self.topic, self.dashboard = self.alarms.topic, self.monitoring.dashboard
