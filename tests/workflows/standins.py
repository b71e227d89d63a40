"""Stand-ins for what the workflows reach and this machine lacks: AWS gaps, GitHub, actions.

- `AwsFront`: an HTTP front for the moto server. It forwards every request, except the
  AWS features moto does not have: Lambda Invoke (moto without Docker echoes the
  payload) is answered by the real model handler, run in-process as Lambda would run it
  (a version whose code came through UpdateFunctionCode from S3 runs that very code);
  API Gateway documentation versions (404 in moto) are kept in memory; CodeBuild builds
  really run (tests/codebuild_standin.py) instead of reporting success untouched.
- `GitHubApi`: the issue-comment endpoints of the GitHub REST API, paginated like GitHub,
  recording every request.
- `action_repos`: git repositories holding composite `action.yml` stand-ins for the
  remote actions the workflows pin, for act's `--local-repository`.
"""

from __future__ import annotations

import datetime as dt
import http.client
import importlib.util
import json
import re
import subprocess
import textwrap
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.codebuild_standin import CodeBuildRunner
from tests.lambda_standin import code_sha, run_handler

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)/invocations$")
_DOC_VERSIONS = re.compile(r"^/restapis/(?P<api>[^/]+)/documentation/versions(?:/(?P<v>[^/]+))?$")
_CODE = re.compile(r"^/2015-03-31/functions/[^/]+/code$")
_CODEBUILD = "CodeBuild_20161006."
_HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length", "server", "date"}


