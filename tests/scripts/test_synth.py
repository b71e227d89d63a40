"""The whole program, evaluated offline for branch stacks and the shared stack."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pulumi.runtime import rpc

from infra import config, naming
from infra.components import type_token
from scripts import synth
from scripts.synth import MOCK_ACCOUNT_ID as ACCOUNT
from scripts.synth import SynthError, Synthesis, render_json, synthesize
from scripts.synth import main as synth_cli
from tests.iam.evaluator import ALLOW, Request, evaluate
from tests.project import PROJECT, REGION, ROOT

COMPONENTS = {
    type_token("ModelTesting"),
    type_token("EventSourcing"),
    type_token("CanaryDeployment"),
    type_token("ApiVersions"),
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
    assert type_token("Dependencies") not in types
    assert feature.kind == "ephemeral"
    assert feature.outputs["branch"] == "feature/Fancy_Model"


def test_shared_stack_has_dependencies_and_ci_access(shared: Synthesis) -> None:
    components = {r.type for r in shared.resources if not r.custom}
    assert components == {
        type_token("Dependencies"),
        type_token("CiAccess"),
        type_token("SecureBucket"),
        type_token("ApiGatewayLogging"),
    }
    assert shared.outputs["codeartifact_domain"] == PROJECT
    assert shared.outputs["backend_url"] == f"s3://{shared.outputs['state_bucket']}"
    assert shared.outputs["secrets_provider"] == (
        f"awskms://{naming.shared_names(PROJECT, ACCOUNT).secrets_key_alias}?region={REGION}"
    )


def test_codeartifact_publishing_is_the_deploy_role_s_alone(shared: Synthesis) -> None:
    team = shared.one(
        "aws:codeartifact/repositoryPermissionsPolicy:RepositoryPermissionsPolicy",
        "dependencies-team-policy",
    )
    statements = json.loads(team.inputs["policyDocument"])["Statement"]
    publish = [s for s in statements if "codeartifact:PublishPackageVersion" in s["Action"]]
    assert [s["Principal"]["AWS"] for s in publish] == [
        [shared.outputs["ci_deploy_role_arn"], shared.outputs["ci_deploy_protected_role_arn"]]
    ]


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
    names = naming.branch_names(PROJECT, stack, ACCOUNT, ["v1", "v2"])
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
        "project": PROJECT,
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


# Actions the service authorization reference gives no resource type: only
# these may be allowed on "*" (in a key policy "*" means the key itself).
NO_RESOURCE_TYPE = {
    "sts:GetServiceBearerToken",
    "codedeploy:StopDeployment",
    "logs:DescribeLogGroups",
}


@pytest.mark.parametrize("stack", ["feature", "shared"])
def test_no_policy_allows_everything_on_everything(stack: str, request) -> None:
    synthesis = request.getfixturevalue(stack)
    statements = _statements(synthesis)
    assert statements
    key_policies = [
        s
        for r in synthesis.of_type("aws:kms/keyPolicy:KeyPolicy")
        for s in json.loads(r.inputs["policy"])["Statement"]
    ]
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue  # a Deny may be as wide as it likes
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        assert "*" not in actions, statement
        assert "NotAction" not in statement and "NotResource" not in statement, statement
        assert statement.get("Principal") != "*", statement
        if resources == ["*"] and statement not in key_policies:
            assert set(actions) <= NO_RESOURCE_TYPE, statement


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


def test_every_function_and_runner_logs_where_config_s_retention_holds(programs) -> None:
    _, defaults = config.read_project(ROOT)
    days = next(d for d in config.LOG_RETENTION_DAYS if d != defaults["logRetentionDays"])
    s = programs.branch("feature/x", logRetentionDays=days)
    retention = {
        g.inputs["name"]: g.inputs.get("retentionInDays")
        for g in s.of_type("aws:cloudwatch/logGroup:LogGroup")
    }
    # Where each writes: a group Lambda or CodeBuild would otherwise create, keeping logs
    # forever, outside the stack.
    writes_to = [
        f.inputs["loggingConfig"]["logGroup"] for f in s.of_type("aws:lambda/function:Function")
    ] + [
        p.inputs["logsConfig"]["cloudwatchLogs"]["groupName"]
        for p in s.of_type("aws:codebuild/project:Project")
    ]
    assert writes_to
    assert {group: retention.get(group) for group in writes_to} == dict.fromkeys(writes_to, days)
    # The API's access logs too: every group the stack creates keeps logs that long.
    assert set(retention.values()) == {days}


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
        try:
            code = synth_cli(list(args))
        except SystemExit as exit_:  # argparse refusing a flag
            code = int(exit_.code or 0)
    return subprocess.CompletedProcess(["synth", *args], code, out.getvalue(), err.getvalue())


@pytest.mark.process
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


@pytest.mark.usefixtures("shared_evaluations")
def test_cli_markdown_for_the_shared_stack() -> None:
    result = _cli(
        "--stack", "shared", "--config", "githubRepository=acme/models", "--format", "markdown"
    )
    assert result.returncode == 0, result.stderr
    assert "## Synth: stack `shared` (protected)" in result.stdout
    assert "aws:codeartifact/domain:Domain" in result.stdout


@pytest.mark.usefixtures("shared_evaluations")
def test_cli_names_only_the_shared_stack_directly() -> None:
    result = _cli("--stack", "not-a-branch-stack")
    assert result.returncode == 2
    assert "invalid choice: 'not-a-branch-stack' (choose from 'shared')" in result.stderr


def test_the_shared_stack_without_a_repository_says_which_flag_gives_it() -> None:
    result = _cli("--stack", "shared", "--config", "githubRepository=")
    assert result.returncode == 2
    assert "pass --config githubRepository=OWNER/NAME" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--branch", "HEAD"], "branch 'HEAD' cannot be named"),
        (["--branch", "main", "--config", "apiVersion=[]"], "did you mean apiVersions?"),
        (["--branch", "main", "--config", "nosuchkey=1"], "'nosuchkey' is not a setting of"),
        (["--branch", "main", "--config", "apiVersions=banana"], "apiVersions='banana'"),
    ],
)
def test_bad_input_is_refused_before_the_program_runs(args: list[str], named: str) -> None:
    result = _cli(*args)
    assert result.returncode == 2
    assert named in result.stderr
    assert "evaluating" not in result.stderr
    assert result.stdout == ""


def test_cli_refuses_an_unnameable_branch() -> None:
    result = _cli("--branch", "a..b")
    assert result.returncode == 2
    assert "'a..b' cannot be named" in result.stderr


@pytest.mark.usefixtures("shared_evaluations")
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


@pytest.mark.usefixtures("shared_evaluations")
def test_cli_markdown_says_the_policy_is_clean() -> None:
    result = _cli("--branch", "feature/x", "--format", "markdown")
    assert result.returncode == 0, result.stderr
    assert "No violations of the 6 policy rules." in result.stdout
    assert f"account `{ACCOUNT}` in names is a placeholder" in result.stdout


@pytest.mark.usefixtures("shared_evaluations")
def test_the_default_tree_fits_a_terminal_and_counts_agree(tmp_path: Path) -> None:
    as_json = tmp_path / "inventory.json"
    assert (
        _cli("--branch", "feature/x", "--format", "json", "--output", str(as_json)).returncode == 0
    )
    document = json.loads(as_json.read_text())
    aws_resources = [
        r for r in document["resources"] if not r["component"] and ":providers:" not in r["type"]
    ]
    result = _cli("--branch", "feature/x")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 100 for line in lines)
    assert len(lines) < 60
    # One count of AWS resources everywhere: the tree, the JSON, and the closing line.
    said = f"{len(aws_resources)} AWS resources in "
    assert said in lines[1]
    assert document["counts"]["resources"] == len(aws_resources)
    assert said in result.stderr.splitlines()[-1]
    top = [
        int(line.split(": ")[1].split()[0])
        for line in lines
        if line[:1].isalpha()
        and "(" in line
        and "AWS resources" in line
        and not line.startswith("stack")
    ]
    assert sum(top) == len(aws_resources)
    assert f"account {ACCOUNT} in names is a placeholder" in result.stdout
    assert "policy: no violations" in result.stdout


@pytest.mark.usefixtures("shared_evaluations")
def test_the_tree_with_the_cost_still_fits_a_terminal() -> None:
    result = _cli("--branch", "feature/x", "--cost")
    assert result.returncode == 0, result.stderr
    assert all(len(line) <= 100 for line in result.stdout.splitlines())
    assert "per million model requests" in result.stdout


@pytest.mark.usefixtures("shared_evaluations")
def test_the_tree_names_a_policy_violation() -> None:
    result = _cli("--branch", "feature/x", "--config", "notebookEnabled=true")
    assert result.returncode == 3
    assert "policy: 1 violation(s), 1 mandatory" in result.stdout
    assert "[no-ephemeral-notebook]" in result.stdout
    assert "--allow-notebook" in result.stdout


@pytest.mark.parametrize(
    ("branch", "output"),
    [("feature/x", "role_boundary_arn"), ("main", "protected_role_boundary_arn")],
)
def test_every_branch_role_carries_its_kind_s_boundary(
    branch: str, output: str, shared: Synthesis, programs
) -> None:
    roles = programs.branch(branch).of_type("aws:iam/role:Role")
    assert roles
    assert {r.inputs.get("permissionsBoundary") for r in roles} == {shared.outputs[output]}


@pytest.mark.parametrize(
    ("branch", "output"),
    [("feature/x", "role_boundary_arn"), ("main", "protected_role_boundary_arn")],
)
def test_the_boundary_lets_each_branch_role_do_all_it_is_granted(
    branch: str, output: str, shared: Synthesis, programs
) -> None:
    # By effect: every (action, resource) a role's own policy allows, the boundary
    # the role carries allows too; otherwise the role would fail at run time.
    (boundary,) = [
        r.inputs["policy"]
        for r in shared.of_type("aws:iam/policy:Policy")
        if shared.outputs[output].endswith(f":policy/{r.inputs['name']}")
    ]
    checked = 0
    for role_policy in programs.branch(branch).of_type("aws:iam/rolePolicy:RolePolicy"):
        document = json.loads(role_policy.inputs["policy"])
        for statement in document["Statement"]:
            # A request that meets the statement's own conditions (StringEquals).
            context = {
                key: values[0] if isinstance(values, list) else values
                for key, values in statement.get("Condition", {}).get("StringEquals", {}).items()
            }
            for action in statement["Action"]:
                for resource in statement["Resource"]:
                    request = Request(action, resource, context)
                    assert evaluate([document], request, boundary=boundary) == ALLOW, (
                        role_policy.name,
                        action,
                        resource,
                    )
                    checked += 1
    assert checked


def test_json_carries_every_resource_s_inputs_with_secrets_masked(shared: Synthesis) -> None:
    document = json.loads(render_json(shared))
    rows = {(r["type"], r["name"]): r for r in document["resources"]}
    policy = rows[("aws:iam/rolePolicy:RolePolicy", "ci-deploy-policy")]["inputs"]["policy"]
    assert json.loads(policy)["Statement"]  # the whole document, not a summary
    role = rows[("aws:iam/role:Role", "ci-deploy")]["inputs"]
    assert json.loads(role["assumeRolePolicy"])["Statement"][0]["Action"] == (
        "sts:AssumeRoleWithWebIdentity"
    )


def test_secret_inputs_are_masked_wherever_they_sit() -> None:
    secret = {rpc._special_sig_key: rpc._special_secret_sig, "value": "hunter2"}
    masked = synth.masked({"a": secret, "b": [1, {"c": secret}], "d": "plain"})
    assert masked == {"a": "[secret]", "b": [1, {"c": "[secret]"}], "d": "plain"}
    assert "hunter2" not in json.dumps(masked)
