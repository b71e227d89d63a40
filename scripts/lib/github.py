"""A small GitHub REST client for the bootstrap and the preflight: errors people can act on.

The token comes from `$GITHUB_TOKEN` and is only ever put in the Authorization
header: it is never printed, logged or part of an error message (every message
this module builds is scrubbed of it, in case a server echoes it). The API
root comes from `$GITHUB_API_URL` (set by GitHub Actions, and for GitHub
Enterprise Server), default https://api.github.com.

Failures become `scripts.lib.aws.ScriptError` subclasses whose message says what
was being done, which permission or token scope it needs, and that the failed
request changed nothing:

    401 -> AuthenticationError  the token is wrong, expired or revoked
    403 -> PermissionDenied     the token may not do this (or RateLimited)
    404 -> NotFound             no such thing, or the token cannot see the repository
    422 -> ValidationFailed     GitHub refused the values (with its reasons)

Listings follow the `Link: <...>; rel="next"` header, never to another host.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from scripts.lib import aws

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
TIMEOUT_SECONDS = 30
MAX_PAGES = 100
PER_PAGE = 100
# Names and advice, not secrets.
TOKEN_ENV = "GITHUB_TOKEN"  # noqa: S105
ACCESS_ADVICE = (
    "create a fine-grained personal access token for this repository with the permissions "
    "Administration: write, Variables: write and Actions: read (or use "
    "`GITHUB_TOKEN=$(gh auth token)`: a classic token with the `repo` scope)"
)

_REPO_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
# A header value must be one visible line; anything else would make requests
# raise an error that quotes the value, i.e. the token.
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class Permission:
    """What a request needs, as a fine-grained token and as a classic token's scope say it."""

    fine_grained: str
    classic: str = "repo"

    def describe(self) -> str:
        return (
            f"a fine-grained token needs the repository permission {self.fine_grained}; "
            f"a classic token needs the `{self.classic}` scope"
        )


METADATA_READ = Permission("Metadata: read")
ACTIONS_READ = Permission("Actions: read")
ADMINISTRATION_WRITE = Permission(
    "Administration: write (and your account must be an admin of the repository)"
)
VARIABLES_READ = Permission("Variables: read")
VARIABLES_WRITE = Permission("Variables: write")
PUBLIC = Permission("(none: public data)", classic="(none)")

PLAN_NOTE = (
    "required reviewers need a public repository, or a plan that offers them on private "
    "ones (GitHub Enterprise; on Free, Pro and Team they exist for public repositories only)"
)


class GitHubError(aws.ScriptError):
    """GitHub answered with an error; the message says what to do about it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationError(GitHubError):
    """401: the token was not accepted at all."""


class PermissionDenied(GitHubError):
    """403: the token is valid but may not do this."""


class RateLimited(GitHubError):
    """403/429 with the rate limit used up."""


class NotFound(GitHubError):
    """404: the thing does not exist, or the token cannot see it."""


class ValidationFailed(GitHubError):
    """422: GitHub refused the values sent."""


class TokenMissing(aws.UsageError):
    """No usable token in the environment: nothing was asked of GitHub."""


def token_from_env(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise TokenMissing(f"${TOKEN_ENV} is not set: {ACCESS_ADVICE}; nothing was changed")
    if not _TOKEN_RE.fullmatch(token):
        # Never echo it: say only what is wrong with it.
        raise TokenMissing(
            f"${TOKEN_ENV} contains spaces or control characters, so it cannot be a token "
            "(a copy-paste accident?); nothing was changed"
        )
    return token


def api_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    url = (environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.netloc:
        raise aws.UsageError(f"GITHUB_API_URL {url!r} is not an http(s) URL; nothing was changed")
    return url


def parse_repo(text: str) -> tuple[str, str]:
    """`OWNER/NAME` -> (owner, name); anything else is a usage error."""
    if (
        not _REPO_RE.fullmatch(text or "")
        or text.endswith(".git")
        or text.split("/")[1] in {".", ".."}
    ):
        raise aws.UsageError(
            f"--repo {text!r} is not OWNER/NAME of a GitHub repository (e.g. octo-org/ml-models)"
        )
    owner, name = text.split("/")
    return owner, name


def reviewers_of(environment: Mapping[str, Any]) -> list[tuple[str, int | None, str]]:
    """(type, id, login or team slug) of each required reviewer of an environment's JSON."""
    found = []
    for rule in environment.get("protection_rules") or []:
        if not isinstance(rule, dict) or rule.get("type") != "required_reviewers":
            continue
        for entry in rule.get("reviewers") or []:
            reviewer = entry.get("reviewer") or {}
            name = reviewer.get("login") or reviewer.get("slug") or reviewer.get("name") or "?"
            found.append((str(entry.get("type")), reviewer.get("id"), str(name)))
    return found


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


