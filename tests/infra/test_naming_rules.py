"""infra.naming's refusals name the rule broken, at the boundaries git and AWS set.

Each case is a name a person could type; the expected text is the rule the error
message promises to name (the project's "bad input names itself" contract).
"""

from __future__ import annotations

import json
import re

import pytest

from infra import config, naming

PROJECT = config.read_project()[0]
ACCOUNT = "123456789012"


@pytest.mark.parametrize(
    ("branch", "rule"),
    [
        ("", "it is empty"),
        (
            "x" * (naming.GIT_REF_MAX_BYTES + 1),
            f"it is longer than {naming.GIT_REF_MAX_BYTES} bytes",
        ),
        ("@", "git forbids '@' alone and the sequence '@{'"),
        ("feature/a@{1}", "git forbids '@' alone and the sequence '@{'"),
        ("feature/", "git forbids '..', '//' and a leading or trailing '/'"),
        ("/feature", "git forbids '..', '//' and a leading or trailing '/'"),
        ("feature//x", "git forbids '..', '//' and a leading or trailing '/'"),
        ("feature.", "git forbids a trailing '.' and a leading '-'"),
        ("-feature", "git forbids a trailing '.' and a leading '-'"),
        ("feature/.hidden", "git forbids a path component '.hidden' starting with '.'"),
        ("feature/x.lock/y", "git forbids a path component 'x.lock' starting with '.' or ending"),
    ],
)
def test_a_branch_git_refuses_is_refused_naming_the_rule(branch: str, rule: str) -> None:
    with pytest.raises(naming.NamingError, match=re.escape(f"cannot be named: {rule}")):
        naming.slugify(branch)


@pytest.mark.parametrize("branch", ["x" * naming.GIT_REF_MAX_BYTES, "a@b", "v1.2/x.y", "x/y-z"])
def test_what_git_accepts_gets_a_slug(branch: str) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", naming.slugify(branch))


def test_a_branch_exactly_as_long_as_a_slug_may_be_is_its_own_slug() -> None:
    branch = "a" * naming.SLUG_MAX
    assert naming.slugify(branch) == branch
    assert naming.slugify(branch + "a") != branch + "a"


@pytest.mark.parametrize("cut", [naming.SLUG_MAX - naming.HASH_LEN - 1])
def test_a_shortened_slug_never_holds_a_double_or_edge_hyphen(cut: int) -> None:
    # The readable head is cut where the branch has a hyphen: the cut must not leave it.
    branch = "a" * (cut - 1) + "-" + "b" * 40
    slug = naming.slugify(branch)
    assert len(slug) <= naming.SLUG_MAX
    assert "--" not in slug and not slug.startswith("-") and not slug.endswith("-")
    assert slug.startswith("a" * (cut - 1) + "-")  # the readable part is kept


@pytest.mark.parametrize("branch", ["_feature_", "feature/x_", "__x"])
def test_punctuation_at_the_ends_never_makes_an_edge_hyphen(branch: str) -> None:
    slug = naming.slugify(branch)
    assert not slug.startswith("-") and not slug.endswith("-")


@pytest.mark.parametrize(
    ("project", "needle"),
    [
        ("sthreemodels", "starts with a prefix S3 reserves"),
        ("amznmodels", "starts with a prefix S3 reserves"),
        ("1models", "lowercase letters, digits and single hyphens, starting with a letter"),
    ],
)
def test_a_project_name_aws_refuses_is_refused_with_the_rule(project: str, needle: str) -> None:
    with pytest.raises(naming.NamingError, match=re.escape(needle)):
        naming.check_project(project)


def test_every_shared_name_is_a_name() -> None:
    values = naming.shared_names(PROJECT, ACCOUNT).as_dict()
    assert all(isinstance(v, str) and PROJECT in v for v in values.values()), values


def test_the_shared_stack_is_tagged_as_having_no_branch() -> None:
    stack = naming.shared_stack()
    tags = naming.tags(PROJECT, stack)
    assert tags["stack"] == naming.SHARED_STACK
    assert tags["branch"] == "-"
    assert stack.kind == "protected"


def test_names_serialise_as_plain_json() -> None:
    stack = naming.branch_stack("feature/json", ["main"])
    document = naming.branch_names(PROJECT, stack, ACCOUNT, ["v1", "v2"]).as_dict()
    assert json.loads(json.dumps(document)) == document
    assert all(type(v) in (str, dict, list) for v in document.values())
