"""The HTTP API: ``POST /`` (sync) and ``GET /archive`` (manifest) to the sync function's alias."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from constructs import Construct

from stratasync_infra.packaging import DeployedFunction
from stratasync_infra.parts import Concern, log_group
from stratasync_infra.props import StratasyncProps

#: The LiveStore client's JSON POST, its store id header, auth, and tracing headers (the sync
#: handler's CORSConfig allows the same; tests/infra checks it).
CORS_HEADERS = ["content-type", "x-livestore-store-id", "authorization", "b3", "traceparent", "tracestate"]
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latency": "$context.responseLatency",
    "integrationError": "$context.integrationErrorMessage",
}


class HttpApi(Concern):
    """``HttpApi`` with CORS, its throttled and logged ``$default`` stage, and the two routes;
    :attr:`url` is the backend URL for ``makeHttpSync({ url })``."""

    def __init__(
        self, scope: Construct, construct_id: str, props: StratasyncProps, *, sync: DeployedFunction
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = apigw.HttpApi(
            self,
            "HttpApi",
            api_name=cdk.Aws.STACK_NAME,
            description="stratasync sync endpoint (POST /) and archive manifest (GET /archive)",
            create_default_stage=False,
            cors_preflight=apigw.CorsPreflightOptions(
                allow_origins=[props.cors_allow_origin],
                allow_methods=[
                    apigw.CorsHttpMethod.GET,
                    apigw.CorsHttpMethod.POST,
                    apigw.CorsHttpMethod.OPTIONS,
                ],
                allow_headers=CORS_HEADERS,
                max_age=cdk.Duration.seconds(600),
            ),
        )
        access_logs = log_group(self, "ApiAccessLogGroup", props.log_retention_days)
        self.stage = apigw.HttpStage(
            self,
            "HttpApiApiGatewayDefaultStage",  # the logical id SAM's HttpApi gave the stage
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(
                rate_limit=props.throttling_rate_limit, burst_limit=props.throttling_burst_limit
            ),
        )
        stage = self.stage.node.default_child
        assert isinstance(stage, apigw.CfnStage)
        stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=access_logs.log_group_arn,
            format=json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")),
        )
        integration = integrations.HttpLambdaIntegration("SyncIntegration", sync.alias)
        self.api.add_routes(path="/", methods=[apigw.HttpMethod.POST], integration=integration)
        self.api.add_routes(path="/archive", methods=[apigw.HttpMethod.GET], integration=integration)
        #: The backend URL for makeHttpSync({ url }) and the Python client's backend_url.
        self.url = f"{self.api.api_endpoint}/"
