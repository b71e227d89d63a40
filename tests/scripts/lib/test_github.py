"""scripts.lib.github: pagination, errors people can act on, and a token that never leaks."""

from __future__ import annotations

import json

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st
from responses import matchers

from scripts.lib import aws, github

API = "https://api.github.test"
# A fake, distinctive enough to search every message for.
TOKEN = "ghp_GithubClientTestTokenDoNotLeak01234567"
REPO = "/repos/octo-org/ml-models"


@pytest.fixture
def mock():
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def client() -> github.Client:
    return github.Client(TOKEN, API)


def _link(url: str, rel: str = "next") -> dict[str, str]:
    return {"Link": f'<{url}>; rel="{rel}", <{API}/x?page=9>; rel="last"'}


# ---------------------------------------------------------------- environment


def test_token_and_api_url_come_from_the_environment() -> None:
    made = github.Client.from_env(
        {"GITHUB_TOKEN": f"  {TOKEN}\n", "GITHUB_API_URL": "https://ghe.example.com/api/v3/"}
    )
    assert made.base_url == "https://ghe.example.com/api/v3"
    assert TOKEN not in repr(made)
    assert github.Client.from_env({"GITHUB_TOKEN": TOKEN}).base_url == github.DEFAULT_API_URL


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_missing_token_is_bad_input(value: str | None) -> None:
    environ = {} if value is None else {"GITHUB_TOKEN": value}
    with pytest.raises(github.TokenMissing, match=r"\$GITHUB_TOKEN is not set") as caught:
        github.token_from_env(environ)
    assert caught.value.exit_code == 2
    assert "nothing was changed" in str(caught.value)


def test_a_mangled_token_is_refused_without_quoting_it() -> None:
    with pytest.raises(github.TokenMissing) as caught:
        github.token_from_env({"GITHUB_TOKEN": f"{TOKEN} {TOKEN}"})
    assert TOKEN not in str(caught.value)


def test_an_api_url_that_is_not_http_is_bad_input() -> None:
    with pytest.raises(aws.UsageError, match="GITHUB_API_URL"):
        github.api_url_from_env({"GITHUB_API_URL": "ftp://github.example.com"})


@pytest.mark.parametrize(
    "text", ["octo-org/ml-models", "a/b", "Octo/repo.name_1", "x" * 39 + "/" + "y" * 100]
)
def test_repositories_parse(text: str) -> None:
    owner, name = github.parse_repo(text)
    assert f"{owner}/{name}" == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "octo",
        "octo/",
        "/repo",
        "a/b/c",
        "-a/b",
        "a b/c",
        "https://github.com/a/b",
        "a/b.git",
        "a/..",
        "a/.",
    ],
)
def test_bad_repositories_are_usage_errors(text: str) -> None:
    with pytest.raises(aws.UsageError, match="OWNER/NAME"):
        github.parse_repo(text)


@given(st.text(max_size=60))
def test_parse_repo_accepts_only_what_it_can_put_in_a_path(text: str) -> None:
    try:
        owner, name = github.parse_repo(text)
    except aws.UsageError:
        return
    assert "/" not in owner + name
    assert "?" not in name
    assert "#" not in name
    assert name not in {".", ".."}


# ---------------------------------------------------------------- requests


def test_requests_carry_the_token_and_api_version(mock, client: github.Client) -> None:
    mock.get(
        f"{API}{REPO}",
        json={"full_name": "octo-org/ml-models"},
        match=[
            matchers.header_matcher(
                {
                    "Authorization": f"Bearer {TOKEN}",
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": github.API_VERSION,
                }
            )
        ],
    )
    assert client.get(REPO, doing="reading", needs=github.METADATA_READ) == {
        "full_name": "octo-org/ml-models"
    }
    assert client.writes == []


def test_a_404_may_mean_absent(mock, client: github.Client) -> None:
    mock.get(f"{API}{REPO}/environments/x", status=404, json={"message": "Not Found"})
    assert (
        client.get(
            f"{REPO}/environments/x", doing="reading", needs=github.ACTIONS_READ, missing_ok=True
        )
        is None
    )


