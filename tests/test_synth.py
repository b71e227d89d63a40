"""The whole program, evaluated offline for branch stacks and the shared stack."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra import naming
from scripts.synth import SynthError, Synthesis, synthesize
from scripts.synth import main as synth_cli

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = {
    "mlship:components:ModelTesting",
    "mlship:components:EventSourcing",
    "mlship:components:CanaryDeployment",
    "mlship:components:ApiVersions",
}
BUCKET = "aws:s3/bucket:Bucket"


def _branch(branch: str, **overrides: object) -> Synthesis:
    return synthesize(naming.slugify(branch), overrides={"branch": branch, **overrides})


@pytest.fixture(scope="module")
def feature(programs) -> Synthesis:
    return programs.branch("feature/Fancy_Model")


@pytest.fixture(scope="module")
def main(programs) -> Synthesis:
    return programs.branch("main")


@pytest.fixture(scope="module")
def shared(programs) -> Synthesis:
    return programs.stack(naming.SHARED_STACK, githubRepository="acme/models")


def test_branch_stack_has_every_capability(feature: Synthesis) -> None:
    types = {r.type for r in feature.resources}
    assert types >= COMPONENTS
    assert "mlship:components:Dependencies" not in types
    assert feature.kind == "ephemeral"
    assert feature.outputs["branch"] == "feature/Fancy_Model"


def test_shared_stack_has_dependencies_and_ci_access(shared: Synthesis) -> None:
    components = {r.type for r in shared.resources if not r.custom}
    assert components == {
        "mlship:components:Dependencies",
        "mlship:components:CiAccess",
        "mlship:components:SecureBucket",
    }
    assert shared.outputs["codeartifact_domain"] == "mlship"
    assert shared.outputs["backend_url"] == f"s3://{shared.outputs['state_bucket']}"
    assert shared.outputs["secrets_provider"] == (
        "awskms://alias/mlship--shared-pulumi-secrets?region=us-east-1"
    )


def test_codeartifact_publishing_is_the_deploy_role_s_alone(shared: Synthesis) -> None:
    team = shared.one(
        "aws:codeartifact/repositoryPermissionsPolicy:RepositoryPermissionsPolicy",
        "dependencies-team-policy",
    )
    statements = json.loads(team.inputs["policyDocument"])["Statement"]
    publish = [s for s in statements if "codeartifact:PublishPackageVersion" in s["Action"]]
    assert [s["Principal"]["AWS"] for s in publish] == [[shared.outputs["ci_deploy_role_arn"]]]


def test_shared_stack_needs_the_repository_its_roles_trust() -> None:
    with pytest.raises(SynthError, match="githubRepository is empty"):
        synthesize(naming.SHARED_STACK)


def test_every_output_the_scripts_need_is_exported(feature: Synthesis) -> None:
    assert set(feature.outputs) >= {
        "stack_kind",
        "artifact_bucket",
        "training_project",
        "model_function",
        "model_alias",
        "model_candidate_version",
        "codedeploy_application",
        "codedeploy_group",
        "api_id",
        "api_stages",
        "api_urls",
        "api_url",
        "event_bus",
        "event_archive",
        "event_store_bucket",
        "event_dlq_url",
        "alarms",
        "deploy_topic_arn",
        "sagemaker_role_arn",
        "event_source",
    }
    assert feature.outputs["api_stages"] == {"v1": "v1", "v2": "v2"}
    assert feature.outputs["api_url"].endswith("/v2")
    assert feature.outputs["model_alias"] == naming.MODEL_ALIAS


def test_physical_names_come_from_naming(feature: Synthesis) -> None:
    stack = naming.branch_stack("feature/Fancy_Model", {"main"})
    names = naming.branch_names("mlship", stack, "123456789012", ["v1", "v2"])
    physical = {r.physical_name for r in feature.resources if r.custom}
    expected = {v for v in names.as_dict().values() if isinstance(v, str)} - {names.notebook}
    assert expected <= physical
    # Nothing named outside naming: every physical name contains the stack's slug,
    # except the stage names and the alias, which are scoped by their API and function.
    scoped = {naming.MODEL_ALIAS, "v1", "v2"}
    for r in feature.resources:
        if r.custom and r.physical_name and r.type != "pulumi:providers:aws":
            assert stack.slug in r.physical_name or r.physical_name in scoped, r


def test_two_branches_share_no_physical_name(feature: Synthesis, main: Synthesis) -> None:
    def names(s: Synthesis) -> set[str]:
        return {r.physical_name for r in s.resources if r.custom} - {
            "",
            naming.MODEL_ALIAS,
            "v1",
            "v2",
        }

    assert names(feature)
    assert not names(feature) & names(main)


def test_every_resource_goes_through_the_tagging_provider(feature: Synthesis) -> None:
    provider = feature.one("pulumi:providers:aws")
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert tags == {
        "project": "mlship",
        "stack": feature.stack,
        "kind": "ephemeral",
        "branch": "feature/Fancy_Model",
    }
    for r in feature.resources:
        if r.custom and r.type != "pulumi:providers:aws":
            assert r.provider.startswith(provider.urn + "::"), r.urn


def test_git_sha_is_tagged_when_known() -> None:
    s = synthesize(
        naming.slugify("feature/x"),
        overrides={"branch": "feature/x"},
        environment={"GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567"},
    )
    provider = s.one("pulumi:providers:aws")
    assert json.loads(provider.inputs["defaultTags"])["tags"]["git-sha"].startswith("0123456")


def test_data_is_protected_on_protected_stacks_only(feature: Synthesis, main: Synthesis) -> None:
    for bucket in main.of_type(BUCKET):
        assert bucket.protect and bucket.retain_on_delete
        assert bucket.inputs["forceDestroy"] is False
    for bucket in feature.of_type(BUCKET):
        assert not bucket.protect and not bucket.retain_on_delete
        assert bucket.inputs["forceDestroy"] is True
    assert main.kind == "protected"


def test_every_bucket_is_encrypted_private_and_versioned(feature: Synthesis) -> None:
    buckets = {r.inputs["bucket"] for r in feature.of_type(BUCKET)}
    for settings in (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketVersioning:BucketVersioning",
    ):
        assert {r.inputs["bucket"] for r in feature.of_type(settings)} == buckets


def _statements(s: Synthesis) -> list[dict]:
    found = []
    for r in s.resources:
        for key in ("policy", "assumeRolePolicy", "policyDocument"):
            if r.custom and isinstance(r.inputs.get(key), str) and r.inputs[key].startswith("{"):
                found += json.loads(r.inputs[key])["Statement"]
    return found


@pytest.mark.parametrize("stack", ["feature", "shared"])
def test_no_policy_allows_everything_on_everything(stack: str, request) -> None:
    statements = _statements(request.getfixturevalue(stack))
    assert statements
    for statement in statements:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        assert "*" not in actions, statement
        assert statement.get("Principal") != "*", statement
        if resources == ["*"]:
            # Only actions AWS cannot scope to a resource may use "*".
            assert set(actions) <= {
                "cloudwatch:DescribeAlarms",
                "sts:GetServiceBearerToken",
                "sts:GetCallerIdentity",
                "codedeploy:GetDeploymentConfig",
                "lambda:GetAccountSettings",
            }


def test_alias_and_stages_leave_traffic_and_releases_to_the_scripts(feature: Synthesis) -> None:
    alias = feature.one("aws:lambda/alias:Alias")
    assert set(alias.ignore_changes) == {"functionVersion", "routingConfig"}
    for stage in feature.of_type("aws:apigateway/stage:Stage"):
        assert {"deployment", "variables"} <= set(stage.ignore_changes)


def test_config_changes_reach_the_resources(programs) -> None:
    s = programs.branch("feature/x", apiVersions=["v1", "v2", "v3"], notebookEnabled=True)
    assert len(s.of_type("aws:apigateway/stage:Stage")) == 3
    assert len(s.of_type("aws:sagemaker/notebookInstance:NotebookInstance")) == 1
    default = programs.branch("feature/x")
    assert default.of_type("aws:sagemaker/notebookInstance:NotebookInstance") == []


def test_a_bad_setting_fails_with_the_programs_own_message() -> None:
    with pytest.raises(SynthError, match=r"config lambdaMemoryMb='64' is not valid"):
        _branch("feature/x", lambdaMemoryMb="64")


def test_a_stack_whose_branch_names_another_stack_is_refused() -> None:
    with pytest.raises(SynthError, match=r"belongs to stack 'main', not 'other'"):
        synthesize("other", overrides={"branch": "main"})
    with pytest.raises(SynthError, match=r"branch is empty"):
        synthesize("other")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """synth's CLI in this process: the same main(), without paying a new interpreter each time."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = synth_cli(list(args))
    return subprocess.CompletedProcess(["synth", *args], code, out.getvalue(), err.getvalue())


