"""An oracle of AWS resource-name rules, independent of infra/naming.py.

Constraints are read from the service models botocore ships, on first use, so
the oracle moves with botocore rather than with whoever wrote the naming code.
Where a model is silent, or looser than what the service documents (Lambda's
FunctionName admits whole ARNs, SQS and SNS carry no constraint at all), the
documented rule is layered on top and cited in `source`.
"""

import functools
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import botocore.session


@dataclass(frozen=True)
class NameRule:
    kind: str
    source: str
    min_len: int
    max_len: int
    pattern: re.Pattern | None
    extra: Callable[[str], list[str]] | None


# Java-only regex syntax seen elsewhere in botocore's models. Python either
# rejects these or, worse, parses them with another meaning (`&&` and `[[` are
# literals in Python classes), so a pattern containing one must not be used.
_JAVA_ONLY = {
    r"\p{": "Unicode property class",
    r"\P{": "negated Unicode property class",
    r"\x{": "braced code point",
    r"\z": "absolute end anchor",
    r"\Q": "quoted literal",
    r"\h": "horizontal whitespace class",
    r"\R": "linebreak matcher",
    r"\X": "grapheme cluster",
    r"\G": "end-of-previous-match anchor",
    "&&": "class intersection",
}


def compile_java_pattern(pattern: str, where: str) -> re.Pattern:
    """Compile a botocore (Java-dialect) pattern for use with `fullmatch`.

    The only construct our shapes need translated is `\\w`/`\\d`/`\\s`: ASCII in
    Java, Unicode in Python, where `[\\w]` would accept "rôle" as an IAM name.
    re.ASCII restores Java's meaning. Anything else Java-specific raises, so a
    new botocore pattern can never be half-understood and silently loosened.
    """
    for token, what in _JAVA_ONLY.items():
        if token in pattern:
            raise ValueError(f"{where}: pattern {pattern!r} uses Java {what} {token!r}")
    try:
        with warnings.catch_warnings():
            # Python only warns (FutureWarning) on a class like `[[a]b]`, which it
            # reads as literals and Java as a nested union: refuse, don't guess.
            warnings.simplefilter("error")
            return re.compile(pattern, re.ASCII)
    except (re.error, FutureWarning) as exc:
        raise ValueError(
            f"{where}: pattern {pattern!r} cannot be used by Python re: {exc}"
        ) from exc


@dataclass(frozen=True)
class _Documented:
    """A rule taken from service documentation rather than the model."""

    source: str
    # None where the documentation adds checks but no bounds beyond the model's.
    min_len: int | None
    max_len: int | None
    pattern: str | None
    checks: tuple[Callable[[str], list[str]], ...] = ()


def _shape_checks(
    source: str, min_len: int | None, max_len: int | None, pattern: re.Pattern | None, name: str
) -> list[str]:
    out = []
    if min_len is not None and len(name) < min_len:
        out.append(f"{source}: length {len(name)} is below the minimum {min_len}")
    if max_len is not None and len(name) > max_len:
        out.append(f"{source}: length {len(name)} exceeds the maximum {max_len}")
    if pattern is not None and pattern.fullmatch(name) is None:
        out.append(f"{source}: {name!r} does not match /{pattern.pattern}/")
    return out


def _documented_extra(doc: _Documented, with_shape: bool) -> Callable[[str], list[str]] | None:
    pattern = re.compile(doc.pattern, re.ASCII) if doc.pattern is not None else None
    if not with_shape and not doc.checks:
        return None

    def extra(name: str) -> list[str]:
        out = []
        if with_shape:
            out += _shape_checks(doc.source, doc.min_len, doc.max_len, pattern, name)
        for check in doc.checks:
            out += [f"{doc.source}: {msg}" for msg in check(name)]
        return out

    return extra


# --- documented checks the models cannot express -------------------------------------

_S3_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_S3_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def _s3_checks(name: str) -> list[str]:
    out = []
    if ".." in name:
        out.append("must not contain two adjacent periods")
    # Shape, not validity: "999.1.1.1" is refused as well, so no address parsing.
    if re.fullmatch(r"[0-9]+(\.[0-9]+){3}", name):
        out.append("must not be formatted as an IP address")
    out += [f"must not start with {p!r}" for p in _S3_PREFIXES if name.startswith(p)]
    out += [f"must not end with {s!r}" for s in _S3_SUFFIXES if name.endswith(s)]
    return out


