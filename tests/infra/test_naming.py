"""Branch -> stack -> names: legal for every service, stable, collision-free."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from infra import naming
from tests.aws_name_rules import violations

LONGEST_PROJECT = "abcdefghijkl"
ACCOUNT = "123456789012"
PROTECTED = {"main", "release/2026"}

# Characters git allows in a branch, including ones every AWS service rejects.
_BRANCH_CHARS = st.sampled_from(
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list("-_.#+,=!'&%$;\"<>|`(){}")
    + ["é", "ß", "Ω", "日", "🙂"]
)


def _git_legal(branch: str) -> bool:
    try:
        naming.check_git_branch(branch)
    except naming.NamingError:
        return False
    return bool(re.search(r"[A-Za-z0-9]", branch))


git_branches = (
    st.lists(st.text(_BRANCH_CHARS, min_size=1, max_size=40), min_size=1, max_size=5)
    .map("/".join)
    .filter(_git_legal)
)


def _all_names(branch: str, project: str = LONGEST_PROJECT) -> dict[str, str]:
    stack = naming.branch_stack(branch, PROTECTED)
    names = naming.branch_names(project, stack, ACCOUNT, ["v1", "v2", "v999"])
    flat: dict[str, str] = {}
    for field, value in names.as_dict().items():
        if isinstance(value, dict):
            flat.update({f"{field}.{k}": v for k, v in value.items()})
        else:
            flat[field] = str(value)
    return flat


@settings(max_examples=300, deadline=None)
@given(git_branches)
@example("a" * 250)
@example("Feature/" + "X" * 200)
@example("shared")
@example("x-0123abcd")
def test_every_name_is_legal_for_its_service(branch: str) -> None:
    stack = naming.branch_stack(branch, PROTECTED)
    assert violations("pulumi_stack", stack.stack) == []
    for field, name in _all_names(branch).items():
        kind = naming.BRANCH_NAME_KINDS[field.split(".")[0]]
        assert violations(kind, name) == [], (branch, field, name)


def test_every_name_field_declares_its_aws_kind() -> None:
    fields = set(_all_names("main"))
    assert {f.split(".")[0] for f in fields} == set(naming.BRANCH_NAME_KINDS)
    assert set(naming.shared_names("mlship", ACCOUNT).as_dict()) == set(naming.SHARED_NAME_KINDS)


def test_shared_names_are_legal() -> None:
    for field, name in naming.shared_names(LONGEST_PROJECT, ACCOUNT).as_dict().items():
        assert violations(naming.SHARED_NAME_KINDS[field], str(name)) == [], (field, name)


@settings(max_examples=200, deadline=None)
@given(git_branches, git_branches)
def test_distinct_branches_never_share_a_name(first: str, second: str) -> None:
    assume(first != second)
    assert naming.slugify(first) != naming.slugify(second)
    assert not set(_all_names(first).values()) - {"live", "v1", "v2", "v999"} & set(
        _all_names(second).values()
    )


@settings(max_examples=200, deadline=None)
@given(git_branches, st.sampled_from(["case", "punctuation", "tail"]))
def test_near_identical_branches_get_different_stacks(branch: str, change: str) -> None:
    if change == "case":
        variant = branch.swapcase()
    elif change == "punctuation":
        variant = branch.replace("-", "_") if "-" in branch else branch + "_x"
    else:
        variant = branch + "a" * 40
    assume(variant != branch and _git_legal(variant))
    assert naming.slugify(branch) != naming.slugify(variant)


@pytest.mark.parametrize(
    "family",
    [
        ["feature/x", "Feature/X", "feature-x", "feature_x", "feature.x", "FEATURE-X"],
        ["a" * 60 + "1", "a" * 60 + "2", "a" * 61],
        ["shared", "Shared"],
        ["x-0123abcd", "X-0123abcd", "x"],
    ],
)
def test_families_of_look_alike_branches_are_all_distinct(family: list[str]) -> None:
    slugs = [naming.slugify(branch) for branch in family]
    assert len(set(slugs)) == len(family), dict(zip(family, slugs, strict=True))
    assert naming.SHARED_STACK not in slugs


@settings(max_examples=100, deadline=None)
@given(git_branches)
def test_names_are_stable_and_refs_heads_is_the_same_branch(branch: str) -> None:
    assert naming.slugify(branch) == naming.slugify(branch)
    assert naming.slugify(f"refs/heads/{branch}") == naming.slugify(branch)
    assert _all_names(branch) == _all_names(f"refs/heads/{branch}")


@pytest.mark.parametrize(
    ("branch", "slug"),
    [
        # Pinned: a change here renames every existing stack and its resources.
        ("main", "main"),
        ("dev-2", "dev-2"),
        ("feature/Fancy_Model", "feature-fancy-mode-c084cfc5"),
        ("Main", "main-eb814be3"),
        ("shared", "shared-a4d26868"),
    ],
)
def test_slugs_are_pinned(branch: str, slug: str) -> None:
    assert naming.slugify(branch) == slug


@pytest.mark.parametrize(
    ("branch", "rule"),
    [
        ("", "empty"),
        ("---", "leading '-'"),
        ("_/.", "'.'"),
        ("___", "ASCII letter or digit"),
        ("日本", "ASCII letter or digit"),
        ("a..b", "'..'"),
        ("a b", "' '"),
        ("tab\there", "'\\t'"),
        ("bell\x07", "'\\x07'"),
        ("a~1", "'~'"),
        ("what?", "'?'"),
        ("x.lock", ".lock"),
        ("/lead", "leading or trailing '/'"),
        ("a//b", "'//'"),
        ("end.", "trailing '.'"),
        ("@", "'@'"),
        ("a@{b", "'@{'"),
        ("a" * 256, "255 bytes"),
    ],
)
def test_unnameable_branches_are_refused_with_the_rule(branch: str, rule: str) -> None:
    with pytest.raises(naming.NamingError) as raised:
        naming.slugify(branch)
    message = str(raised.value)
    assert repr(branch) in message
    assert rule in message


@pytest.mark.parametrize(
    ("ref", "kind"),
    [
        ("main", "protected"),
        ("refs/heads/main", "protected"),
        ("release/2026", "protected"),
        ("feature/x", "ephemeral"),
        ("Main", "ephemeral"),
    ],
)
def test_kind_follows_the_protected_branches(ref: str, kind: str) -> None:
    assert naming.branch_stack(ref, PROTECTED).kind == kind


def test_shared_stack_is_protected_and_apart_from_every_branch() -> None:
    shared = naming.shared_stack()
    assert (shared.stack, shared.kind) == (naming.SHARED_STACK, "protected")
    shared_names = set(naming.shared_names("mlship", ACCOUNT).as_dict().values())
    assert not shared_names & set(_all_names("shared", "mlship").values())


_TAG_VALUE = re.compile(r"[\w .:/=+\-@]{0,256}", re.ASCII)


@settings(max_examples=100, deadline=None)
@given(git_branches)
def test_tags_name_the_stack_and_are_legal_tag_values(branch: str) -> None:
    stack = naming.branch_stack(branch, PROTECTED)
    tags = naming.tags("mlship", stack, "0123456789abcdef0123456789abcdef01234567")
    assert tags["project"] == "mlship"
    assert tags["stack"] == stack.stack
    assert tags["kind"] == stack.kind
    assert tags["git-sha"] == "0123456789abcdef0123456789abcdef01234567"
    for value in tags.values():
        assert _TAG_VALUE.fullmatch(value), value


def test_branch_tag_keeps_legal_characters_and_replaces_the_rest() -> None:
    stack = naming.branch_stack("feature/a#b!c", PROTECTED)
    assert naming.tags("mlship", stack)["branch"] == "feature/a_b_c"
    assert "git-sha" not in naming.tags("mlship", stack)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: naming.check_project("Bad_Name"), "'Bad_Name'"),
        (lambda: naming.check_project("abcdefghijklm"), "1-12"),
        (lambda: naming.check_project("xnmodels"), "reserves"),
        (lambda: naming.check_account_id("12345"), "12 digits"),
        (lambda: naming.check_api_version("2"), "v1, v2"),
        (lambda: naming.check_git_sha("HEAD"), "hex"),
    ],
)
def test_bad_inputs_name_themselves_and_what_is_valid(call, needle: str) -> None:
    with pytest.raises(naming.NamingError, match=re.escape(needle)):
        call()


@settings(max_examples=200, deadline=None)
@given(git_branches)
@example("shared-ci")
@example("shared")
def test_no_branch_name_falls_under_the_shared_stacks_protected_prefix(branch: str) -> None:
    prefix = naming.shared_prefix("mlship")
    assert not any(name.startswith(prefix) for name in _all_names(branch, "mlship").values())
    shared = naming.shared_names("mlship", ACCOUNT)
    for name in (shared.state_bucket, shared.preview_role, shared.deploy_role, shared.promote_role):
        assert name.startswith(prefix)
