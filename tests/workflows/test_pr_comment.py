"""The sticky preview comment: its body, its bound, and the REST calls that upsert it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from responses import matchers

from scripts import pr_comment
from scripts.lib import gate

API = "https://api.github.test"
REPO = "acme/mlship"
PR = 7
BRANCH = "feature/Fancy_Model"
STACK = "feature-fancy-mode-c084cfc5"
TOKEN = "ghs_pr-comment-test-token-5d41402a"  # distinctive: must never be printed
COMMENTS = f"{API}/repos/{REPO}/issues/{PR}/comments"
PREVIEW = """\
Previewing update (feature-fancy-mode-c084cfc5):
 +  aws:s3:Bucket artifacts create
 ~  aws:lambda:Function model update [diff: ~code]

Resources:
    + 1 to create
    ~ 1 to update
    31 unchanged

Duration: 4s
"""


@pytest.fixture
def preview_log(tmp_path: Path) -> Path:
    path = tmp_path / "preview.log"
    path.write_text(PREVIEW)
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": API}


def argv(log: Path, *extra: str) -> list[str]:
    return ["--branch", BRANCH, "--output", str(log), "--pr", str(PR), *extra]


def comment(number: int, body: str) -> dict:
    return {"id": number, "body": body, "html_url": f"https://github.test/c/{number}"}


def page_one(items: list[dict], next_page: bool) -> None:
    headers = {"Link": f'<{COMMENTS}?per_page=100&page=2>; rel="next"'} if next_page else {}
    responses.add(
        responses.GET,
        COMMENTS,
        json=items,
        headers=headers,
        match=[matchers.query_param_matcher({"per_page": "100"})],
    )


# ---------------------------------------------------------------- the body


def test_body_is_marker_then_summary_then_output():
    summary = pr_comment.build_summary(
        stack=STACK, branch=BRANCH, outcome="success", output=PREVIEW, sha="0123456789abcdef"
    )
    body = pr_comment.build_body(STACK, summary, PREVIEW)
    assert body.startswith(f"<!-- mlship:preview:{STACK} -->\n### Pulumi preview of `{STACK}`")
    assert "✅ succeeded" in body.splitlines()[1]
    assert "| + 1 to create |" in body and "| 31 unchanged |" in body
    assert body.index("| 31 unchanged |") < body.index("<details>")
    assert "commit `0123456789ab`" in body
    assert "Trimmed" not in body


def test_resource_changes_come_from_pulumis_resources_block():
    assert pr_comment.resource_changes(PREVIEW) == [
        "+ 1 to create",
        "~ 1 to update",
        "31 unchanged",
    ]
    assert pr_comment.resource_changes("error: no credentials\n") == []


def test_output_is_cleaned_of_colour_codes():
    assert pr_comment.clean_output("\x1b[32m+ create\x1b[0m\r\nnext\r") == "+ create\nnext\n"


def test_a_branch_with_backticks_stays_inline_code():
    assert pr_comment.code("a`b") == "``a`b``"
    assert pr_comment.code("`x") == "`` `x ``"


def test_output_with_fences_cannot_close_the_block():
    output = "before\n```\n````\nafter"
    body = pr_comment.build_body(STACK, "summary", output)
    assert "`````text\n" + output + "\n`````" in body


def test_long_output_is_trimmed_to_the_limit_and_says_so():
    output = "".join(f"line {i}: " + "x" * 90 + "\n" for i in range(2_000))  # ~200k chars
    body = pr_comment.build_body(STACK, "### summary\n", output)
    assert len(body) <= pr_comment.MAX_BODY
    assert body.startswith(f"<!-- mlship:preview:{STACK} -->\n### summary\n")
    assert "Trimmed to fit GitHub's 65,536-character limit" in body
    assert body.index("Trimmed") < body.index("<details>")
    assert "line 0: " in body and "line 1999: " not in body
    assert body.endswith("```\n\n</details>\n")  # the block is still closed
    shown = body.split("```text\n", 1)[1].split("\n```", 1)[0]
    hidden = len(output.rstrip("\n")) - len(shown)
    assert f"the last {hidden:,} characters" in body


def test_a_body_exactly_at_the_limit_is_not_trimmed():
    frame = len(pr_comment.build_body(STACK, "s", "x"))
    output = "x" * (pr_comment.MAX_BODY - frame + 1)
    body = pr_comment.build_body(STACK, "s", output)
    assert len(body) == pr_comment.MAX_BODY
    assert "Trimmed" not in body
    assert "Trimmed" in pr_comment.build_body(STACK, "s", output + "y")


texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    summary=st.tuples(texts, st.integers(0, 400)).map(lambda t: t[0] * t[1]),
    output=st.tuples(texts, st.integers(0, 1_000)).map(lambda t: t[0] * t[1]),
    stack=st.from_regex(r"[a-z0-9][a-z0-9-]{0,26}", fullmatch=True),
)
def test_any_input_gives_a_bounded_body_with_marker_and_summary_first(summary, output, stack):
    body = pr_comment.build_body(stack, summary, output)
    assert len(body) <= pr_comment.MAX_BODY
    head = f"<!-- mlship:preview:{stack} -->\n"
    assert body.startswith(head)
    kept = summary.rstrip()
    if body.startswith(head + kept):
        return
    # Only a summary too long to fit beside the frame is cut; it is cut, never moved.
    assert len(kept) > pr_comment.MAX_BODY // 2
    assert body.startswith(head + kept[:1_000])
    assert "\n\n(summary trimmed)\n" in body


@settings(max_examples=40, deadline=None)
@given(
    output=st.text(max_size=3_000),
    limit=st.integers(1_000, 4_000),
)
def test_the_bound_holds_for_any_limit(output, limit):
    body = pr_comment.build_body(STACK, "### summary", output, limit=limit)
    assert len(body) <= limit
    assert body.startswith(f"<!-- mlship:preview:{STACK} -->\n### summary")


def test_marker_refuses_what_is_not_a_stack_name():
    with pytest.raises(pr_comment.UsageError):
        pr_comment.marker("x --> <script>")


# ---------------------------------------------------------------- the REST calls


@responses.activate
def test_creates_the_comment_when_none_carries_the_marker(
    preview_log, env, capsys, tmp_path, monkeypatch
):
    page_one([comment(1, "LGTM"), comment(2, "<!-- mlship:preview:other-stack -->\nold")], False)
    responses.add(responses.POST, COMMENTS, json=comment(3, "new"), status=201)
    summary_file = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
    assert pr_comment.main(argv(preview_log, "--outcome", "success"), env) == 0
    post = responses.calls[-1].request
    body = json.loads(post.body)["body"]
    assert body.startswith(f"<!-- mlship:preview:{STACK} -->\n")
    assert post.headers["Authorization"] == f"Bearer {TOKEN}"
    assert summary_file.read_text() == body  # the same text in the step summary
    out = capsys.readouterr()
    assert "created the preview comment" in out.out
    assert TOKEN not in out.out + out.err


@responses.activate
def test_updates_in_place_found_on_a_later_page(preview_log, env):
    page_one([comment(i, f"comment {i}") for i in range(1, 101)], True)
    responses.add(
        responses.GET,
        COMMENTS,
        json=[comment(150, f"<!-- mlship:preview:{STACK} -->\nstale"), comment(151, "hi")],
        match=[matchers.query_param_matcher({"per_page": "100", "page": "2"})],
    )
    responses.add(
        responses.PATCH, f"{API}/repos/{REPO}/issues/comments/150", json=comment(150, "x")
    )
    assert pr_comment.main(argv(preview_log), env) == 0
    methods = [(c.request.method, c.request.url.split("?")[0]) for c in responses.calls]
    assert methods == [
        ("GET", COMMENTS),
        ("GET", COMMENTS),
        ("PATCH", f"{API}/repos/{REPO}/issues/comments/150"),
    ]
    assert "page=2" in responses.calls[1].request.url
    body = json.loads(responses.calls[-1].request.body)["body"]
    assert "stale" not in body and "| 31 unchanged |" in body


@responses.activate
def test_a_quoted_marker_is_not_the_sticky_comment(preview_log, env):
    quoted = f"> <!-- mlship:preview:{STACK} -->\n> what does this mean?"
    page_one([comment(5, quoted)], False)
    responses.add(responses.POST, COMMENTS, json=comment(6, "new"), status=201)
    assert pr_comment.main(argv(preview_log), env) == 0
    assert responses.calls[-1].request.method == "POST"


@responses.activate
def test_forbidden_says_which_permission_and_exits_1(preview_log, env, capsys):
    page_one([], False)
    responses.add(
        responses.POST,
        COMMENTS,
        json={"message": "Resource not accessible by integration"},
        status=403,
    )
    assert pr_comment.main(argv(preview_log), env) == 1
    err = capsys.readouterr().err
    assert "403" in err and "pull-requests: write" in err
    assert "Resource not accessible by integration" in err
    assert TOKEN not in err


@responses.activate
def test_unreachable_github_exits_1_without_the_token(preview_log, env, capsys):
    responses.add(responses.GET, COMMENTS, body=requests.ConnectionError("refused"))
    assert pr_comment.main(argv(preview_log), env) == 1
    err = capsys.readouterr().err
    assert "cannot reach GitHub" in err and TOKEN not in err


def test_missing_token_is_a_usage_error(preview_log, env, capsys):
    del env["GITHUB_TOKEN"]
    assert pr_comment.main(argv(preview_log), env) == 2
    assert "GITHUB_TOKEN" in capsys.readouterr().err


def test_pr_number_comes_from_the_event(preview_log, env, tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 42}}))
    assert pr_comment._event_pr(str(event)) == 42
    assert pr_comment._event_pr(str(tmp_path / "missing.json")) is None


def test_dry_run_posts_nothing_and_prints_the_body(preview_log, tmp_path, capsys):
    out_file = tmp_path / "body.md"
    code = pr_comment.main(
        argv(preview_log, "--dry-run", "--body-file", str(out_file), "--outcome", "failure"), {}
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"<!-- mlship:preview:{STACK} -->")
    assert "❌ failed" in printed
    assert out_file.read_text() == printed.removesuffix("\n")


def test_missing_output_still_makes_a_comment(tmp_path, capsys):
    code = pr_comment.main(
        ["--branch", BRANCH, "--output", str(tmp_path / "none.log"), "--dry-run"], {}
    )
    assert code == 0
    assert "no preview output was recorded" in capsys.readouterr().out


@pytest.mark.parametrize("size", [40_000, 65_000, 70_000, 200_000])
def test_a_long_summary_is_kept_whole_when_it_fits_and_cut_when_it_cannot(size):
    summary = "s" * size
    body = pr_comment.build_body(STACK, summary, "output\n" * 10)
    assert len(body) <= pr_comment.MAX_BODY
    head = f"<!-- mlship:preview:{STACK} -->\n"
    if size <= 65_000:  # fits beside the marker, the note and an empty block
        assert body.startswith(head + summary + "\n")
    else:
        assert body.startswith(head + "s" * 60_000)
        assert "(summary trimmed)" in body


def test_the_cost_estimate_is_carried_in_the_summary_when_given(tmp_path) -> None:
    estimate = "**Cost estimate** (us-east-1 list prices): idle **$0.20/month**"
    with_cost = pr_comment.build_summary(
        stack="s", branch="b", outcome="success", output="", cost=estimate + "\n"
    )
    assert estimate in with_cost
    without = pr_comment.build_summary(stack="s", branch="b", outcome="success", output="")
    assert "Cost estimate" not in without


def test_the_comment_carries_the_model_metrics_against_the_default_branch(tmp_path, capsys):
    comparison = gate.compare(
        {"metrics": {"auc": 0.81, "log_loss": 0.52}, "higher_is_better": {"auc": True}},
        {"metrics": {"auc": 0.80, "log_loss": 0.50}},
        {"auc": {"min": 0.7, "maxRegression": 0.02}},
        "main @ 1a2b3c4d5e6f (run r:1)",
    )
    evaluation = tmp_path / "evaluation.json"
    evaluation.write_text(
        json.dumps(
            {**comparison.as_dict(), "model_version": "4.1", "run_id": "r:9", "commit": "9" * 40}
        )
    )
    log = tmp_path / "preview.log"
    log.write_text("Resources:\n    3 unchanged\n")
    args = ["--branch", "feature/x", "--output", str(log), "--dry-run"]
    assert pr_comment.main([*args, "--evaluation", str(evaluation)], environ={}) == 0
    body = capsys.readouterr().out
    assert "### Model `4.1` from run `r:9`: quality gate passed" in body
    assert "Compared with: main @ 1a2b3c4d5e6f (run r:1)" in body
    assert "| auc | 0.81 | 0.8 | +0.01 ▲ better | min 0.7, max regression 0.02 | ok |" in body
    assert f"Trained from commit `{'9' * 12}`" in body
    # The metrics come before the preview output, so trimming never cuts them.
    assert body.index("quality gate") < body.index("<details>")

    assert pr_comment.main([*args, "--evaluation", str(tmp_path / "none.json")], environ={}) == 0
    assert "No training run of this branch yet" in capsys.readouterr().out
