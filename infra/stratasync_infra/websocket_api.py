"""The WebSocket API for LiveStore's ``makeWsSync``: routes by the frame's ``_tag``.

Frames are single JSON objects (``{"_tag":"Ping"}``, ``{"_tag":"Request",...}``, ...), so the route
selection expression is ``$request.body._tag``:

* ``Ping`` -> a MOCK integration that answers ``{"_tag":"Pong"}`` (a two-way route: integration
  response and route response ``$default``): no Lambda, no cold start, nothing billed but the two
  messages. The client tears its socket down after one 10 s ping interval without an answer.
* ``Ack`` -> MOCK, one-way (no route response): the client acks every chunk; nothing needs it.
* ``$connect``, ``$disconnect``, ``Request``, ``Interrupt`` and ``$default`` -> the WebSocket
  function's ``live`` alias (Lambda proxy). It answers through the ``@connections`` API, not
  through route responses.

The stage is created first, because the functions' environment and roles name the API and stage;
:meth:`WebSocketApi.route_to` adds the Lambda routes once the function exists.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stratasync_infra.packaging import DeployedFunction
from stratasync_infra.parts import Concern

#: The stage (the URL's path): wss://<api>.execute-api.<region>.amazonaws.com/sync
STAGE = "sync"
ROUTE_SELECTION = "$request.body._tag"
#: Route keys that invoke the WebSocket function (logical-id stem -> route key).
LAMBDA_ROUTES = {
    "Connect": "$connect",
    "Disconnect": "$disconnect",
    "Request": "Request",
    "Interrupt": "Interrupt",
    "Default": "$default",
}
PONG = json.dumps({"_tag": "Pong"}, separators=(",", ":"))
#: A MOCK integration's request template names the status code it "returns".
MOCK_OK = json.dumps({"statusCode": 200}, separators=(",", ":"))
#: A static template selection: always the ``$default`` template (the backslash keeps it literal).
STATIC_DEFAULT = "\\$default"


class WebSocketApi(Concern):
    """``WebSocketApi``, its ``sync`` stage and the MOCK routes; :attr:`url` (``wss://``) is for
    ``makeWsSync({ url })``, :attr:`callback_url` (``https://``) for the ``@connections`` API."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.api = apigw.CfnApi(
            self,
            "WebSocketApi",
            name=f"{cdk.Aws.STACK_NAME}-ws",
            description="stratasync live sync (LiveStore makeWsSync): routes by the frame's _tag",
            protocol_type="WEBSOCKET",
            route_selection_expression=ROUTE_SELECTION,
        )
        self.api_id = self.api.ref
        self.stage = apigw.CfnStage(
            self,
            "WebSocketStage",
            api_id=self.api_id,
            stage_name=STAGE,
            description="stratasync live sync",
            auto_deploy=True,
        )
        self.stage_name = STAGE
        domain = f"{self.api_id}.execute-api.{cdk.Aws.REGION}.{cdk.Aws.URL_SUFFIX}"
        #: The URL for LiveStore's makeWsSync({ url }) (no query: the client appends its own).
        self.url = f"wss://{domain}/{STAGE}"
        #: The @connections management endpoint (STRATASYNC_WS_ENDPOINT).
        self.callback_url = f"https://{domain}/{STAGE}"

        ping = self._mock("Ping")
        apigw.CfnIntegrationResponse(
            self,
            "PingIntegrationResponse",
            api_id=self.api_id,
            integration_id=ping.ref,
            integration_response_key="$default",
            response_templates={"$default": PONG},
            template_selection_expression=STATIC_DEFAULT,
        )
        ping_route = self._route("Ping", "Ping", ping, two_way=True)
        apigw.CfnRouteResponse(
            self,
            "PingRouteResponse",
            api_id=self.api_id,
            route_id=ping_route.ref,
            route_response_key="$default",
        )
        self._route("Ack", "Ack", self._mock("Ack"))

    def connections_arns(self, methods: tuple[str, ...] = ("POST", "DELETE", "GET")) -> list[str]:
        """``execute-api:ManageConnections`` resources: this API's stage, the ``@connections`` paths
        (POST sends, DELETE closes, GET reads a connection's state)."""
        stack = cdk.Stack.of(self)
        return [
            stack.format_arn(
                service="execute-api",
                resource=self.api_id,
                resource_name=f"{STAGE}/{method}/@connections/*",
            )
            for method in methods
        ]

    def route_to(self, function: DeployedFunction) -> None:
        """The Lambda routes, one proxy integration of ``function``'s alias, and the permission
        for this API's stage to invoke it."""
        integration = apigw.CfnIntegration(
            self,
            "WebSocketIntegration",
            api_id=self.api_id,
            description="The WebSocket function's live alias",
            integration_type="AWS_PROXY",
            integration_uri=cdk.Stack.of(self).format_arn(
                service="apigateway",
                account="lambda",
                resource="path/2015-03-31/functions",
                resource_name=f"{function.alias.function_arn}/invocations",
            ),
        )
        for name, key in LAMBDA_ROUTES.items():
            self._route(name, key, integration)
        lambda_.CfnPermission(
            self,
            "WebSocketInvokePermission",
            action="lambda:InvokeFunction",
            function_name=function.alias.function_arn,
            principal="apigateway.amazonaws.com",
            source_arn=cdk.Stack.of(self).format_arn(
                service="execute-api", resource=self.api_id, resource_name=f"{STAGE}/*"
            ),
        )

    def _mock(self, name: str) -> apigw.CfnIntegration:
        return apigw.CfnIntegration(
            self,
            f"{name}Integration",
            api_id=self.api_id,
            description=f"{name} frames, answered by API Gateway (no Lambda)",
            integration_type="MOCK",
            request_templates={"$default": MOCK_OK},
            template_selection_expression=STATIC_DEFAULT,
        )

    def _route(
        self, name: str, key: str, integration: apigw.CfnIntegration, *, two_way: bool = False
    ) -> apigw.CfnRoute:
        return apigw.CfnRoute(
            self,
            f"{name}Route",
            api_id=self.api_id,
            route_key=key,
            target=f"integrations/{integration.ref}",
            # Two-way: the integration's response goes back to the client (only the Pong).
            route_response_selection_expression="$default" if two_way else None,
        )