class Client:
    """GitHub's REST API over one `requests.Session`; records the writes it made."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_API_URL,
        session: requests.Session | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        # Only sent to base_url's host (see _url): never to a host a Link header names.
        self._headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "mlship-bootstrap",
        }
        self.writes: list[str] = []

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Client:
        return cls(token_from_env(environ), api_url_from_env(environ))

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, token=***)"

    # ------------------------------------------------------------ requests

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("https://", "http://")):
            if not _same_origin(path_or_url, self.base_url):
                raise GitHubError(
                    f"GitHub linked to {urlsplit(path_or_url).netloc}, not to "
                    f"{urlsplit(self.base_url).netloc}; not sending the token there"
                )
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def request(
        self,
        method: str,
        path: str,
        *,
        doing: str,
        needs: Permission,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        missing_ok: bool = False,
        hint_422: str = "",
    ) -> requests.Response | None:
        """One call; None for a 404 when `missing_ok`; any other error raises GitHubError."""
        url = self._url(path)
        try:
            response = self.session.request(
                method,
                url,
                headers=self._headers,
                json=body,
                params=params,
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            # The exception names the URL, never the headers; scrubbed all the same.
            kind = type(error).__name__
            raise GitHubError(
                self._scrub(
                    f"{doing}: could not reach GitHub at {self.base_url} ({kind}); "
                    f"{self._unchanged(method)}"
                )
            ) from None
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 400:
            raise self._error(method, response, doing, needs, hint_422)
        if method != "GET":
            self.writes.append(f"{method} {urlsplit(url).path}")
        return response

    def get(
        self,
        path: str,
        *,
        doing: str,
        needs: Permission,
        params: Mapping[str, Any] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        """The decoded JSON of a GET; None for a 404 when `missing_ok`."""
        response = self.request(
            "GET", path, doing=doing, needs=needs, params=params, missing_ok=missing_ok
        )
        return None if response is None else _json(response, doing)

    def write(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any],
        *,
        doing: str,
        needs: Permission,
        hint_422: str = "",
    ) -> Any:
        response = self.request(
            method, path, doing=doing, needs=needs, body=body, hint_422=hint_422
        )
        assert response is not None
        return _json(response, doing) if response.content else None

    def paginate(
        self,
        path: str,
        *,
        doing: str,
        needs: Permission,
        key: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> list[Any]:
        """Every item of a listing, following `Link: rel="next"`.

        A listing is a JSON array, or an object holding the array under `key`
        (`{"total_count": 2, "environments": [...]}`).
        """
        items: list[Any] = []
        url: str | None = path
        query: Mapping[str, Any] | None = {"per_page": PER_PAGE, **(params or {})}
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            if url is None:
                return items
            response = self.request("GET", url, doing=doing, needs=needs, params=query)
            assert response is not None
            page = _json(response, doing)
            if key is not None:
                page = page.get(key, []) if isinstance(page, dict) else None
            if not isinstance(page, list):
                raise GitHubError(f"{doing}: GitHub answered with no list ({key or 'array'})")
            items.extend(page)
            seen.add(response.url)
            url = response.links.get("next", {}).get("url")
            if url in seen:
                raise GitHubError(f"{doing}: GitHub's next page link loops back to {url}")
            query = None  # the next link carries its own query
        raise GitHubError(f"{doing}: more than {MAX_PAGES} pages; stopping")

    # ------------------------------------------------------------ errors

    @staticmethod
    def _unchanged(method: str) -> str:
        if method == "GET":
            return "nothing was changed"
        return "GitHub rejected this change, so it took no effect"

    def _error(
        self,
        method: str,
        response: requests.Response,
        doing: str,
        needs: Permission,
        hint_422: str,
    ) -> GitHubError:
        status = response.status_code
        said = _message(response)
        unchanged = self._unchanged(method)
        headers = response.headers
        kind: type[GitHubError] = GitHubError
        if status == 401:
            kind, message = (
                AuthenticationError,
                (
                    f"GitHub rejected the token (401 {said}): ${TOKEN_ENV} is wrong, expired or "
                    f"revoked; {ACCESS_ADVICE}"
                ),
            )
        elif status in {403, 429} and (
            headers.get("x-ratelimit-remaining") == "0" or "rate limit" in said.lower()
        ):
            kind, message = (
                RateLimited,
                (
                    f"GitHub's API rate limit is used up ({status} {said}); try again after "
                    f"{_reset_time(headers.get('x-ratelimit-reset'))}"
                ),
            )
        elif status == 403:
            accepted = headers.get("x-accepted-github-permissions") or headers.get(
                "x-accepted-oauth-scopes"
            )
            also = f" (GitHub accepts: {accepted})" if accepted else ""
            kind, message = (
                PermissionDenied,
                (f"the token may not do this (403 {said}): {needs.describe()}{also}"),
            )
        elif status == 404:
            kind, message = (
                NotFound,
                (
                    f"not found (404 {said}): the repository does not exist or the token cannot "
                    "see it (a fine-grained token must be granted this repository; a classic token "
                    "needs the `repo` scope for a private one)"
                ),
            )
        elif status == 422:
            hint = f"; {hint_422}" if hint_422 else ""
            kind, message = ValidationFailed, f"GitHub refused the values (422 {said}){hint}"
        else:
            message = f"GitHub answered {status} {said}"
        return kind(self._scrub(f"{doing}: {message}; {unchanged}"), status)


def _json(response: requests.Response, doing: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise GitHubError(f"{doing}: GitHub answered {response.status_code} without JSON") from None


def _message(response: requests.Response) -> str:
    """GitHub's own words: `message`, the validation `errors`, else the reason phrase."""
    try:
        document = response.json()
    except ValueError:
        return response.reason or ""
    if not isinstance(document, dict):
        return response.reason or ""
    parts = [str(document.get("message") or response.reason or "")]
    for item in document.get("errors") or []:
        if isinstance(item, dict):
            detail = item.get("message") or " ".join(
                str(item[k]) for k in ("resource", "field", "code") if item.get(k)
            )
            parts.append(str(detail))
        else:
            parts.append(str(item))
    return ": ".join(p for p in parts if p)


def _reset_time(epoch: str | None) -> str:
    try:
        moment = dt.datetime.fromtimestamp(int(epoch or ""), dt.UTC)
    except ValueError:
        return "the hour"
    return moment.strftime("%H:%M UTC")
