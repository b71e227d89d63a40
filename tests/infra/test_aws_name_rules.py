import functools

import botocore.model
import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import aws_name_rules as rules

KINDS = {
    "s3_bucket",
    "lambda_function",
    "lambda_alias",
    "iam_role",
    "iam_role_policy",
    "iam_policy",
    "codedeploy_application",
    "codedeploy_deployment_group",
    "apigateway_rest_api",
    "apigateway_stage",
    "eventbridge_bus",
    "eventbridge_archive",
    "eventbridge_rule",
    "eventbridge_target_id",
    "sqs_queue",
    "sns_topic",
    "cloudwatch_alarm",
    "cloudwatch_log_group",
    "codebuild_project",
    "sagemaker_notebook",
    "codeartifact_domain",
    "codeartifact_repository",
    "kms_alias",
    "pulumi_stack",
}

# Written out again, not imported from the module, so a wrong member choice
# there shows up as a disagreement here.
BOTOCORE_MEMBERS = {
    "s3_bucket": ("s3", "CreateBucket", ("Bucket",)),
    "lambda_function": ("lambda", "CreateFunction", ("FunctionName",)),
    "lambda_alias": ("lambda", "CreateAlias", ("Name",)),
    "iam_role": ("iam", "CreateRole", ("RoleName",)),
    "iam_role_policy": ("iam", "PutRolePolicy", ("PolicyName",)),
    "iam_policy": ("iam", "CreatePolicy", ("PolicyName",)),
    "codedeploy_application": ("codedeploy", "CreateApplication", ("applicationName",)),
    "codedeploy_deployment_group": (
        "codedeploy",
        "CreateDeploymentGroup",
        ("deploymentGroupName",),
    ),
    "apigateway_rest_api": ("apigateway", "CreateRestApi", ("name",)),
    "apigateway_stage": ("apigateway", "CreateStage", ("stageName",)),
    "eventbridge_bus": ("events", "CreateEventBus", ("Name",)),
    "eventbridge_archive": ("events", "CreateArchive", ("ArchiveName",)),
    "eventbridge_rule": ("events", "PutRule", ("Name",)),
    "eventbridge_target_id": ("events", "PutTargets", ("Targets", "Id")),
    "sqs_queue": ("sqs", "CreateQueue", ("QueueName",)),
    "sns_topic": ("sns", "CreateTopic", ("Name",)),
    "cloudwatch_alarm": ("cloudwatch", "PutMetricAlarm", ("AlarmName",)),
    "cloudwatch_log_group": ("logs", "CreateLogGroup", ("logGroupName",)),
    "codebuild_project": ("codebuild", "CreateProject", ("name",)),
    "sagemaker_notebook": ("sagemaker", "CreateNotebookInstance", ("NotebookInstanceName",)),
    "codeartifact_domain": ("codeartifact", "CreateDomain", ("domain",)),
    "codeartifact_repository": ("codeartifact", "CreateRepository", ("repository",)),
    "kms_alias": ("kms", "CreateAlias", ("AliasName",)),
}

# Kinds whose model carries constraints today; the rest fall back to documentation.
BOTOCORE_BACKED = set(BOTOCORE_MEMBERS) - {
    "s3_bucket",
    "apigateway_rest_api",
    "apigateway_stage",
    "sqs_queue",
    "sns_topic",
}

