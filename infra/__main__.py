"""The Pulumi program: load config -> names -> components -> outputs. Nothing else."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

# Pulumi runs `main: infra/` as a script directory; the project root must be
# importable so `infra.*` means the same here, in scripts and in tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi
import pulumi_aws as aws

from infra import config, naming, packaging
from infra.components.api import ApiVersions, ApiVersionsArgs
from infra.components.api_logging import ApiGatewayLogging, ApiGatewayLoggingArgs
from infra.components.canary import CanaryDeployment, CanaryDeploymentArgs
from infra.components.ci_access import CiAccess, output_name
from infra.components.ci_duties import (
    DEPLOY,
    DEPLOY_PROTECTED,
    CiAccessArgs,
    any_branch_names,
    protected_stacks,
)
from infra.components.dependencies import Dependencies, DependenciesArgs
from infra.components.events import EventSourcing, EventSourcingArgs
from infra.components.model_testing import ModelTesting, ModelTestingArgs


class StackMismatch(config.ConfigError):
    """The stack's recorded branch does not name this stack."""


def main(environ: Mapping[str, str] | None = None) -> None:
    settings = config.load(environ)
    if pulumi.get_stack() == naming.SHARED_STACK:
        build_shared(settings)
    else:
        build_branch(settings)


def _provider(settings: config.Settings, stack: naming.BranchStack) -> pulumi.ResourceOptions:
    # Tags through the provider: no resource can forget them.
    provider = aws.Provider(
        "aws",
        region=settings.region,
        default_tags={"tags": naming.tags(settings.project, stack, settings.git_sha)},
    )
    return pulumi.ResourceOptions(providers=[provider])


def _account_id(opts: pulumi.ResourceOptions) -> str:
    provider = opts.providers[0]  # type: ignore[index]
    return aws.get_caller_identity(opts=pulumi.InvokeOptions(provider=provider)).account_id


def _branch_stack(settings: config.Settings) -> naming.BranchStack:
    stack_name = pulumi.get_stack()
    if not settings.branch:
        raise StackMismatch(
            f"config {settings.project}:branch is empty for stack {stack_name!r}: a branch stack "
            "records its branch when created (`nox -s preview -- --branch NAME` does that)"
        )
    stack = settings.branch_stack(settings.branch)
    if stack.stack != stack_name:
        raise StackMismatch(
            f"config {settings.project}:branch={settings.branch!r} belongs to stack "
            f"{stack.stack!r}, not {stack_name!r}"
        )
    return stack


