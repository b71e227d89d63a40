"""The project's settings: one frozen, validated object, read in one place.

Defaults live in Pulumi.yaml; a stack file (Pulumi.<stack>.yaml) or
`pulumi config set` overrides them. The program reads them through
`pulumi.Config` (`load`); tools that run without the Pulumi engine (synth,
names, destroy's guard) read the same files (`read_project_config`) and go
through the same validation, so a value is never judged twice.
"""

from __future__ import annotations

import copy
import difflib
import functools
import itertools
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from infra import naming

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILE = REPO_ROOT / "Pulumi.yaml"
# libyaml's safe loader when PyYAML ships it (its wheels do): the same documents, about
# ten times faster than the pure-Python one, which matters as every CLI reads Pulumi.yaml.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Minutes each built-in Lambda config takes from the first shift to 100%.
CANARY_DEPLOYMENT_MINUTES = {
    "CodeDeployDefault.LambdaCanary10Percent5Minutes": 5,
    "CodeDeployDefault.LambdaCanary10Percent10Minutes": 10,
    "CodeDeployDefault.LambdaCanary10Percent15Minutes": 15,
    "CodeDeployDefault.LambdaCanary10Percent30Minutes": 30,
    "CodeDeployDefault.LambdaLinear10PercentEvery1Minute": 9,
    "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes": 18,
    "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes": 27,
    "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes": 90,
}
# The promote job watches the deployment to its end with credentials from a one-hour role
# session (GitHub OIDC's default, and the role's maximum): after setup and the approval
# check, about 45 minutes are left to wait in, so a config must shift within 40.
MAX_CANARY_MINUTES = 40
CANARY_DEPLOYMENT_CONFIGS = tuple(
    name for name, minutes in CANARY_DEPLOYMENT_MINUTES.items() if minutes <= MAX_CANARY_MINUTES
)
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096)
API_AUTH = ("iam", "api-key", "none")
TRAINING_COMPUTE_TYPES = (
    "BUILD_GENERAL1_SMALL",
    "BUILD_GENERAL1_MEDIUM",
    "BUILD_GENERAL1_LARGE",
    "BUILD_GENERAL1_XLARGE",
    "BUILD_GENERAL1_2XLARGE",
)
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
_INSTANCE_TYPE_RE = re.compile(r"ml\.[a-z0-9]+\.[a-z0-9]+")
_REPOSITORY_RE = re.compile(r"[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}")


class ConfigError(ValueError):
    """A setting whose value the program cannot use; the message names key, value and remedy."""


@dataclass(frozen=True)
class Settings:
    project: str
    region: str
    # The branch a stack belongs to, recorded in its config when the stack is
    # created, because a stack name (a slug) cannot be turned back into one.
    branch: str
    default_branch: str
    protected_branches: tuple[str, ...]
    api_versions: tuple[str, ...]
    api_auth: str
    api_throttle_rate_limit: int
    api_throttle_burst_limit: int
    lambda_memory_mb: int
    lambda_timeout_seconds: int
    log_retention_days: int
    canary_deployment_config: str
    promotion_steps: tuple[int, ...]
    bake_seconds: int
    alarm_error_threshold: int
    event_archive_retention_days: int
    notebook_enabled: bool
    notebook_instance_type: str
    training_compute_type: str
    training_image: str
    training_command: str
    training_run_retention_days: int
    # metric -> {"min"/"max": bound, "maxRegression": worst allowed change against the
    # default branch}; see docs/model.md.
    quality_gate: Mapping[str, Mapping[str, float]]
    stack_ttl_hours: int
    github_repository: str
    create_oidc_provider: bool
    git_sha: str | None = None

    def branch_stack(self, ref: str) -> naming.BranchStack:
        """The stack of a branch, protected when it is the default or a long-lived branch."""
        return naming.branch_stack(ref, {self.default_branch, *self.protected_branches})


def _config_key(field_name: str) -> str:
    head, *rest = field_name.split("_")
    return head + "".join(part.title() for part in rest)


def _fail(key: str, value: object, valid: str) -> ConfigError:
    return ConfigError(f"config {key}={value!r} is not valid: {valid}")


def _as_json(key: str, value: object, valid: str) -> object:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise _fail(key, value, valid) from None


def _int(low: int, high: int) -> Callable[[str, object], int]:
    valid = f"an integer from {low} to {high}"

    def parse(key: str, value: object) -> int:
        number = _as_json(key, value, valid)
        if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
            raise _fail(key, value, valid)
        return number

    return parse


def _choice(options: tuple[Any, ...]) -> Callable[[str, object], Any]:
    valid = "one of " + ", ".join(str(option) for option in options)

    def parse(key: str, value: object) -> Any:
        numeric = isinstance(options[0], int)
        parsed = _as_json(key, value, valid) if numeric else value
        # 7.0 == 7 in Python: a float would pass the membership test and reach AWS as one.
        if parsed not in options or isinstance(parsed, bool):
            raise _fail(key, value, valid)
        if numeric and not isinstance(parsed, int):
            raise _fail(key, value, valid)
        return parsed

    return parse


