"""Ordinary failures reach people as one line and an exit code, never a botocore traceback."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from scripts import events, promote, release, rollback, smoke

VERBS = {
    "smoke": (smoke.main, []),
    "promote": (promote.main, []),
    "rollback": (rollback.main, []),
    "release": (release.main, ["--version", "v1"]),
    "events": (events.main, ["history"]),
}


def _run(verb: str, *source: str) -> int:
    main, extra = VERBS[verb]
    if verb == "events":
        return main([*extra, *source])
    return main([*source, *extra])


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_a_branch_git_could_not_have_exits_2_naming_it(verb: str, capsys, fake_pulumi) -> None:
    assert _run(verb, "--branch", "feature..x") == 2
    err = capsys.readouterr().err
    # Refused where the flag is parsed: the usage line, then what is wrong with the branch.
    assert "--branch: branch 'feature..x' cannot be named" in err and "Traceback" not in err
    assert fake_pulumi() == []  # refused before anything ran


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_an_outputs_file_that_is_not_utf8_exits_2(verb: str, tmp_path, capsys) -> None:
    path = tmp_path / "outputs.json"
    path.write_bytes(b'{"region": "\xff\xfe"}')
    assert _run(verb, "--outputs", str(path)) == 2
    err = capsys.readouterr().err
    assert f"stack outputs file {path} is not UTF-8 text" in err


def test_a_missing_bucket_is_one_line_not_a_traceback(deployed, capsys) -> None:
    values = json.loads(deployed.outputs_file.read_text())
    values["event_store_bucket"] = "no-such-bucket-here"
    deployed.outputs_file.write_text(json.dumps(values))
    assert events.main(["history", "--outputs", str(deployed.outputs_file)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("events: calling ListObjectsV2: not found (NoSuchBucket")
    assert err.count("\n") == 1


def test_expired_credentials_say_to_assume_the_role_again(deployed, capsys, monkeypatch) -> None:
    def expired(*_, **__):
        raise ClientError(
            {"Error": {"Code": "ExpiredToken", "Message": "The security token expired"}},
            "GetAlias",
        )

    monkeypatch.setattr(rollback, "read_alias", expired)
    assert rollback.main(["--outputs", str(deployed.outputs_file), "--to", "1"]) == 1
    assert "credentials are expired or invalid (ExpiredToken); assume the role again" in (
        capsys.readouterr().err
    )


def test_the_verbs_call_aws_in_the_region_the_outputs_name(deployed, monkeypatch, capsys) -> None:
    # A profile pointing elsewhere must not send the calls to another region's (empty) account.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert rollback.main(["--outputs", str(deployed.outputs_file), "--to", "1"]) == 0
    assert "already serves version 1" in capsys.readouterr().err


def test_a_region_output_that_is_not_a_name_exits_2(deployed, capsys) -> None:
    values = json.loads(deployed.outputs_file.read_text())
    values["region"] = 7
    deployed.outputs_file.write_text(json.dumps(values))
    assert rollback.main(["--outputs", str(deployed.outputs_file), "--to", "1"]) == 2
    assert "'region' must name an AWS region" in capsys.readouterr().err