def _model_handler() -> Callable[[Any, Any], Any]:
    spec = importlib.util.spec_from_file_location(
        "standin_model_handler", ROOT / "infra/handlers/model/handler.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _serve(handler_class: type[BaseHTTPRequestHandler]) -> tuple[_Server, str]:
    server = _Server(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self._send(
            status,
            json.dumps(value).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )


# ---------------------------------------------------------------- AWS


class AwsFront:
    """moto behind a front that fills moto's two gaps the pipeline's verbs need."""

    def __init__(self, moto_endpoint: str) -> None:
        self.moto = urllib.parse.urlsplit(moto_endpoint)
        self.handler = _model_handler()
        self.doc_versions: dict[str, dict[str, dict]] = {}
        self.invocations: list[tuple[str, str]] = []
        self.codebuild = CodeBuildRunner(moto_endpoint)
        # CodeSha256 -> zip, for code uploaded through S3 (what scripts.train publishes).
        self.code: dict[str, bytes] = {}
        self.code_runs: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        front = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                front.handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET  # noqa: N815

        self.server, self.url = _serve(Handler)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.doc_versions.clear()
            self.invocations.clear()
            self.code.clear()
            self.code_runs.clear()
        self.codebuild = CodeBuildRunner(self.codebuild.endpoint)

    def handle(self, request: _Quiet) -> None:
        path, _, query = request.path.partition("?")
        body = request._body()
        invoke = _INVOKE.match(path)
        if invoke and request.command == "POST":
            qualifier = dict(urllib.parse.parse_qsl(query)).get("Qualifier", "$LATEST")
            return self._invoke(request, urllib.parse.unquote(invoke["function"]), qualifier, body)
        if _CODE.match(path) and request.command == "PUT":
            self._remember_code(json.loads(body or b"{}"))
        docs = _DOC_VERSIONS.match(path)
        if docs:
            return self._documentation(request, docs["api"], docs["v"], body)
        target = request.headers.get("X-Amz-Target", "")
        if target in {_CODEBUILD + "StartBuild", _CODEBUILD + "BatchGetBuilds"}:
            return self._codebuild(request, target.removeprefix(_CODEBUILD), body)
        return self._forward(request, body)

    def _relay(self, request: _Quiet, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        connection = http.client.HTTPConnection(self.moto.hostname, self.moto.port, timeout=60)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "connection"}
        connection.request(request.command, request.path, body=body or None, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        kept = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
        return response.status, payload, kept

    def _forward(self, request: _Quiet, body: bytes) -> None:
        request._send(*self._relay(request, body))

    def _codebuild(self, request: _Quiet, operation: str, body: bytes) -> None:
        status, payload, headers = self._relay(request, body)
        if status == 200:
            answer = json.loads(payload)
            if operation == "StartBuild":
                self.codebuild.execute(json.loads(body), answer["build"])
            else:
                answer["builds"] = [self.codebuild.amend(b) for b in answer["builds"]]
            payload = json.dumps(answer).encode()
        request._send(status, payload, headers)

    def _invoke(self, request: _Quiet, function: str, qualifier: str, body: bytes) -> None:
        name = function.rsplit(":", 1)[-1] if function.startswith("arn:") else function
        version = qualifier
        if not qualifier.isdigit() and qualifier != "$LATEST":
            # An alias: run what it points at, as Lambda reports it.
            alias = self._moto_json("GET", f"/2015-03-31/functions/{name}/aliases/{qualifier}")
            version = alias.get("FunctionVersion", "$LATEST")
        with self.lock:
            self.invocations.append((name, version))
        arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}:{qualifier}"
        context = SimpleNamespace(invoked_function_arn=arn, function_version=version)
        headers = {"X-Amz-Executed-Version": version}
        sha = self._code_sha(name, version)
        try:
            if sha in self.code:
                with self.lock:
                    self.code_runs.append((name, version, sha))
                result = run_handler(self.code[sha], json.loads(body or b"{}"), arn)
            else:
                result = self.handler(json.loads(body or b"{}"), context)
        except Exception as error:  # noqa: BLE001 - Lambda reports any error this way
            headers["X-Amz-Function-Error"] = "Unhandled"
            result = {"errorMessage": str(error), "errorType": type(error).__name__}
        request._json(200, result, headers)

    def _code_sha(self, name: str, version: str) -> str:
        # Through boto3: moto routes an unsigned request by its path, and /2015-03-31/...
        # would reach its S3.
        lam = self.codebuild._client("lambda")
        try:
            return lam.get_function_configuration(FunctionName=name, Qualifier=version)[
                "CodeSha256"
            ]
        except lam.exceptions.ResourceNotFoundException:
            return ""

    def _remember_code(self, params: dict) -> None:
        if "S3Bucket" in params:
            s3 = self.codebuild._client("s3")
            code = s3.get_object(Bucket=params["S3Bucket"], Key=params["S3Key"])["Body"].read()
            with self.lock:
                self.code[code_sha(code)] = code

    def _moto_json(self, method: str, path: str) -> dict:
        connection = http.client.HTTPConnection(self.moto.hostname, self.moto.port, timeout=60)
        connection.request(method, path)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        return json.loads(payload or b"{}") if response.status < 300 else {}

    def _documentation(self, request: _Quiet, api: str, version: str | None, body: bytes) -> None:
        with self.lock:
            versions = self.doc_versions.setdefault(api, {})
            if request.command == "POST" and version is None:
                spec = json.loads(body or b"{}")
                name = spec.get("documentationVersion", "")
                if name in versions:
                    return request._json(
                        409,
                        {"message": f"Documentation version {name} already exists"},
                        {"x-amzn-ErrorType": "ConflictException"},
                    )
                versions[name] = {
                    "version": name,
                    "createdDate": dt.datetime.now(dt.UTC).timestamp(),
                    "description": spec.get("description", ""),
                }
                return request._json(201, versions[name])
            if request.command == "GET" and version is None:
                return request._json(200, {"item": list(versions.values())})
            if version is not None and version in versions:
                if request.command == "DELETE":
                    del versions[version]
                    return request._send(202, b"")
                return request._json(200, versions[version])
        return request._json(
            404,
            {"message": f"Documentation version {version} not found"},
            {"x-amzn-ErrorType": "NotFoundException"},
        )


# ---------------------------------------------------------------- GitHub


@dataclass
class GitHubApi:
    """Issue comments of one repository, paginated as GitHub does (Link: rel="next")."""

    per_page_max: int = 100
    comments: dict[int, list[dict]] = field(default_factory=dict)
    environments: dict[str, dict] = field(default_factory=dict)
    # Every branch exists unless deleted here (GET .../branches/NAME answers 404).
    deleted_branches: set[str] = field(default_factory=set)
    requests: list[dict] = field(default_factory=list)
    next_id: int = 1000

    def __post_init__(self) -> None:
        api = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                api.handle(self)

            do_POST = do_PATCH = do_GET  # noqa: N815 - http.server's names

        self.server, self.url = _serve(Handler)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def environment(self, name: str, reviewers: list[str]) -> None:
        """An environment as GitHub describes it, gated by these users (none: ungated)."""
        rules = [
            {
                "type": "required_reviewers",
                "reviewers": [
                    {"type": "User", "reviewer": {"login": login, "id": index + 1}}
                    for index, login in enumerate(reviewers)
                ],
            }
        ]
        self.environments[name] = {"name": name, "protection_rules": rules if reviewers else []}

    def seed(self, pr: int, bodies: list[str]) -> list[int]:
        ids = []
        for body in bodies:
            self.next_id += 1
            self.comments.setdefault(pr, []).append({"id": self.next_id, "body": body})
            ids.append(self.next_id)
        return ids

    def handle(self, request: _Quiet) -> None:
        parsed = urllib.parse.urlsplit(request.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        body = request._body()
        self.requests.append(
            {
                "method": request.command,
                "path": parsed.path,
                "query": query,
                "authorization": request.headers.get("Authorization", ""),
                "body": json.loads(body) if body else None,
            }
        )
        environment = re.fullmatch(r"/repos/[^/]+/[^/]+/environments(?:/([^/]+))?", parsed.path)
        if environment and request.command == "GET":
            return self._environment(request, urllib.parse.unquote(environment[1] or ""))
        branch = re.fullmatch(r"/repos/[^/]+/[^/]+/branches/(.+)", parsed.path)
        if branch and request.command == "GET":
            return self._branch(request, urllib.parse.unquote(branch[1]))
        listing = re.fullmatch(r"/repos/[^/]+/[^/]+/issues/(\d+)/comments", parsed.path)
        single = re.fullmatch(r"/repos/[^/]+/[^/]+/issues/comments/(\d+)", parsed.path)
        if listing and request.command == "GET":
            return self._list(request, parsed.path, int(listing[1]), query)
        if listing and request.command == "POST":
            self.next_id += 1
            item = {"id": self.next_id, "body": json.loads(body)["body"]}
            self.comments.setdefault(int(listing[1]), []).append(item)
            return request._json(201, self._shown(item))
        if single and request.command == "PATCH":
            for items in self.comments.values():
                for item in items:
                    if item["id"] == int(single[1]):
                        item["body"] = json.loads(body)["body"]
                        return request._json(200, self._shown(item))
        return request._json(404, {"message": "Not Found"})

    def _branch(self, request: _Quiet, name: str) -> None:
        if name in self.deleted_branches:
            return request._json(404, {"message": "Branch not found"})
        return request._json(200, {"name": name, "protected": False})

    def _environment(self, request: _Quiet, name: str) -> None:
        if not name:
            items = list(self.environments.values())
            return request._json(200, {"total_count": len(items), "environments": items})
        if name in self.environments:
            return request._json(200, self.environments[name])
        return request._json(404, {"message": "Not Found"})

    def _shown(self, item: dict) -> dict:
        return {**item, "html_url": f"https://github.test/comments/{item['id']}"}

    def _list(self, request: _Quiet, path: str, pr: int, query: dict[str, str]) -> None:
        per_page = min(int(query.get("per_page", 30)), self.per_page_max)
        page = int(query.get("page", 1))
        items = self.comments.get(pr, [])
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            headers["Link"] = f'<{self.url}{path}?per_page={per_page}&page={page + 1}>; rel="next"'
        request._json(200, [self._shown(item) for item in chunk], headers)


# ---------------------------------------------------------------- actions

# Each remote action the workflows pin, and the composite action standing in for it.
STANDIN_ACTIONS: dict[str, str] = {
    "actions/checkout": """\
        name: checkout stand-in
        description: >-
          Copies the test's working tree into the workspace, as act does for a checkout of
          the event's own commit, and says which commit the job asked for, so tests can
          tell a pull request's head from its merge commit.
        inputs:
          ref: {description: the commit asked for, default: ""}
          persist-credentials: {description: ignored, default: "true"}
        runs:
          using: composite
          steps:
            - shell: bash
              env:
                REF: ${{ inputs.ref }}
              run: |
                cp -R "$STANDIN_WORKTREE"/. "$GITHUB_WORKSPACE"/
                echo "checkout stand-in: ref=$REF"
        """,
    "actions/setup-python": """\
        name: setup-python stand-in
        description: The host's Python (the test's virtualenv) is the runner's Python.
        inputs:
          python-version: {description: ignored, default: ""}
        runs:
          using: composite
          steps:
            - shell: bash
              run: |
                echo "setup-python stand-in: $(command -v python) ($(python --version))"
        """,
    "actions/cache": """\
        name: cache stand-in
        description: Caches nothing.
        inputs:
          path: {description: ignored, default: ""}
          key: {description: ignored, default: ""}
          restore-keys: {description: ignored, default: ""}
        runs:
          using: composite
          steps:
            - shell: bash
              run: |
                echo "cache stand-in: nothing restored or saved"
        """,
    "aws-actions/configure-aws-credentials": """\
        name: configure-aws-credentials stand-in
        description: >-
          Records the role a job asks for, then hands it dummy credentials for the
          moto-backed endpoint, as the real action hands over the role's credentials.
        inputs:
          role-to-assume: {description: role ARN, default: ""}
          aws-region: {description: region, default: ""}
        runs:
          using: composite
          steps:
            - shell: bash
              env:
                ROLE: ${{ inputs.role-to-assume }}
                REGION: ${{ inputs.aws-region }}
              run: |
                if [ -z "$ROLE" ] || [ -z "$REGION" ]; then
                  echo "::error::role-to-assume and aws-region are required" >&2; exit 1
                fi
                printf '{"job": "%s", "role": "%s", "region": "%s"}\\n' \\
                  "$GITHUB_JOB" "$ROLE" "$REGION" >> "$STANDIN_AWS_LOG"
                {
                  echo "AWS_ACCESS_KEY_ID=testing"
                  echo "AWS_SECRET_ACCESS_KEY=testing"
                  echo "AWS_SESSION_TOKEN=testing"
                  echo "AWS_REGION=$REGION"
                  echo "AWS_DEFAULT_REGION=$REGION"
                  echo "AWS_ENDPOINT_URL=$STANDIN_AWS_ENDPOINT"
                } >> "$GITHUB_ENV"
        """,
    "actions/upload-artifact": """\
        name: upload-artifact stand-in
        description: Keeps a directory's files under $STANDIN_ARTIFACTS/NAME.
        inputs:
          name: {description: artifact name, default: artifact}
          path: {description: a directory, default: ""}
          if-no-files-found: {description: warn or error, default: warn}
          retention-days: {description: ignored, default: ""}
          overwrite: {description: replace an artifact of the same name, default: "false"}
        runs:
          using: composite
          steps:
            - shell: bash
              env:
                NAME: ${{ inputs.name }}
                SOURCE: ${{ inputs.path }}
                MISSING: ${{ inputs.if-no-files-found }}
                OVERWRITE: ${{ inputs.overwrite }}
              run: |
                if [ -z "$(ls -A "$SOURCE" 2>/dev/null)" ]; then
                  echo "no files in $SOURCE"
                  [ "$MISSING" != "error" ] || exit 1
                  exit 0
                fi
                if [ -e "$STANDIN_ARTIFACTS/$NAME" ]; then
                  if [ "$OVERWRITE" != "true" ]; then
                    echo "::error::artifact $NAME was already uploaded in this run" >&2; exit 1
                  fi
                  rm -rf "${STANDIN_ARTIFACTS:?}/$NAME"
                fi
                mkdir -p "$STANDIN_ARTIFACTS/$NAME"
                cp -R "$SOURCE"/. "$STANDIN_ARTIFACTS/$NAME"/
        """,
    "actions/download-artifact": """\
        name: download-artifact stand-in
        description: Restores $STANDIN_ARTIFACTS/NAME into the path.
        inputs:
          name: {description: artifact name, default: ""}
          path: {description: a directory, default: "."}
        runs:
          using: composite
          steps:
            - shell: bash
              env:
                NAME: ${{ inputs.name }}
                TARGET: ${{ inputs.path }}
              run: |
                if [ ! -d "$STANDIN_ARTIFACTS/$NAME" ]; then
                  echo "::error::Artifact not found: $NAME" >&2; exit 1
                fi
                mkdir -p "$TARGET"
                cp -R "$STANDIN_ARTIFACTS/$NAME"/. "$TARGET"/
        """,
}

_USES = re.compile(r"^\s*-?\s*uses:\s*([\w.-]+/[\w.-]+)(?:/[^@\s]*)?@([0-9a-f]{40})\b", re.M)


def pinned_actions(root: Path = ROOT) -> set[tuple[str, str]]:
    """(owner/repo, sha) of every remote action the workflows and local actions use."""
    files = [
        *(root / ".github/workflows").glob("*.yml"),
        *(root / ".github/actions").rglob("*.yml"),
    ]
    return {(m[1], m[2]) for path in files for m in _USES.finditer(path.read_text())}


def _git(directory: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=stand-in", "-c", "user.email=stand-in@example.invalid", *args],
        cwd=directory,
        check=True,
        capture_output=True,
    )


def action_repos(base: Path, root: Path = ROOT) -> Iterator[str]:
    """Build one git repository per pinned action; yield act's --local-repository values."""
    for repo, sha in sorted(pinned_actions(root)):
        # act skips a checkout of the event's own ref in host mode and copies the working
        # tree; a checkout naming another ref (a pull request's head) runs this stand-in.
        if repo not in STANDIN_ACTIONS:
            raise LookupError(f"no stand-in for {repo}: add one to STANDIN_ACTIONS")
        directory = base / repo.replace("/", "__") / sha
        if not (directory / "action.yml").is_file():
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "action.yml").write_text(textwrap.dedent(STANDIN_ACTIONS[repo]))
            _git(directory, "init", "-q")
            _git(directory, "add", "action.yml")
            _git(directory, "commit", "-q", "-m", f"stand-in for {repo}")
        yield f"{repo}@{sha}={directory}"