def _custom_bus_checks(name: str) -> list[str]:
    out = []
    # The model's pattern admits "/" because partner buses (aws.partner/...) use it.
    if "/" in name:
        out.append("custom event bus names can't contain '/'")
    if name == "default":
        out.append("'default' is reserved for the account's default event bus")
    return out


def _alarm_checks(name: str) -> list[str]:
    out = []
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        out.append("must not contain ASCII control characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        out.append("must contain only UTF-8 characters")
    return out


def _kms_alias_checks(name: str) -> list[str]:
    problems = []
    if not name.startswith("alias/"):
        problems.append("must start with 'alias/'")
    if name.startswith("alias/aws/"):
        problems.append("'alias/aws/' is reserved for AWS managed keys")
    return problems


def _log_group_checks(name: str) -> list[str]:
    return ["log group names can't start with 'aws/'"] if name.startswith("aws/") else []


# --- the table ---------------------------------------------------------------------------

# (service, operation, member path); a path step into a list shape descends into
# its member first, so ("Targets", "Id") reaches Target.Id inside PutTargets.
_BotocoreRef = tuple[str, str, tuple[str, ...]]

_SPECS: dict[str, tuple[_BotocoreRef | None, _Documented | None]] = {
    "s3_bucket": (
        ("s3", "CreateBucket", ("Bucket",)),
        _Documented(
            "S3 user guide: bucket naming rules (general purpose buckets)",
            3,
            63,
            r"[a-z0-9][a-z0-9.-]*[a-z0-9]",
            (_s3_checks,),
        ),
    ),
    "lambda_function": (
        ("lambda", "CreateFunction", ("FunctionName",)),
        # The model's 140 is for a full ARN; its own docs cap a bare name at 64.
        _Documented("Lambda: function name 1-64 [a-zA-Z0-9-_]", 1, 64, r"[a-zA-Z0-9_-]+"),
    ),
    "lambda_alias": (("lambda", "CreateAlias", ("Name",)), None),
    "iam_role": (("iam", "CreateRole", ("RoleName",)), None),
    "iam_role_policy": (("iam", "PutRolePolicy", ("PolicyName",)), None),
    "iam_policy": (("iam", "CreatePolicy", ("PolicyName",)), None),
    "codedeploy_application": (("codedeploy", "CreateApplication", ("applicationName",)), None),
    "codedeploy_deployment_group": (
        ("codedeploy", "CreateDeploymentGroup", ("deploymentGroupName",)),
        None,
    ),
    "apigateway_rest_api": (
        ("apigateway", "CreateRestApi", ("name",)),
        # Neither botocore nor the CloudFormation schema nor the API Gateway
        # quotas page states a limit; 1024 is a cap chosen for this project.
        _Documented("API Gateway REST API name: free-form, max 1024 (project cap)", 1, 1024, None),
    ),
    "apigateway_stage": (
        ("apigateway", "CreateStage", ("stageName",)),
        _Documented(
            "API Gateway: stage name 1-128 [A-Za-z0-9_-] (CreateStage docs, important notes)",
            1,
            128,
            r"[A-Za-z0-9_-]+",
        ),
    ),
    "eventbridge_bus": (
        ("events", "CreateEventBus", ("Name",)),
        _Documented(
            "EventBridge CreateEventBus docs: custom bus names",
            None,
            None,
            None,
            (_custom_bus_checks,),
        ),
    ),
    "eventbridge_archive": (("events", "CreateArchive", ("ArchiveName",)), None),
    "eventbridge_rule": (("events", "PutRule", ("Name",)), None),
    "eventbridge_target_id": (("events", "PutTargets", ("Targets", "Id")), None),
    "sqs_queue": (
        ("sqs", "CreateQueue", ("QueueName",)),
        _Documented(
            "SQS: queue name 1-80 [A-Za-z0-9_-], .fifo suffix only for FIFO",
            1,
            80,
            r"[A-Za-z0-9_-]+(?:\.fifo)?",
        ),
    ),
    "sns_topic": (
        ("sns", "CreateTopic", ("Name",)),
        _Documented(
            "SNS: topic name 1-256 [A-Za-z0-9_-], .fifo suffix only for FIFO",
            1,
            256,
            r"[A-Za-z0-9_-]+(?:\.fifo)?",
        ),
    ),
    "cloudwatch_alarm": (
        ("cloudwatch", "PutMetricAlarm", ("AlarmName",)),
        _Documented(
            "CloudWatch PutMetricAlarm docs: UTF-8, no ASCII control characters",
            None,
            None,
            None,
            (_alarm_checks,),
        ),
    ),
    "cloudwatch_log_group": (
        ("logs", "CreateLogGroup", ("logGroupName",)),
        _Documented(
            "CloudWatch Logs CreateLogGroup docs: no 'aws/' prefix",
            None,
            None,
            None,
            (_log_group_checks,),
        ),
    ),
    "codebuild_project": (("codebuild", "CreateProject", ("name",)), None),
    "sagemaker_notebook": (
        ("sagemaker", "CreateNotebookInstance", ("NotebookInstanceName",)),
        None,
    ),
    "codeartifact_domain": (("codeartifact", "CreateDomain", ("domain",)), None),
    "codeartifact_repository": (("codeartifact", "CreateRepository", ("repository",)), None),
    "kms_alias": (
        ("kms", "CreateAlias", ("AliasName",)),
        _Documented(
            "KMS CreateAlias docs: 'alias/' prefix, 'alias/aws/' reserved for AWS",
            None,
            None,
            None,
            (_kms_alias_checks,),
        ),
    ),
    "pulumi_stack": (
        None,
        _Documented(
            "Pulumi tokens.ParseStackName: stack name 1-100 [A-Za-z0-9_.-]",
            1,
            100,
            r"[A-Za-z0-9_.-]+",
        ),
    ),
}


def botocore_constraints(session, ref: _BotocoreRef) -> tuple[str, dict]:
    """(source label, {min,max,pattern} subset) for one member of a botocore model."""
    service, operation, path = ref
    shape = session.get_service_model(service).operation_model(operation).input_shape
    for step in path:
        if shape.type_name == "list":
            shape = shape.member
        shape = shape.members[step]
    label = f"botocore {service} {operation}.{'[].'.join(path)} ({shape.name})"
    return label, {k: shape.metadata[k] for k in ("min", "max", "pattern") if k in shape.metadata}


def _build(session, kind: str, ref: _BotocoreRef | None, doc: _Documented | None):
    """(rule, label that the rule's own min/max/pattern should be reported under)."""
    model = botocore_constraints(session, ref) if ref is not None else None
    if model is not None and model[1]:
        label, found = model
        max_len = found.get("max", doc.max_len if doc is not None else None)
        if max_len is None:
            raise ValueError(f"{kind}: {label} gives no max length and no documented one exists")
        pattern = found.get("pattern")
        rule = NameRule(
            kind=kind,
            source=label if doc is None else f"{label} + {doc.source}",
            min_len=found.get("min", 0),
            max_len=max_len,
            pattern=compile_java_pattern(pattern, label) if pattern is not None else None,
            extra=_documented_extra(doc, with_shape=True) if doc is not None else None,
        )
        return rule, label
    if doc is None or doc.min_len is None or doc.max_len is None:
        raise ValueError(f"{kind}: botocore is silent and no documented length rule is recorded")
    silent = f"{model[0]}: no constraints; " if model is not None else ""
    rule = NameRule(
        kind=kind,
        source=silent + doc.source,
        min_len=doc.min_len,
        max_len=doc.max_len,
        pattern=re.compile(doc.pattern, re.ASCII) if doc.pattern is not None else None,
        extra=_documented_extra(doc, with_shape=False),
    )
    return rule, doc.source


# Built on first use, not at import: every test process imports this module while
# collecting, most never ask it about a name, and reading the models takes longer than
# most unit tests do.
@functools.cache
def _build_all() -> tuple[dict[str, NameRule], dict[str, str]]:
    session = botocore.session.get_session()
    built = {kind: _build(session, kind, ref, doc) for kind, (ref, doc) in _SPECS.items()}
    return {k: r for k, (r, _) in built.items()}, {k: lbl for k, (_, lbl) in built.items()}


def __getattr__(name: str) -> dict[str, NameRule]:
    """`RULES`: kind -> its rule."""
    if name == "RULES":
        return _build_all()[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def violations(kind: str, name: str) -> list[str]:
    """Reasons `name` is not a legal `kind` name, each citing its rule; [] when legal."""
    rules, primary_source = _build_all()
    try:
        rule = rules[kind]
    except KeyError:
        raise KeyError(f"unknown name kind {kind!r}; known: {sorted(rules)}") from None
    out = _shape_checks(primary_source[kind], rule.min_len, rule.max_len, rule.pattern, name)
    if rule.extra is not None:
        out += rule.extra(name)
    return out
