"""Settings: defaults from Pulumi.yaml, stack overrides, and errors that say what is valid."""

from __future__ import annotations

import json
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