def _deployment_config(key: str, value: object) -> str:
    minutes = CANARY_DEPLOYMENT_MINUTES.get(value) if isinstance(value, str) else None
    if minutes is not None and minutes > MAX_CANARY_MINUTES:
        raise _fail(
            key,
            value,
            f"it shifts traffic over {minutes} minutes, longer than the promote job can watch "
            f"(at most {MAX_CANARY_MINUTES}: its AWS role session lasts one hour); use one of "
            + ", ".join(CANARY_DEPLOYMENT_CONFIGS),
        )
    return _choice(CANARY_DEPLOYMENT_CONFIGS)(key, value)


def _pattern(regex: re.Pattern[str], valid: str) -> Callable[[str, object], str]:
    def parse(key: str, value: object) -> str:
        if not isinstance(value, str) or not regex.fullmatch(value):
            raise _fail(key, value, valid)
        return value

    return parse


def _text(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(key, value, "a non-empty string")
    return value


def _bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise _fail(key, value, "true or false")


def _branch(key: str, value: object) -> str:
    try:
        naming.slugify(str(value))
    except naming.NamingError as error:
        raise _fail(key, value, str(error)) from None
    return str(value)


def _branches(key: str, value: object) -> tuple[str, ...]:
    valid = "a list of git branch names"
    items = _as_json(key, value, valid)
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise _fail(key, value, valid)
    return tuple(_branch(key, item) for item in items)


def _api_versions(key: str, value: object) -> tuple[str, ...]:
    valid = 'a non-empty list of distinct major versions like ["v1", "v2"]'
    items = _as_json(key, value, valid)
    if not isinstance(items, list) or not items or len(set(map(str, items))) != len(items):
        raise _fail(key, value, valid)
    for item in items:
        try:
            naming.check_api_version(item if isinstance(item, str) else repr(item))
        except naming.NamingError as error:
            raise _fail(key, value, f"{valid}; {error}") from None
    return tuple(items)


def _promotion_steps(key: str, value: object) -> tuple[int, ...]:
    valid = (
        "a list of traffic percentages rising strictly from 1 to exactly 100, e.g. [10, 50, 100]"
    )
    items = _as_json(key, value, valid)
    if (
        not isinstance(items, list)
        or not items
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in items)
        or items[-1] != 100
        or items[0] < 1
        or any(a >= b for a, b in itertools.pairwise(items))
    ):
        raise _fail(key, value, valid)
    return tuple(items)


GATE_RULES = ("min", "max", "maxRegression")


def _quality_gate(key: str, value: object) -> dict[str, dict[str, float]]:
    valid = (
        'a mapping of metric name to rules, e.g. {"auc": {"min": 0.7, "maxRegression": 0.02}}; '
        f"rules: {', '.join(GATE_RULES)} (numbers; maxRegression >= 0)"
    )
    gate = _as_json(key, value, valid)
    if not isinstance(gate, Mapping):
        raise _fail(key, value, valid)
    parsed: dict[str, dict[str, float]] = {}
    for metric, rules in gate.items():
        if (
            not isinstance(metric, str)
            or not metric
            or not isinstance(rules, Mapping)
            or not rules
            or any(rule not in GATE_RULES for rule in rules)
            or any(
                isinstance(bound, bool) or not isinstance(bound, int | float)
                for bound in rules.values()
            )
            or rules.get("maxRegression", 0) < 0
        ):
            raise _fail(key, value, f"{valid}; metric {metric!r} breaks that")
        parsed[metric] = {rule: float(bound) for rule, bound in rules.items()}
    return parsed


def _project(key: str, value: object) -> str:
    try:
        naming.check_project(str(value))
    except naming.NamingError as error:
        raise _fail(key, value, str(error)) from None
    return str(value)


_PARSERS: Mapping[str, Callable[[str, object], Any]] = {
    "project": _project,
    "region": _pattern(_REGION_RE, "an AWS region such as us-east-1"),
    "branch": lambda key, value: "" if value == "" else _branch(key, value),
    "default_branch": _branch,
    "protected_branches": _branches,
    "api_versions": _api_versions,
    "api_auth": _choice(API_AUTH),
    "api_throttle_rate_limit": _int(1, 10000),
    "api_throttle_burst_limit": _int(1, 5000),
    "lambda_memory_mb": _int(128, 10240),
    "lambda_timeout_seconds": _int(1, 900),
    "log_retention_days": _choice(LOG_RETENTION_DAYS),
    "canary_deployment_config": _deployment_config,
    "promotion_steps": _promotion_steps,
    "bake_seconds": _int(0, 3600),
    "alarm_error_threshold": _int(1, 10000),
    "event_archive_retention_days": _int(0, 3650),
    "notebook_enabled": _bool,
    "notebook_instance_type": _pattern(_INSTANCE_TYPE_RE, "a SageMaker type such as ml.t3.medium"),
    "training_compute_type": _choice(TRAINING_COMPUTE_TYPES),
    "training_image": _text,
    "training_command": _text,
    "training_run_retention_days": _int(1, 3650),
    "quality_gate": _quality_gate,
    "stack_ttl_hours": _int(1, 24 * 365),
    "github_repository": lambda key, value: (
        ""
        if value == ""
        else _pattern(_REPOSITORY_RE, "OWNER/NAME of a GitHub repository")(key, value)
    ),
    "create_oidc_provider": _bool,
}
# Keys outside the project's namespace, as Pulumi spells them.
_QUALIFIED_KEYS = {"region": "aws:region"}