def test_cli_writes_json_inventory_and_step_summary(tmp_path: Path) -> None:
    out = tmp_path / "inventory.json"
    summary = tmp_path / "summary.md"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.synth",
            "--branch",
            "feature/demo",
            "--format",
            "json",
            "--output",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    assert document["stack"] == naming.slugify("feature/demo")
    assert document["kind"] == "ephemeral"
    assert document["resource_count"] == len(document["resources"]) > 40
    functions = [r for r in document["resources"] if r["type"] == "aws:lambda/function:Function"]
    assert {f["settings"]["runtime"] for f in functions} == {"python3.12"}
    assert "| type | logical name | physical name | parent | settings |" in summary.read_text()


def test_cli_markdown_for_the_shared_stack() -> None:
    result = _cli("--stack", "shared", "--config", "githubRepository=acme/models")
    assert result.returncode == 0, result.stderr
    assert "## Synth: stack `shared` (protected)" in result.stdout
    assert "aws:codeartifact/domain:Domain" in result.stdout


def test_cli_reports_a_failing_program_and_exits_1(tmp_path: Path) -> None:
    result = _cli("--stack", "not-a-branch-stack")
    assert result.returncode == 1
    assert "the program failed for stack 'not-a-branch-stack'" in result.stderr
    assert "branch is empty" in result.stderr