def build_branch(settings: config.Settings) -> None:
    stack = _branch_stack(settings)
    opts = _provider(settings, stack)
    names = naming.branch_names(settings.project, stack, _account_id(opts), settings.api_versions)
    shared = pulumi.StackReference(
        naming.SHARED_STACK_REFERENCE.format(
            organization=pulumi.get_organization(), project=settings.project
        )
    )
    lambda_sizing = dict(
        memory_mb=settings.lambda_memory_mb,
        timeout_seconds=settings.lambda_timeout_seconds,
        log_retention_days=settings.log_retention_days,
    )
    # A protected stack's roles get the boundary that does not deny protected names.
    boundary = shared.require_output(
        "protected_role_boundary_arn" if stack.protected else "role_boundary_arn"
    )
    try:
        model_dependencies = packaging.dependencies_dir(config.REPO_ROOT)
    except packaging.PackagingError as error:
        raise config.ConfigError(str(error)) from None

    testing = ModelTesting(
        "model-testing",
        ModelTestingArgs(
            branch=stack.branch,
            protected=stack.protected,
            artifact_bucket=names.artifact_bucket,
            training_project=names.training_project,
            training_role=names.training_role,
            training_log_group=names.training_log_group,
            sagemaker_role=names.sagemaker_role,
            notebook=names.notebook if settings.notebook_enabled else None,
            notebook_instance_type=settings.notebook_instance_type,
            compute_type=settings.training_compute_type,
            image=settings.training_image,
            command=settings.training_command,
            log_retention_days=settings.log_retention_days,
            run_retention_days=settings.training_run_retention_days,
            codeartifact_domain=shared.require_output("codeartifact_domain"),
            codeartifact_domain_owner=shared.require_output("codeartifact_domain_owner"),
            codeartifact_domain_arn=shared.require_output("codeartifact_domain_arn"),
            codeartifact_repository=shared.require_output("codeartifact_repository"),
            codeartifact_repository_arn=shared.require_output("codeartifact_repository_arn"),
            permissions_boundary=boundary,
        ),
        opts,
    )
    events = EventSourcing(
        "events",
        EventSourcingArgs(
            protected=stack.protected,
            event_source=naming.event_source(settings.project),
            event_store_bucket=names.event_store_bucket,
            bus=names.event_bus,
            archive=names.event_archive,
            archive_retention_days=settings.event_archive_retention_days,
            rule=names.event_rule,
            processor_function=names.event_processor_function,
            processor_role=names.event_processor_role,
            processor_log_group=names.event_processor_log_group,
            dead_letter_queue=names.event_dlq,
            dead_letter_alarm=names.event_dlq_alarm,
            permissions_boundary=boundary,
            **lambda_sizing,
        ),
        opts,
    )
    canary = CanaryDeployment(
        "canary",
        CanaryDeploymentArgs(
            function_name=names.model_function,
            role_name=names.model_role,
            log_group_name=names.model_log_group,
            alias_name=names.model_alias,
            application=names.deploy_application,
            deployment_group=names.deploy_group,
            service_role=names.deploy_role,
            topic=names.deploy_topic,
            alias_alarm=names.alias_errors_alarm,
            candidate_alarm=names.version_errors_alarm,
            hooks_function=names.deploy_hooks_function,
            hooks_role=names.deploy_hooks_role,
            hooks_log_group=names.deploy_hooks_log_group,
            deployment_config=settings.canary_deployment_config,
            error_threshold=settings.alarm_error_threshold,
            permissions_boundary=boundary,
            dependencies_dir=model_dependencies,
            **lambda_sizing,
        ),
        opts,
    )
    api = ApiVersions(
        "api",
        ApiVersionsArgs(
            api_name=names.api,
            stages=names.api_stages,
            function_name=canary.function.name,
            function_arn=canary.function.arn,
            alias_name=names.model_alias,
            region=settings.region,
            access_log_group=names.api_access_log_group,
            log_retention_days=settings.log_retention_days,
            auth=settings.api_auth,
            throttle_rate_limit=settings.api_throttle_rate_limit,
            throttle_burst_limit=settings.api_throttle_burst_limit,
        ),
        opts,
    )

    pulumi.export("branch", stack.branch)
    pulumi.export("stack_kind", stack.kind)
    pulumi.export("region", settings.region)
    pulumi.export("artifact_bucket", testing.bucket.bucket)
    pulumi.export("training_project", testing.project.name)
    pulumi.export("sagemaker_role_arn", testing.sagemaker_role.arn)
    pulumi.export("model_function", canary.function.name)
    pulumi.export("model_alias", canary.alias.name)
    pulumi.export("model_candidate_version", canary.function.version)
    pulumi.export("codedeploy_application", canary.application.name)
    pulumi.export("codedeploy_group", canary.deployment_group.deployment_group_name)
    pulumi.export("deploy_topic_arn", canary.topic.arn)
    pulumi.export("deploy_hooks_function", canary.hooks.function.name)
    pulumi.export("alarms", [alarm.name for alarm in canary.alarms])
    pulumi.export("api_id", api.rest_api.id)
    pulumi.export(
        "api_stages", {version: stage.stage_name for version, stage in api.stages.items()}
    )
    pulumi.export("api_urls", api.urls)
    pulumi.export("api_url", api.urls[settings.api_versions[-1]])
    pulumi.export("api_auth", settings.api_auth)
    if api.api_key is not None:
        # The key's id, not its value: `aws apigateway get-api-key --include-value` reads it.
        pulumi.export("api_key_id", api.api_key.id)
    pulumi.export("event_bus", events.bus.name)
    pulumi.export("event_archive", events.archive.name)
    pulumi.export("event_source", naming.event_source(settings.project))
    pulumi.export("event_store_bucket", events.bucket.bucket)
    pulumi.export("event_dlq_url", events.dead_letter_queue.url)
    pulumi.export("event_dlq_alarm", events.dead_letter_alarm.name)


