"""Where the data lives: the eventlog table (with the stream the live fan-out reads), the archive
bucket, and the WebSocket connections table."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stratasync_infra.parts import Concern
from stratasync_infra.props import StratasyncProps

#: The connections table's TTL attribute (epoch seconds): connections live at most 2 hours, and
#: ``$disconnect`` is best-effort, so every item there expires on its own.
CONNECTIONS_TTL_ATTRIBUTE = "expiresAt"


class Storage(Concern):
    """``EventTable`` (the hot eventlog, kept on stack deletion; with ``live``, its stream feeds
    the live fan-out), ``ArchiveBucket`` (sealed segments under ``stores/``, private, versioned,
    kept on stack deletion) and, with ``live``, ``ConnectionsTable`` (WebSocket connections and
    their live pulls: expiring state, no backups, deleted with the stack; else :attr:`connections`
    is None)."""

    def __init__(
        self, scope: Construct, construct_id: str, props: StratasyncProps, *, live: bool = True
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "EventTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            # The fan-out needs only the keys of new commit records (the filter reads ``sk``): it
            # sends each live pull everything from the pull's own cursor, read from the log. Keys
            # keep the stream records, and so the fan-out's batches, small.
            stream=dynamodb.StreamViewType.KEYS_ONLY if live else None,
        )
        self.bucket = s3.Bucket(
            self,
            "ArchiveBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            lifecycle_rules=[
                # stores/<store>/segments/...: immutable, read when clients bootstrap; a re-run of
                # the archiver may write the same key again, so old versions go after a week.
                s3.LifecycleRule(
                    id="segments",
                    prefix="stores/",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                            transition_after=cdk.Duration.days(props.archive_transition_days),
                        )
                    ],
                    noncurrent_version_expiration=cdk.Duration.days(7),
                ),
                s3.LifecycleRule(
                    id="incomplete-uploads-and-delete-markers",
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                    expired_object_delete_marker=True,
                ),
            ],
        )
        self.connections: dynamodb.Table | None = None
        if not live:
            return
        self.connections = dynamodb.Table(
            self,
            "ConnectionsTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=CONNECTIONS_TTL_ATTRIBUTE,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
