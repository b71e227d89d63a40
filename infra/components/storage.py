"""A bucket: encrypted, public access blocked, plain HTTP refused, versioned if it keeps history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components import type_token
from infra.components.base import policy_document, retained


def tls_only_statement(bucket_arn: pulumi.Input[str]) -> dict[str, Any]:
    """Refuse every request to a bucket that does not come over TLS."""
    arn = pulumi.Output.from_input(bucket_arn)
    return {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, arn.apply(lambda a: f"{a}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


@dataclass(frozen=True)
class SecureBucketArgs:
    bucket_name: str
    protected: bool
    versioned: bool


class SecureBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket

    def __init__(
        self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(type_token("SecureBucket"), name, None, opts)
        # Ephemeral stacks must be destroyable in one go, data included;
        # protected stacks keep their data even when the stack goes.
        self.bucket = aws.s3.Bucket(
            name,
            bucket=args.bucket_name,
            force_destroy=not args.protected,
            opts=retained(self, args.protected),
        )
        # Protected with the bucket: otherwise removing the component would strip
        # encryption and the public-access block before the bucket delete is refused.
        settings_opts = retained(self, args.protected)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"},
                    "bucket_key_enabled": True,
                }
            ],
            opts=settings_opts,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=settings_opts,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=settings_opts,
        )
        # A Deny is not a public grant, so the public-access block allows it.
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=self.bucket.id,
            policy=policy_document([tls_only_statement(self.bucket.arn)]),
            opts=settings_opts,
        )
        if args.versioned:
            aws.s3.BucketVersioning(
                f"{name}-versioning",
                bucket=self.bucket.id,
                versioning_configuration={"status": "Enabled"},
                opts=settings_opts,
            )
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})