def build_shared(settings: config.Settings) -> None:
    if not settings.github_repository:
        raise config.ConfigError(
            f"config {settings.project}:githubRepository is empty: the shared stack's CI roles "
            "trust one repository; `nox -s bootstrap -- --repo OWNER/NAME` sets it"
        )
    stack = naming.shared_stack()
    opts = _provider(settings, stack)
    account_id = _account_id(opts)
    names = naming.shared_names(settings.project, account_id)
    ci = CiAccess(
        "ci",
        CiAccessArgs(
            repository=settings.github_repository,
            project=settings.project,
            account_id=account_id,
            region=settings.region,
            names=names,
            protected=protected_stacks(
                settings.project,
                account_id,
                [settings.default_branch, *settings.protected_branches],
                settings.api_versions,
            ),
            any_branch=any_branch_names(settings.project, account_id, settings.api_versions),
            create_oidc_provider=settings.create_oidc_provider,
        ),
        opts,
    )
    logging = ApiGatewayLogging(
        "apigateway-logging",
        ApiGatewayLoggingArgs(role_name=names.api_gateway_logs_role, account_id=account_id),
        opts,
    )
    dependencies = Dependencies(
        "dependencies",
        DependenciesArgs(
            domain=names.codeartifact_domain,
            store_repository=names.store_repository,
            team_repository=names.team_repository,
            reader_principals=tuple(role.arn for role in ci.roles.values()),
            publisher_principals=(ci.roles[DEPLOY].arn, ci.roles[DEPLOY_PROTECTED].arn),
        ),
        opts,
    )
    pulumi.export("region", settings.region)
    pulumi.export("oidc_provider_arn", ci.oidc_provider_arn)
    for duty, role in ci.roles.items():
        pulumi.export(output_name(duty), role.arn)
    pulumi.export("role_boundary_arn", ci.role_boundary.arn)
    pulumi.export("protected_role_boundary_arn", ci.protected_role_boundary.arn)
    pulumi.export("secrets_key_arn", ci.secrets_key.arn)
    pulumi.export("ephemeral_secrets_key_arn", ci.ephemeral_secrets_key.arn)
    pulumi.export("state_bucket", ci.state_bucket.bucket)
    pulumi.export("backend_url", ci.state_bucket.bucket.apply(lambda b: f"s3://{b}"))
    pulumi.export(
        "secrets_provider",
        ci.secrets_alias.name.apply(lambda a: f"awskms://{a}?region={settings.region}"),
    )
    pulumi.export(
        "ephemeral_secrets_provider",
        ci.ephemeral_secrets_alias.name.apply(lambda a: f"awskms://{a}?region={settings.region}"),
    )
    pulumi.export("api_gateway_logs_role_arn", logging.role.arn)
    pulumi.export("stack_kind", stack.kind)
    pulumi.export("codeartifact_domain", dependencies.domain.domain)
    pulumi.export("codeartifact_domain_owner", dependencies.domain.owner)
    pulumi.export("codeartifact_domain_arn", dependencies.domain.arn)
    pulumi.export("codeartifact_repository", dependencies.team.repository)
    pulumi.export("codeartifact_repository_arn", dependencies.team.arn)
    pulumi.export("codeartifact_store_repository", dependencies.store.repository)


if __name__ == "__main__":
    main()
