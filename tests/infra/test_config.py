"""Settings: defaults from Pulumi.yaml, stack overrides, and errors that say what is valid."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from infra import config
from tests.project import OTHER_REGION, PROJECT, ROOT


def _defaults() -> tuple[str, dict[str, object]]:
    return config.read_project(ROOT)


def test_pulumi_yaml_declares_every_setting_and_nothing_else() -> None:
    _, defaults = _defaults()
    assert set(defaults) == set(config.config_keys().values())


def test_defaults_are_valid_and_cheap() -> None:
    project, defaults = _defaults()
    settings = config.settings_from_mapping(project, defaults)
    assert settings.project == PROJECT
    assert settings.notebook_enabled is False
    assert settings.canary_deployment_config in config.CANARY_DEPLOYMENT_CONFIGS
    assert settings.promotion_steps[-1] == 100
    assert settings.branch == ""
    assert settings.quality_gate and all(settings.quality_gate.values())


def test_values_arrive_as_the_cli_gives_them_strings_and_json() -> None:
    project, defaults = _defaults()
    as_cli = {k: v if isinstance(v, str) else json.dumps(v) for k, v in defaults.items()}
    assert config.settings_from_mapping(project, as_cli) == config.settings_from_mapping(
        project, defaults
    )


def test_stack_file_overrides_project_defaults(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text(
        yaml.safe_dump(
            {
                "config": {
                    f"{PROJECT}:apiVersions": ["v1", "v2", "v3"],
                    f"{PROJECT}:notebookEnabled": "true",
                    "aws:region": OTHER_REGION,
                    "aws:profile": "ignored-by-us",
                }
            }
        )
    )
    settings = config.settings_for_stack("dev", tmp_path)
    assert settings.api_versions == ("v1", "v2", "v3")
    assert settings.notebook_enabled is True
    assert settings.region == OTHER_REGION
    assert config.settings_for_stack("other", tmp_path).api_versions == ("v1", "v2")


@pytest.mark.parametrize(
    ("key", "value", "valid"),
    [
        ("lambdaMemoryMb", "64", "an integer from 128 to 10240"),
        ("lambdaMemoryMb", "lots", "an integer from 128 to 10240"),
        ("lambdaTimeoutSeconds", True, "an integer from 1 to 900"),
        ("logRetentionDays", "2", "one of 1, 3, 5"),
        ("canaryDeploymentConfig", "CodeDeployDefault.LambdaAllAtOnce", "LambdaCanary10Percent5"),
        ("apiVersions", "[]", "non-empty list"),
        ("apiVersions", '["v1", "v1"]', "distinct"),
        ("apiVersions", '["1"]', "v1, v2"),
        ("promotionSteps", "[50, 10, 100]", "rising strictly"),
        ("promotionSteps", "[10, 50]", "exactly 100"),
        ("notebookEnabled", "yes", "true or false"),
        ("notebookInstanceType", "t3.medium", "ml.t3.medium"),
        ("trainingComputeType", "HUGE", "BUILD_GENERAL1_SMALL"),
        ("trainingCommand", "  ", "non-empty"),
        ("protectedBranches", '["ok", "bad..name"]', "'..'"),
        ("defaultBranch", "", "empty"),
        ("aws:region", "mars-1", "us-east-1"),
        ("stackTtlHours", "0", "from 1 to 8760"),
        ("trainingRunRetentionDays", "0", "from 1 to 3650"),
        ("qualityGate", "[]", "a mapping of metric name to rules"),
        ("qualityGate", '{"auc": {"minimum": 0.7}}', "metric 'auc' breaks that"),
        ("qualityGate", '{"auc": {"min": "high"}}', "rules: min, max, maxRegression"),
        ("qualityGate", '{"auc": {"maxRegression": -0.1}}', "maxRegression >= 0"),
        ("qualityGate", '{"auc": {}}', "metric 'auc' breaks that"),
    ],
)
def test_a_bad_value_names_key_value_and_what_is_valid(key: str, value: object, valid: str) -> None:
    project, defaults = _defaults()
    with pytest.raises(config.ConfigError) as raised:
        config.settings_from_mapping(project, {**defaults, key: value})
    message = str(raised.value)
    assert message.startswith(f"config {key}=")
    # The message quotes the offending value: the whole value, or the bad item of a list.
    shown = message.split("=", 1)[1].split(" is not valid", maxsplit=1)[0]
    assert shown == repr(value) or shown.strip("'") in str(value)
    assert valid in message


def test_missing_and_unknown_keys_are_refused() -> None:
    project, defaults = _defaults()
    missing = {k: v for k, v in defaults.items() if k != "apiVersions"}
    with pytest.raises(config.ConfigError, match="apiVersions is missing"):
        config.settings_from_mapping(project, missing)
    with pytest.raises(config.ConfigError, match=r"apiVersion is not a setting.*apiVersions\?"):
        config.settings_from_mapping(project, {**defaults, "apiVersion": "[]"})
    with pytest.raises(
        config.ConfigError, match=r"zzz is not a setting.*valid keys: .*apiVersions"
    ):
        config.settings_from_mapping(project, {**defaults, "zzz": "1"})


def test_protected_kind_comes_from_default_and_long_lived_branches() -> None:
    project, defaults = _defaults()
    settings = config.settings_from_mapping(
        project, {**defaults, "defaultBranch": "trunk", "protectedBranches": ["release/1"]}
    )
    assert settings.branch_stack("trunk").kind == "protected"
    assert settings.branch_stack("refs/heads/release/1").kind == "protected"
    assert settings.branch_stack("main").kind == "ephemeral"


def test_git_sha_is_validated() -> None:
    project, defaults = _defaults()
    assert config.settings_from_mapping(project, defaults, "abc1234").git_sha == "abc1234"
    with pytest.raises(config.ConfigError, match="GITHUB_SHA"):
        config.settings_from_mapping(project, defaults, "not-a-sha")


@pytest.mark.parametrize("name", sorted(config.CANARY_DEPLOYMENT_MINUTES))
def test_a_codedeploy_config_is_accepted_only_if_the_promote_job_can_watch_it_end(name) -> None:
    from scripts.lib import codedeploy  # noqa: PLC0415 - the operation side of the same promise

    project, defaults = _defaults()
    minutes = config.CANARY_DEPLOYMENT_MINUTES[name]
    # The table agrees with the schedule the config's name spells out.
    assert codedeploy.traffic_steps(name)[-1] == (100, minutes)
    values = {**defaults, "canaryDeploymentConfig": name}
    if minutes <= config.MAX_CANARY_MINUTES:
        settings = config.settings_from_mapping(project, values)
        assert settings.canary_deployment_config == name
        # The default wait sees it through, and ends within the one-hour role session.
        waited_minutes = codedeploy.waiter_attempts(15) * 15 / 60
        assert minutes < waited_minutes < 60
    else:
        with pytest.raises(config.ConfigError, match=f"over {minutes} minutes, longer than"):
            config.settings_from_mapping(project, values)


def _settings(**values: object) -> config.Settings:
    project, defaults = _defaults()
    return config.settings_from_mapping(project, {**defaults, **values})


@pytest.mark.parametrize(
    ("key", "low", "high"),
    [
        ("apiThrottleRateLimit", 1, 10000),
        ("apiThrottleBurstLimit", 1, 5000),
        ("lambdaMemoryMb", 128, 10240),
        ("lambdaTimeoutSeconds", 1, 900),
        ("bakeSeconds", 0, 3600),
        ("alarmErrorThreshold", 1, 10000),
        ("eventArchiveRetentionDays", 0, 3650),
        ("trainingRunRetentionDays", 1, 3650),
        ("stackTtlHours", 1, 8760),
    ],
)
def test_an_integer_setting_takes_its_bounds_and_nothing_past_them(key, low, high) -> None:
    field = {v: k for k, v in config.config_keys().items()}[key]
    assert getattr(_settings(**{key: low}), field) == low
    assert getattr(_settings(**{key: str(high)}), field) == high
    for outside in (low - 1, high + 1, f"{low}.5", str(float(low)), "true", True):
        with pytest.raises(config.ConfigError, match=f"an integer from {low} to {high}"):
            _settings(**{key: outside})


def test_log_retention_takes_only_what_cloudwatch_accepts() -> None:
    for days in config.LOG_RETENTION_DAYS:
        assert _settings(logRetentionDays=str(days)).log_retention_days == days
    # "7.0" equals 7 once parsed, and would reach CloudWatch as a float.
    for days in (0, 2, 4000, True, "[7]", "7.0", 7.0):
        with pytest.raises(config.ConfigError, match="one of 1, 3, 5, 7, 14"):
            _settings(logRetentionDays=days)


def test_a_text_choice_is_taken_as_written() -> None:
    for auth in config.API_AUTH:
        assert _settings(apiAuth=auth).api_auth == auth
    for wrong in ("IAM", '"iam"', "", 1):
        with pytest.raises(config.ConfigError, match="one of iam, api-key, none"):
            _settings(apiAuth=wrong)
    for compute in config.TRAINING_COMPUTE_TYPES:
        assert _settings(trainingComputeType=compute).training_compute_type == compute


def test_region_instance_type_and_repository_must_match_their_form() -> None:
    assert _settings(**{"aws:region": "ap-southeast-2"}).region == "ap-southeast-2"
    assert _settings(**{"aws:region": "us-gov-west-1"}).region == "us-gov-west-1"
    for region in ("us-east-1a", "US-EAST-1", "useast-1", " us-east-1", 1):
        with pytest.raises(config.ConfigError, match="an AWS region such as us-east-1"):
            _settings(**{"aws:region": region})
    assert _settings(notebookInstanceType="ml.g5.xlarge").notebook_instance_type == "ml.g5.xlarge"
    for instance in ("ml.t3", "ml.t3.medium.x", "ml.T3.medium"):
        with pytest.raises(config.ConfigError, match=r"a SageMaker type such as ml\.t3\.medium"):
            _settings(notebookInstanceType=instance)
    assert _settings(githubRepository="acme/ml-ship.io").github_repository == "acme/ml-ship.io"
    assert _settings(githubRepository="").github_repository == ""
    for repository in ("acme", "acme/", "/ship", "ac me/ship", "a/b/c", "x" * 40 + "/ship"):
        with pytest.raises(config.ConfigError, match="OWNER/NAME of a GitHub repository"):
            _settings(githubRepository=repository)


def test_booleans_are_true_or_false_as_yaml_or_the_cli_gives_them() -> None:
    assert _settings(notebookEnabled=True).notebook_enabled is True
    assert _settings(notebookEnabled="true").notebook_enabled is True
    assert _settings(notebookEnabled="false").notebook_enabled is False
    assert _settings(createOidcProvider=False).create_oidc_provider is False
    for wrong in ("True", "1", 1, 0, "no"):
        with pytest.raises(config.ConfigError, match="true or false"):
            _settings(createOidcProvider=wrong)


def test_text_settings_refuse_blank_or_non_text() -> None:
    assert _settings(trainingImage=" img ").training_image == " img "
    for wrong in ("", "\t", 7, ["x"]):
        with pytest.raises(config.ConfigError, match=r"trainingImage=.* a non-empty string"):
            _settings(trainingImage=wrong)


def test_branch_settings_are_git_branch_names() -> None:
    settings = _settings(branch="feature/x", protectedBranches='["release/1", "prod"]')
    assert settings.branch == "feature/x"
    assert settings.protected_branches == ("release/1", "prod")
    assert _settings(protectedBranches=[]).protected_branches == ()
    for wrong in ('"main"', "[1]", '{"a": "b"}', "[main"):
        with pytest.raises(config.ConfigError, match="a list of git branch names"):
            _settings(protectedBranches=wrong)
    with pytest.raises(config.ConfigError, match=r"config branch='a\.\.b' is not valid"):
        _settings(branch="a..b")


def test_api_versions_are_distinct_major_versions_kept_in_order() -> None:
    assert _settings(apiVersions='["v2", "v1", "v10"]').api_versions == ("v2", "v1", "v10")
    for wrong, why in (
        ('"v1"', "non-empty list"),
        ("[1]", "v1, v2"),
        ('["v1", 1, "1"]', "distinct"),
        ('["v01"]', "v01"),
    ):
        with pytest.raises(config.ConfigError, match=why):
            _settings(apiVersions=wrong)


def test_promotion_steps_are_integers_rising_from_at_least_1_to_100() -> None:
    assert _settings(promotionSteps="[1, 100]").promotion_steps == (1, 100)
    assert _settings(promotionSteps=[100]).promotion_steps == (100,)
    for wrong in ("[0, 100]", "[true, 100]", "[10.5, 100]", '"100"', "[]", "[10, 10, 100]"):
        with pytest.raises(config.ConfigError, match="rising strictly from 1 to exactly 100"):
            _settings(promotionSteps=wrong)


def test_a_quality_gate_keeps_its_rules_as_numbers() -> None:
    gate = _settings(qualityGate='{"auc": {"min": 1, "maxRegression": 0}, "loss": {"max": 2.5}}')
    assert gate.quality_gate == {"auc": {"min": 1.0, "maxRegression": 0.0}, "loss": {"max": 2.5}}
    assert all(
        type(bound) is float for rules in gate.quality_gate.values() for bound in rules.values()
    )
    assert _settings(qualityGate="{}").quality_gate == {}
    for wrong in (
        '{"": {"min": 1}}',
        '{"auc": 1}',
        '{"auc": {"min": true}}',
        '{"auc": {"min": null}}',
    ):
        with pytest.raises(config.ConfigError, match="breaks that"):
            _settings(qualityGate=wrong)


def test_a_codedeploy_config_longer_than_the_watch_is_refused_naming_the_ones_that_fit() -> None:
    with pytest.raises(config.ConfigError) as raised:
        _settings(canaryDeploymentConfig="CodeDeployDefault.LambdaLinear10PercentEvery10Minutes")
    message = str(raised.value)
    assert "it shifts traffic over 90 minutes, longer than the promote job can watch" in message
    assert f"(at most {config.MAX_CANARY_MINUTES}: its AWS role session lasts one hour)" in message
    assert message.endswith("use one of " + ", ".join(config.CANARY_DEPLOYMENT_CONFIGS))
    for wrong in (5, "CodeDeployDefault.LambdaAllAtOnce"):
        with pytest.raises(config.ConfigError, match="one of CodeDeployDefault"):
            _settings(canaryDeploymentConfig=wrong)


def test_the_project_name_and_the_git_sha_are_checked() -> None:
    _, defaults = _defaults()
    with pytest.raises(config.ConfigError, match="config project name='Bad_Name' is not valid"):
        config.settings_from_mapping("Bad_Name", defaults)
    assert config.settings_from_mapping(PROJECT, defaults, "").git_sha is None
    assert config.settings_from_mapping(PROJECT, defaults, None).git_sha is None


def test_a_value_of_none_is_missing_and_other_namespaces_are_not_ours() -> None:
    _, defaults = _defaults()
    with pytest.raises(config.ConfigError, match="config bakeSeconds is missing"):
        config.settings_from_mapping(PROJECT, {**defaults, "bakeSeconds": None})
    settings = config.settings_from_mapping(PROJECT, {**defaults, "pulumi:tags": {"a": "b"}})
    assert settings.project == PROJECT


def test_two_unknown_keys_are_named_together_each_with_a_hint() -> None:
    _, defaults = _defaults()
    with pytest.raises(config.ConfigError) as raised:
        config.settings_from_mapping(PROJECT, {**defaults, "zzz": 1, "bakeSecond": 1})
    assert str(raised.value) == (
        f"config bakeSecond, zzz is not a setting of {PROJECT} (bakeSecond: did you mean "
        f"bakeSeconds?; zzz: valid keys: {', '.join(sorted(config.config_keys().values()))})"
    )


def test_config_keys_are_the_camel_case_names_a_user_sets() -> None:
    keys = config.config_keys()
    assert keys["api_throttle_rate_limit"] == "apiThrottleRateLimit"
    assert keys["region"] == "aws:region"
    assert keys["branch"] == "branch"
    assert "project" not in keys
    assert config.parse_setting("bake_seconds", "5") == 5
    with pytest.raises(config.ConfigError, match="config bakeSeconds='-1'"):
        config.parse_setting("bake_seconds", "-1")


def test_the_program_reads_its_settings_through_pulumi_config(monkeypatch) -> None:
    _, defaults = _defaults()
    namespaces: list[str | None] = []

    class FakeConfig:
        def __init__(self, namespace: str | None = None) -> None:
            namespaces.append(namespace)
            self.namespace = namespace

        def get(self, name: str) -> object:
            key = f"{self.namespace}:{name}" if self.namespace else name
            return defaults.get(key)

    monkeypatch.setattr(config.pulumi, "Config", FakeConfig)
    monkeypatch.setattr(config.pulumi, "get_project", lambda: PROJECT)
    settings = config.load({"GITHUB_SHA": "abc1234"})
    assert settings == config.settings_from_mapping(PROJECT, defaults, "abc1234")
    assert "aws" in namespaces
    monkeypatch.setenv("GITHUB_SHA", "def5678")
    assert config.load().git_sha == "def5678"


def test_project_defaults_take_a_default_or_a_value_or_a_bare_scalar(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "demo",
                "config": {"a": {"default": 1}, "b": {"value": 2}, "c": 3, "d": {"type": "string"}},
            }
        )
    )
    assert config.read_project(tmp_path) == ("demo", {"a": 1, "b": 2, "c": 3, "d": None})
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump({"name": "bare"}))
    assert config.read_project(tmp_path) == ("bare", {})


def test_a_stack_file_overrides_by_unqualified_key_and_may_be_empty(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text(
        yaml.safe_dump({"name": "demo", "config": {"a": {"default": 1}, "aws:region": "x"}})
    )
    (tmp_path / "Pulumi.s.yaml").write_text(
        yaml.safe_dump({"config": {"demo:a": 5, "aws:region": "y", "other:a": 9}})
    )
    assert config.read_project_config("s", tmp_path) == (
        "demo",
        {"a": 5, "aws:region": "y", "other:a": 9},
    )
    (tmp_path / "Pulumi.e.yaml").write_text("")
    assert config.read_project_config("e", tmp_path) == ("demo", {"a": 1, "aws:region": "x"})
    (tmp_path / "Pulumi.n.yaml").write_text("config:\n")
    assert config.read_project_config("n", tmp_path)[1] == {"a": 1, "aws:region": "x"}


# The parsers are built once, when the module loads; these take the builders at their word
# for any bounds, options and pattern, not only the ones the settings use.


def test_an_integer_parser_takes_whole_numbers_from_low_to_high_as_json_or_values() -> None:
    parse = config._int(5, 7)
    assert [parse("k", 5), parse("k", "6"), parse("k", 7)] == [5, 6, 7]
    for bad in (4, 8, "4", "8", True, False, 6.0, "6.5", "six", None, [6]):
        with pytest.raises(config.ConfigError) as raised:
            parse("k", bad)
        assert str(raised.value) == f"config k={bad!r} is not valid: an integer from 5 to 7"


def test_a_choice_parser_takes_only_its_options_numbers_as_json() -> None:
    numbers = config._choice((2, 4))
    assert (numbers("k", "2"), numbers("k", 4)) == (2, 4)
    for bad in ("3", 3, True, "[2]"):
        with pytest.raises(config.ConfigError) as raised:
            numbers("k", bad)
        assert str(raised.value) == f"config k={bad!r} is not valid: one of 2, 4"
    words = config._choice(("a", "b"))
    assert words("k", "b") == "b"
    for bad in ('"a"', "A", 1):
        with pytest.raises(config.ConfigError, match=r"one of a, b$"):
            words("k", bad)


def test_a_pattern_parser_takes_whole_matches_of_text_only() -> None:
    parse = config._pattern(re.compile(r"a+"), "some a's")
    assert parse("k", "aaa") == "aaa"
    for bad in ("aab", "baa", "", 1, None):
        with pytest.raises(config.ConfigError) as raised:
            parse("k", bad)
        assert str(raised.value) == f"config k={bad!r} is not valid: some a's"


def test_a_half_right_key_still_gets_a_suggestion() -> None:
    # Half its letters in common with bakeSeconds: close enough to suggest it.
    assert config.closest_key("bakeX") == "did you mean bakeSeconds?"
    assert config.closest_key("notebook") == "did you mean notebookEnabled?"
