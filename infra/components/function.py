"""A Python Lambda with its own role, log group and least-privilege logging policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import packaging
from infra.components import type_token
from infra.components.base import child, service_role, statement

HANDLERS = Path(__file__).resolve().parent.parent / "handlers"
RUNTIME = f"python{packaging.LAMBDA_PYTHON}"


def _files(folder: Path) -> dict[str, pulumi.FileAsset]:
    return {
        path.relative_to(folder).as_posix(): pulumi.FileAsset(str(path))
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix != ".pyc"
        and path.name != packaging.MANIFEST
    }


def source_archive(source: Path, dependencies: Path | None = None) -> pulumi.AssetArchive:
    """The handler folder's sources, beside the packaged dependencies when there are any.

    No bytecode caches: they would change the code hash per machine, and a deploy would
    then refuse the plan its preview saved. The handler's files win a name clash."""
    return pulumi.AssetArchive({**(_files(dependencies) if dependencies else {}), **_files(source)})


@dataclass(frozen=True)
class PythonFunctionArgs:
    function_name: str
    role_name: str
    log_group_name: str
    source_dir: str  # a folder under infra/handlers/
    description: str
    memory_mb: int
    timeout_seconds: int
    log_retention_days: int
    publish: bool = False
    environment: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    # Statements beyond logging, in IAM JSON form; resources may be Outputs.
    statements: tuple[dict[str, Any], ...] = ()
    dead_letter_arn: pulumi.Input[str] | None = None
    permissions_boundary: pulumi.Input[str] | None = None
    # Packaged libraries (scripts.package) shipped beside the handler, at the zip's root.
    dependencies_dir: Path | None = None


class PythonFunction(pulumi.ComponentResource):
    function: aws.lambda_.Function
    role: aws.iam.Role
    log_group: aws.cloudwatch.LogGroup

    def __init__(
        self, name: str, args: PythonFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(type_token("PythonFunction"), name, None, opts)
        source = (HANDLERS / args.source_dir).resolve()
        if not source.is_relative_to(HANDLERS) or not (source / "handler.py").is_file():
            raise ValueError(
                f"Lambda source {args.source_dir!r} must be a folder under {HANDLERS} "
                "holding handler.py"
            )
        # Created by the program, not by Lambda on first write, so retention
        # applies and destroy removes it.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=args.log_group_name,
            retention_in_days=args.log_retention_days,
            opts=child(self),
        )
        logging = statement(
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [self.log_group.arn.apply(lambda arn: f"{arn}:*")],
        )
        self.role, policy = service_role(
            self,
            name,
            role_name=args.role_name,
            service="lambda.amazonaws.com",
            statements=[logging, *args.statements],
            permissions_boundary=args.permissions_boundary,
        )
        self.function = aws.lambda_.Function(
            name,
            name=args.function_name,
            description=args.description,
            role=self.role.arn,
            runtime=RUNTIME,
            handler="handler.handler",
            code=source_archive(source, args.dependencies_dir),
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            publish=args.publish,
            environment={"variables": args.environment} if args.environment else None,
            dead_letter_config={"target_arn": args.dead_letter_arn}
            if args.dead_letter_arn
            else None,
            logging_config={"log_format": "JSON", "log_group": self.log_group.name},
            opts=child(self, depends_on=[policy, self.log_group]),
        )
        self.register_outputs({"function_name": self.function.name, "role_arn": self.role.arn})