def test_writes_send_json_and_are_recorded(mock, client: github.Client) -> None:
    mock.post(
        f"{API}{REPO}/actions/variables",
        status=201,
        body="",
        match=[matchers.json_params_matcher({"name": "A", "value": "1"})],
    )
    mock.patch(f"{API}{REPO}/actions/variables/A", status=204)
    client.write(
        "POST",
        f"{REPO}/actions/variables",
        {"name": "A", "value": "1"},
        doing="creating",
        needs=github.VARIABLES_WRITE,
    )
    client.write(
        "PATCH",
        f"{REPO}/actions/variables/A",
        {"name": "A", "value": "2"},
        doing="updating",
        needs=github.VARIABLES_WRITE,
    )
    assert client.writes == [
        f"POST {REPO}/actions/variables",
        f"PATCH {REPO}/actions/variables/A",
    ]
    assert json.loads(mock.calls[1].request.body) == {"name": "A", "value": "2"}


def test_enterprise_server_paths_keep_their_prefix(mock) -> None:
    mock.get("https://ghe.example.com/api/v3/users/alice", json={"id": 1})
    enterprise = github.Client(TOKEN, "https://ghe.example.com/api/v3")
    assert enterprise.get("/users/alice", doing="d", needs=github.PUBLIC) == {"id": 1}


# ---------------------------------------------------------------- pagination


def test_pagination_follows_link_headers(mock, client: github.Client) -> None:
    first = f"{API}{REPO}/environments"
    second = f"{API}/repositories/7/environments?per_page=100&page=2"
    third = f"{API}/repositories/7/environments?per_page=100&page=3"
    mock.get(
        first,
        json={"total_count": 5, "environments": [{"name": "a"}, {"name": "b"}]},
        headers=_link(second),
        match=[matchers.query_param_matcher({"per_page": "100"})],
    )
    mock.get(
        second,
        json={"total_count": 5, "environments": [{"name": "c"}, {"name": "d"}]},
        headers=_link(third),
        match=[matchers.query_param_matcher({"per_page": "100", "page": "2"})],
    )
    mock.get(
        third,
        json={"total_count": 5, "environments": [{"name": "e"}]},
        headers={"Link": f'<{first}?page=1>; rel="first"'},
        match=[matchers.query_param_matcher({"per_page": "100", "page": "3"})],
    )

    items = client.paginate(
        f"{REPO}/environments", doing="listing", needs=github.ACTIONS_READ, key="environments"
    )

    assert [item["name"] for item in items] == ["a", "b", "c", "d", "e"]
    assert len(mock.calls) == 3


def test_pagination_of_a_plain_array(mock, client: github.Client) -> None:
    mock.get(f"{API}/user/repos", json=[1, 2], headers=_link(f"{API}/user/repos?page=2"))
    mock.get(f"{API}/user/repos?page=2", json=[3])
    assert client.paginate("/user/repos", doing="listing", needs=github.PUBLIC) == [1, 2, 3]


def test_pagination_never_sends_the_token_to_another_host(mock, client: github.Client) -> None:
    mock.get(f"{API}/user/repos", json=[1], headers=_link("https://evil.example/steal?page=2"))

    with pytest.raises(github.GitHubError, match="not sending the token there"):
        client.paginate("/user/repos", doing="listing", needs=github.PUBLIC)

    assert [call.request.url.split("?")[0] for call in mock.calls] == [f"{API}/user/repos"]


def test_pagination_stops_on_a_loop(mock, client: github.Client) -> None:
    mock.get(f"{API}/user/repos", json=[1], headers=_link(f"{API}/user/repos?per_page=100"))
    with pytest.raises(github.GitHubError, match="loops back"):
        client.paginate("/user/repos", doing="listing", needs=github.PUBLIC)


def test_pagination_of_something_that_is_not_a_list(mock, client: github.Client) -> None:
    mock.get(f"{API}/user/repos", json={"message": "hm"})
    with pytest.raises(github.GitHubError, match="no list"):
        client.paginate("/user/repos", doing="listing", needs=github.PUBLIC)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "cls", "words"),
    [
        (401, github.AuthenticationError, "GitHub rejected the token (401 Bad credentials)"),
        (403, github.PermissionDenied, "needs the repository permission Variables: read"),
        (404, github.NotFound, "the repository does not exist or the token cannot see it"),
        (422, github.ValidationFailed, "GitHub refused the values (422"),
        (500, github.GitHubError, "GitHub answered 500"),
    ],
)
def test_errors_say_what_is_missing_and_that_nothing_changed(
    mock, client: github.Client, *, status: int, cls: type, words: str
) -> None:
    message = "Bad credentials" if status == 401 else "Nope"
    mock.get(f"{API}{REPO}/actions/variables/X", status=status, json={"message": message})

    with pytest.raises(cls) as caught:
        client.get(f"{REPO}/actions/variables/X", doing="reading X", needs=github.VARIABLES_READ)

    text = str(caught.value)
    assert text.startswith("reading X: ")
    assert words in text
    assert text.endswith("nothing was changed")
    assert caught.value.status == status
    assert caught.value.exit_code == 1
    assert isinstance(caught.value, aws.ScriptError)