def config_keys() -> dict[str, str]:
    """Field name -> the key a user sets (`mlship:apiVersions`, `aws:region`)."""
    return {
        name: _QUALIFIED_KEYS.get(name, _config_key(name)) for name in _PARSERS if name != "project"
    }


def closest_key(key: str) -> str:
    """`did you mean X?` naming the nearest setting, or the list of settings."""
    keys = sorted(config_keys().values())
    match = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
    return f"did you mean {match[0]}?" if match else "valid keys: " + ", ".join(keys)


def parse_setting(name: str, value: object) -> Any:
    """One setting's value, validated as the program would (field name, e.g. `region`)."""
    return _PARSERS[name](config_keys()[name], value)


def settings_from_mapping(
    project: str, raw: Mapping[str, object], git_sha: str | None = None
) -> Settings:
    """Validate raw values keyed as a user writes them (unqualified project keys, `aws:region`)."""
    values: dict[str, Any] = {"project": _project("project name", project)}
    # Other namespaces (aws:profile, pulumi:tags, ...) belong to their providers.
    unknown = {key for key in raw if ":" not in key} - set(config_keys().values())
    if unknown:
        hints = "; ".join(f"{key}: {closest_key(key)}" for key in sorted(unknown))
        raise ConfigError(
            f"config {', '.join(sorted(unknown))} is not a setting of {project} ({hints})"
        )
    for name, key in config_keys().items():
        if key not in raw or raw[key] is None:
            raise ConfigError(f"config {key} is missing: give it a default in Pulumi.yaml")
        values[name] = _PARSERS[name](key, raw[key])
    if git_sha:
        try:
            naming.check_git_sha(git_sha)
        except naming.NamingError as error:
            raise _fail("GITHUB_SHA", git_sha, str(error)) from None
    return Settings(**values, git_sha=git_sha or None)


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings of the running Pulumi program; the only reader of `pulumi.Config`."""
    environ = os.environ if environ is None else environ
    project = pulumi.get_project()
    own = pulumi.Config()
    raw: dict[str, object] = {}
    for key in config_keys().values():
        namespace, _, name = key.rpartition(":")
        raw[key] = (pulumi.Config(namespace) if namespace else own).get(name)
    return settings_from_mapping(project, raw, environ.get("GITHUB_SHA"))


def read_project(root: Path = REPO_ROOT) -> tuple[str, dict[str, object]]:
    """Project name and default config values from Pulumi.yaml, as the CLI would see them."""
    project, defaults = _parse_project((root / "Pulumi.yaml").read_text())
    # A copy: callers overlay a stack's values on it.
    return project, copy.deepcopy(defaults)


@functools.lru_cache(maxsize=8)
def _parse_project(text: str) -> tuple[str, dict[str, object]]:
    # Keyed by the file's text, so an edited Pulumi.yaml is parsed again; the sweeper
    # reads it for every stack it judges, and parsing costs more than reading.
    document = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506
    project = document["name"]
    defaults: dict[str, object] = {}
    for key, spec in (document.get("config") or {}).items():
        if isinstance(spec, Mapping):
            defaults[key] = spec.get("default", spec.get("value"))
        else:
            defaults[key] = spec
    return project, defaults


def read_project_config(stack: str, root: Path = REPO_ROOT) -> tuple[str, dict[str, object]]:
    """Pulumi.yaml defaults overlaid with Pulumi.<stack>.yaml, keyed as a user writes them."""
    project, values = read_project(root)
    stack_file = root / f"Pulumi.{stack}.yaml"
    if stack_file.exists():
        document = yaml.load(stack_file.read_text(), Loader=SAFE_LOADER) or {}  # noqa: S506
        for key, value in (document.get("config") or {}).items():
            values[key.removeprefix(f"{project}:")] = value
    return project, values


def settings_for_stack(stack: str, root: Path = REPO_ROOT) -> Settings:
    """Settings a stack will run with, read from files, for tools that run without Pulumi."""
    project, values = read_project_config(stack, root)
    return settings_from_mapping(project, values)
