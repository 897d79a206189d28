"""The HS256 shared secret: created by the stack, given as an ARN, or none (JWKS only)."""

from __future__ import annotations

from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stratasync_infra.parts import Concern
from stratasync_infra.props import StratasyncProps


class AuthSecret(Concern):
    """``AuthSecret`` under the condition ``CreateAuthSecret`` (``auth_secret_arn`` empty), and what
    the functions need of it: :attr:`secret_arn` for their environment, :attr:`resource` and
    :attr:`has_secret` for their roles."""

    def __init__(self, scope: Construct, construct_id: str, props: StratasyncProps) -> None:
        super().__init__(scope, construct_id)
        given = props.auth_secret_arn
        self.create_secret = cdk.CfnCondition(
            self, "CreateAuthSecret", expression=cdk.Fn.condition_equals(given, "")
        )
        self.no_secret = cdk.CfnCondition(
            self, "NoAuthSecret", expression=cdk.Fn.condition_equals(given, "none")
        )
        self.has_secret = cdk.CfnCondition(
            self,
            "HasAuthSecret",
            expression=cdk.Fn.condition_not(cast(cdk.ICfnConditionExpression, self.no_secret)),
        )
        self.secret = secretsmanager.CfnSecret(
            self,
            "AuthSecret",
            description="stratasync HS256 shared secret (sign client tokens with it)",
            generate_secret_string=secretsmanager.CfnSecret.GenerateSecretStringProperty(
                password_length=64, exclude_punctuation=True
            ),
        )
        self.secret.cfn_options.condition = self.create_secret
        #: The HS256 secret's ARN for the function ("" when there is none).
        self.secret_arn = cdk.Token.as_string(
            cdk.Fn.condition_if(
                self.create_secret.logical_id,
                self.secret.ref,
                cdk.Fn.condition_if(self.no_secret.logical_id, "", given),
            )
        )
        #: The secret a role may read (use it under :attr:`has_secret`).
        self.resource: Any = cdk.Fn.condition_if(self.create_secret.logical_id, self.secret.ref, given)