def test_a_refused_write_says_it_took_no_effect(mock, client: github.Client) -> None:
    mock.put(
        f"{API}{REPO}/environments/e",
        status=403,
        json={"message": "Must have admin rights to Repository."},
        headers={"X-Accepted-GitHub-Permissions": "administration=write"},
    )
    with pytest.raises(github.PermissionDenied) as caught:
        client.write(
            "PUT",
            f"{REPO}/environments/e",
            {},
            doing="configuring e",
            needs=github.ADMINISTRATION_WRITE,
        )
    text = str(caught.value)
    assert "Must have admin rights" in text
    assert "Administration: write" in text
    assert "classic token needs the `repo` scope" in text
    assert "(GitHub accepts: administration=write)" in text
    assert text.endswith("GitHub rejected this change, so it took no effect")
    assert client.writes == []


def test_validation_errors_carry_githubs_reasons_and_the_hint(mock, client: github.Client):
    mock.post(
        f"{API}{REPO}/actions/variables",
        status=422,
        json={
            "message": "Validation Failed",
            "errors": [{"resource": "ActionsVariable", "field": "name", "code": "invalid"}],
        },
    )
    with pytest.raises(github.ValidationFailed) as caught:
        client.write(
            "POST",
            f"{REPO}/actions/variables",
            {"name": "1BAD"},
            doing="creating",
            needs=github.VARIABLES_WRITE,
            hint_422="names start with a letter",
        )
    assert "(422 Validation Failed: ActionsVariable name invalid); names start with a letter" in (
        str(caught.value)
    )


def test_an_exhausted_rate_limit_says_when_to_retry(mock, client: github.Client) -> None:
    mock.get(
        f"{API}/users/alice",
        status=403,
        json={"message": "API rate limit exceeded for user ID 1."},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000000"},
    )
    with pytest.raises(github.RateLimited, match=r"try again after 22:13 UTC"):
        client.get("/users/alice", doing="looking up alice", needs=github.PUBLIC)


def test_an_unreachable_github_is_an_error_without_the_token(mock, client: github.Client):
    mock.get(f"{API}/users/alice", body=requests.ConnectionError(f"refused {TOKEN}"))
    with pytest.raises(github.GitHubError) as caught:
        client.get("/users/alice", doing="looking up alice", needs=github.PUBLIC)
    assert "could not reach GitHub at https://api.github.test (ConnectionError)" in str(
        caught.value
    )
    assert TOKEN not in str(caught.value)


def test_a_token_echoed_by_the_server_is_scrubbed(mock, client: github.Client) -> None:
    mock.get(f"{API}/users/alice", status=401, json={"message": f"token {TOKEN} is bad"})
    with pytest.raises(github.AuthenticationError) as caught:
        client.get("/users/alice", doing="looking up alice", needs=github.PUBLIC)
    assert TOKEN not in str(caught.value)
    assert "token *** is bad" in str(caught.value)


def test_an_answer_without_json_is_an_error(mock, client: github.Client) -> None:
    mock.get(f"{API}/users/alice", body="<html>proxy</html>")
    with pytest.raises(github.GitHubError, match="without JSON"):
        client.get("/users/alice", doing="looking up alice", needs=github.PUBLIC)


# ---------------------------------------------------------------- environments


def test_reviewers_of_an_environment() -> None:
    environment = {
        "protection_rules": [
            {"type": "wait_timer", "wait_timer": 5},
            {
                "type": "required_reviewers",
                "reviewers": [
                    {"type": "User", "reviewer": {"login": "alice", "id": 1}},
                    {"type": "Team", "reviewer": {"slug": "ml-leads", "id": 9}},
                ],
            },
        ]
    }
    assert github.reviewers_of(environment) == [("User", 1, "alice"), ("Team", 9, "ml-leads")]
    assert github.reviewers_of({"protection_rules": None}) == []
    assert github.reviewers_of({}) == []