# kind -> (longest legal length actually enforced, a realistic legal name, illegal names).
# The lengths are stated here rather than read from RULES so the oracle is checked, not echoed.
CASES = {
    "s3_bucket": (
        63,
        "myproj-dev-artifacts-123456789012",
        [
            "MyBucket",
            "my_bucket",
            "192.168.5.4",
            "999.1.1.1",
            "xn--bucket",
            "sthree-bucket",
            "amzn-s3-demo-bucket",
            "bucket-s3alias",
            "bucket--ol-s3",
            "bucket.mrap",
            "bucket--x-s3",
            "bucket--table-s3",
            "my..bucket",
            "-bucket",
            "bucket-",
            "ab",
        ],
    ),
    "lambda_function": (
        64,
        "myproj-dev-event_processor",
        [
            "my function",
            "fn.v1",
            # Legal for the model (it admits ARNs) but not as a name we create.
            "arn:aws:lambda:us-east-1:123456789012:function:fn",
        ],
    ),
    "lambda_alias": (128, "live", ["123", "live.1", "live alias"]),
    "iam_role": (64, "myproj-dev-fn-role+=,.@_", ["role name", "role/x", "rôle", "role:x"]),
    "iam_role_policy": (128, "myproj-dev-inline", ["pol icy", "pol/icy", "pölicy"]),
    "iam_policy": (128, "myproj-dev-policy", ["pol icy", "pol*icy", "pölicy"]),
    "codedeploy_application": (100, "myproj-dev-app", ["app name", "app/x", "app:x"]),
    "codedeploy_deployment_group": (100, "myproj-dev-dg", ["dg name", "dg/x"]),
    # Free-form: no character is illegal, so only length can fail.
    "apigateway_rest_api": (1024, "myproj dev API (v1)", []),
    "apigateway_stage": (128, "v1", ["dev.1", "dev stage", "dev/1"]),
    "eventbridge_bus": (256, "myproj-dev-bus", ["my/bus", "default", "bus name", "bus:1"]),
    "eventbridge_archive": (48, "myproj-dev-archive", ["arch/1", "arch:1", "arch 1"]),
    "eventbridge_rule": (64, "myproj-dev-rule", ["rule/1", "rule 1", "rule:1"]),
    "eventbridge_target_id": (64, "processor", ["t/1", "t 1", "t:1"]),
    "sqs_queue": (80, "myproj-dev-dlq", ["q.x", "q name", ".fifo", "q.fifo.x", "q:1"]),
    "sns_topic": (256, "myproj-dev-alerts", ["t.x", "t name", ".fifo", "t:1"]),
    "cloudwatch_alarm": (
        255,
        "myproj dev: errors > 0 (fn)",
        ["alarm\n", "alarm\x07", "alarm\x7f", "alarm\ud800"],
    ),
    "cloudwatch_log_group": (
        512,
        "/aws/lambda/myproj-dev-fn",
        ["aws/lambda/fn", "group name", "grp:1", "grp*"],
    ),
    "codebuild_project": (150, "myproj-dev-build", ["a", "-build", "build.1", "build name"]),
    "sagemaker_notebook": (63, "myproj-dev-nb", ["-nb", "nb-", "nb_1", "nb.1"]),
    "codeartifact_domain": (50, "myproj-dev", ["Domain", "1domain", "domain-", "a", "dom_ain"]),
    "codeartifact_repository": (100, "myproj.dev_repo-1", ["-repo", "repo name", "a", "repo/x"]),
    "kms_alias": (256, "alias/myproj-shared-secrets", ["myproj-key", "alias/aws/x", "alias/a b"]),
    "pulumi_stack": (100, "dev.feature_x-1", ["org/stack", "stack name", "stack:1"]),
}


@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@functools.cache
def _service_model(service: str) -> botocore.model.ServiceModel:
    # Loaded once per service for the module, only read: a new session per test re-read
    # every model from disk, most of this module's time.
    return _session().get_service_model(service)


def _botocore_metadata(ref):
    service, operation, path = ref
    shape = _service_model(service).operation_model(operation).input_shape
    for step in path:
        if shape.type_name == "list":
            shape = shape.member
        shape = shape.members[step]
    return shape.metadata


def test_every_kind_is_present():
    assert set(rules.RULES) == KINDS
    assert set(CASES) == KINDS
    for kind, rule in rules.RULES.items():
        assert rule.kind == kind
        assert rule.source


