"""The components as the program assembles them: every resource inside a component, under the
name infra.naming gives it.

Inside a component, a resource inherits the stack's provider and its default tags; under its
naming name, it is what the CI roles (scoped to the stack's names) may manage, and what the
verbs find. A resource that loses either still synthesizes, so each component's own tests
would not notice; these look at whole stacks with every optional part switched on.
"""

from __future__ import annotations

import pytest

from infra import config, naming
from scripts.synth import MOCK_ACCOUNT_ID, Synthesis
from tests.project import PROJECT

FEATURE = "feature/x"
REPOSITORY = "acme/models"
# Types whose physical name the program sets (every other type is named by its parent's).
NAMED_TYPES = {
    "aws:apigateway/apiKey:ApiKey",
    "aws:apigateway/restApi:RestApi",
    "aws:apigateway/stage:Stage",
    "aws:apigateway/usagePlan:UsagePlan",
    "aws:cloudwatch/eventArchive:EventArchive",
    "aws:cloudwatch/eventBus:EventBus",
    "aws:cloudwatch/eventRule:EventRule",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:codeartifact/domain:Domain",
    "aws:codeartifact/repository:Repository",
    "aws:codebuild/project:Project",
    "aws:codedeploy/application:Application",
    "aws:codedeploy/deploymentGroup:DeploymentGroup",
    "aws:iam/policy:Policy",
    "aws:iam/role:Role",
    "aws:kms/alias:Alias",
    "aws:lambda/alias:Alias",
    "aws:lambda/function:Function",
    "aws:s3/bucket:Bucket",
    "aws:sagemaker/notebookInstance:NotebookInstance",
    "aws:sns/topic:Topic",
    "aws:sqs/queue:Queue",
}


def _flat(names: dict[str, object]) -> set[str]:
    flat: set[str] = set()
    for value in names.values():
        flat |= {str(v) for v in value.values()} if isinstance(value, dict) else {str(value)}
    return flat


@pytest.fixture(scope="module")
def branch(programs) -> Synthesis:
    # Every optional resource: the notebook and the API key's usage plan.
    return programs.branch(FEATURE, notebookEnabled=True, apiAuth="api-key")


@pytest.fixture(scope="module")
def shared(programs) -> Synthesis:
    return programs.stack(naming.SHARED_STACK, githubRepository=REPOSITORY)


def _branch_names() -> set[str]:
    settings = config.settings_for_stack(naming.slugify(FEATURE))
    stack = settings.branch_stack(FEATURE)
    names = naming.branch_names(PROJECT, stack, MOCK_ACCOUNT_ID, settings.api_versions)
    return _flat(names.as_dict())


def _shared_names() -> set[str]:
    return _flat(naming.shared_names(PROJECT, MOCK_ACCOUNT_ID).as_dict())


@pytest.mark.parametrize("stack", ["branch", "shared"])
def test_every_resource_lives_in_a_component(stack: str, request) -> None:
    synthesis = request.getfixturevalue(stack)
    strays = [
        r.name
        for r in synthesis.resources
        if r.custom and not r.type.startswith("pulumi:providers:") and not r.parent_name
    ]
    assert strays == []


def test_every_branch_name_names_a_resource_and_every_named_resource_has_one(branch) -> None:
    names = _branch_names()
    named = [r for r in branch.resources if r.type in NAMED_TYPES]
    assert {r.name: r.physical_name for r in named if r.physical_name not in names} == {}
    assert names - {r.physical_name for r in named} == set()


def test_every_shared_name_names_a_resource_and_every_named_resource_has_one(shared) -> None:
    names = _shared_names()
    named = [r for r in shared.resources if r.type in NAMED_TYPES]
    assert {r.name: r.physical_name for r in named if r.physical_name not in names} == {}
    assert names - {r.physical_name for r in named} == set()