def test_cli_refuses_an_unnameable_branch() -> None:
    result = _cli("--branch", "a..b")
    assert result.returncode == 2
    assert "'a..b' cannot be named" in result.stderr


def test_cli_reports_policy_violations_and_exits_3(tmp_path: Path) -> None:
    out = tmp_path / "inventory.json"
    args = ["--branch", "feature/x", "--config", "notebookEnabled=true", "--format", "json"]
    result = _cli(*args, "--output", str(out))
    assert result.returncode == 3, result.stderr
    (violation,) = json.loads(out.read_text())["policy_violations"]
    assert violation["rule"] == "no-ephemeral-notebook"
    assert "policy violation [no-ephemeral-notebook]" in result.stderr
    allowed = _cli(*args, "--allow-notebook", "--output", str(out))
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(out.read_text())["policy_violations"] == []


def test_cli_markdown_says_the_policy_is_clean() -> None:
    result = _cli("--branch", "feature/x")
    assert result.returncode == 0, result.stderr
    assert "No violations of the 6 policy rules." in result.stdout


def test_every_branch_role_carries_the_shared_boundary(feature: Synthesis) -> None:
    roles = feature.of_type("aws:iam/role:Role")
    assert roles
    boundary = "arn:aws:iam::123456789012:policy/mlship--shared-role-boundary"
    assert {r.inputs.get("permissionsBoundary") for r in roles} == {boundary}


def test_the_boundary_allows_everything_the_branch_roles_are_granted(
    feature: Synthesis, shared: Synthesis
) -> None:
    def allowed(policy_json: str) -> set[str]:
        statements = json.loads(policy_json)["Statement"]
        return {a for s in statements if s["Effect"] == "Allow" for a in s["Action"]}

    boundary = allowed(shared.one("aws:iam/policy:Policy").inputs["policy"])
    granted: set[str] = set()
    for policy in feature.of_type("aws:iam/rolePolicy:RolePolicy"):
        granted |= allowed(policy.inputs["policy"])
    assert granted <= boundary, granted - boundary