@pytest.mark.parametrize("kind", sorted(BOTOCORE_MEMBERS))
def test_rules_agree_with_botocore(kind):
    meta = _botocore_metadata(BOTOCORE_MEMBERS[kind])
    rule = rules.RULES[kind]
    service, operation, _ = BOTOCORE_MEMBERS[kind]
    assert f"botocore {service} {operation}." in rule.source
    if kind in BOTOCORE_BACKED:
        assert {"min", "max"} <= set(meta), f"botocore lost constraints for {kind}"
        assert (rule.min_len, rule.max_len) == (meta["min"], meta["max"])
        if "pattern" in meta:
            assert rule.pattern is not None and rule.pattern.pattern == meta["pattern"]
        else:
            assert rule.pattern is None
    else:
        assert not {"min", "max", "pattern"} & set(meta), f"botocore now constrains {kind}"
        assert "no constraints" in rule.source


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_good_names_pass(kind):
    longest, good, _ = CASES[kind]
    assert rules.violations(kind, good) == []
    # Aliases must carry their prefix; the longest legal one still has it.
    prefix = "alias/" if kind == "kms_alias" else ""
    assert rules.violations(kind, prefix + "a" * (longest - len(prefix))) == []


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_too_long_by_one_fails(kind):
    longest, _, _ = CASES[kind]
    found = rules.violations(kind, "a" * (longest + 1))
    assert found and any("exceeds the maximum" in v for v in found)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_empty_fails(kind):
    assert rules.violations(kind, "") != []


@pytest.mark.parametrize(
    ("kind", "bad"), [(kind, bad) for kind in sorted(CASES) for bad in CASES[kind][2]]
)
def test_bad_names_fail(kind, bad):
    assert rules.violations(kind, bad) != []


def test_reasons_cite_their_source():
    (reason,) = rules.violations("lambda_function", "f" * 65)
    assert reason.startswith("Lambda: function name 1-64")
    (reason,) = rules.violations("iam_role", "r" * 65)
    assert reason.startswith("botocore iam CreateRole.RoleName")
    (reason,) = rules.violations("s3_bucket", "xn--bucket")
    assert reason.startswith("S3 user guide") and "'xn--'" in reason
    (reason,) = rules.violations("eventbridge_bus", "my/bus")
    assert reason.startswith("EventBridge CreateEventBus docs")


def test_model_looseness_is_covered_by_documented_rules():
    # Each of these passes botocore's own constraints; only the documented layer rejects it.
    cases = {
        "lambda_function": "f" * 65,
        "eventbridge_bus": "default",
        "cloudwatch_log_group": "aws/x",
        "cloudwatch_alarm": "a\tb",
    }
    for kind, name in cases.items():
        rule = rules.RULES[kind]
        assert rule.min_len <= len(name) <= rule.max_len
        assert rule.pattern is None or rule.pattern.fullmatch(name)
        assert rule.extra is not None and rule.extra(name), kind


def test_unknown_kind_is_an_error():
    with pytest.raises(KeyError, match="unknown name kind"):
        rules.violations("dynamodb_table", "t")


def test_java_word_class_stays_ascii():
    # Python's \w is Unicode; Java's (and AWS's) is not.
    assert rules.compile_java_pattern(r"[\w+=,.@-]+", "t").fullmatch("rôle") is None
    assert rules.compile_java_pattern(r"\d{12}", "t").fullmatch("\u0660" * 12) is None


@pytest.mark.parametrize(
    "java",
    [r"[\p{L}\p{N}]+", r"[^\P{Cc}]", r"[\x{20}-\x{7e}]+", r"a\z", r"[a-z&&[^b]]", r"[[a]b]"],
)
def test_untranslatable_java_patterns_fail_loudly(java):
    with pytest.raises(ValueError, match=r"^example_member: pattern"):
        rules.compile_java_pattern(java, "example_member")


# No example database: it would write into the shared .hypothesis directory.
@settings(database=None)
@given(st.sampled_from(sorted(KINDS)), st.text(max_size=300))
def test_violations_is_total(kind, name):
    found = rules.violations(kind, name)
    assert isinstance(found, list) and all(isinstance(v, str) for v in found)
