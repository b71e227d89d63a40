"""Release an API major version: point its stage at a new deployment, record its documentation.

    python -m scripts.release [--version v2] (--outputs FILE | --branch NAME) [--alias NAME]
        [--doc-version TEXT] [--description TEXT] [--check]

--version defaults to the newest version the stack outputs name (v10 after v9). Each
release's deployment description carries a fingerprint of the API's definition (resources,
methods, integrations); `--check` changes nothing and prints `api-version=` and
`release=true|false`: false when the stage's deployment already carries the fingerprint of
the definition as it is now, i.e. the API did not change since that version was released.

--alias may only name the stack's model alias (`live`): the API's Lambda permission lets
it invoke that qualifier alone, so a stage pointed at any other alias would answer 500.

Only the released version's stage moves; every other version's stage keeps the deployment
it serves. In order, so that nothing is ever left pointing at something missing:

1. check: the version is one the stack outputs name a stage for AND the API has a /VERSION
   resource, its stage exists, and the alias (default: the stack's model alias) exists on
   the model function. Otherwise exit 2, nothing changed, with the versions the API has.
2. create a deployment on no stage (harmless if a later step fails);
3. create the documentation version (default VERSION-DEPLOYMENTID, or
   VERSION-SHA12-DEPLOYMENTID when GITHUB_SHA is set). If this fails the new deployment is
   deleted again; a --doc-version the API already has is bad input (exit 2, nothing changed);
4. one update_stage call (deployment, stage variable `alias`, documentation version), so the
   stage moves in one step; if it fails the new deployment is deleted again;
5. emit a `released` event naming the model version the alias serves.

Re-running creates another deployment even when nothing changed: API Gateway deployments
carry no content hash to compare with the one the stage serves. That is harmless (the old
deployment stays available to point back to) and each release is recorded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from infra import naming
from scripts import events
from scripts.lib import aws, cli, outputs, summary
from scripts.lib.progress import Progress

ALIAS_VARIABLE = naming.STAGE_ALIAS_VARIABLE

# Lambda's own rule for alias names (botocore's model of CreateAlias.Name).
_ALIAS_NAME_RE = re.compile(r"(?!^[0-9]+$)[a-zA-Z0-9_-]{1,128}")
# API Gateway sets no documented limit, but the version appears in URL paths
# (GetDocumentationVersion) and in the stage: keep it to URL-safe characters.
_DOC_VERSION_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")

Emit = Callable[..., object]


@dataclass(frozen=True)
class ReleaseResult:
    api_id: str
    version: str
    stage: str
    previous_deployment: str
    deployment_id: str
    alias: str
    model_version: str
    documentation_version: str
    description: str

    @property
    def message(self) -> str:
        return (
            f"released {self.version}: stage {self.stage} of API {self.api_id} serves deployment "
            f"{self.deployment_id} (was {self.previous_deployment}) through alias {self.alias} "
            f"(model version {self.model_version}), documentation {self.documentation_version}"
        )


# --- checks, all before anything changes ----------------------------------------------


def check_alias_name(alias: str, invokable: str | None = None, function: str = "") -> None:
    if not _ALIAS_NAME_RE.fullmatch(alias):
        raise aws.UsageError(
            f"--alias {alias!r} is not a Lambda alias name: 1-128 letters, digits, '-' or '_', "
            "not only digits (e.g. live)"
        )
    if invokable is not None and alias != invokable:
        raise aws.UsageError(
            f"--alias {alias}: the API may invoke only alias {invokable!r} of {function} "
            f"(its Lambda permission names that qualifier alone), so a stage serving {alias!r} "
            f"would answer HTTP 500; pass --alias {invokable} or leave it out"
        )


def check_doc_version(text: str) -> None:
    if not _DOC_VERSION_RE.fullmatch(text):
        raise aws.UsageError(
            f"--doc-version {text!r} must be 1-64 letters, digits, '.', '_' or '-' "
            "(e.g. v2-2024-06-01)"
        )


def _major(version: str) -> int:
    return int(version[1:])


def api_versions(apigw_client: Any, api_id: str) -> list[str]:
    """The major versions the API serves: its top-level /vN resources, in order."""
    resources = aws.pages(apigw_client, "get_resources", "items", restApiId=api_id)
    found = []
    for resource in resources:
        path = resource.get("path", "")
        part = path[1:]
        if path.count("/") != 1 or not part:
            continue
        try:
            naming.check_api_version(part)
        except naming.NamingError:
            continue  # a path that is not a major version (/health, ...) is not releasable
        found.append(part)
    return sorted(found, key=_major)


def require_release_target(
    apigw_client: Any, api_id: str, version: str, stages: Mapping[str, str]
) -> tuple[str, dict]:
    """The stage of `version` and its current state; UsageError when there is nothing to release."""
    served = api_versions(apigw_client, api_id)
    releasable = [v for v in served if v in stages]
    if version not in releasable:
        has = ", ".join(releasable) or "none"
        if version in stages:
            why = (
                f"the stack outputs name stage {stages[version]!r} for it but API {api_id} has "
                f"no /{version} resource; deploy the stack with {version} in config apiVersions"
            )
        elif version in served:
            why = (
                f"API {api_id} has /{version} but the stack outputs name no stage for it; "
                "re-read the outputs after the stack's last deploy"
            )
        else:
            why = f"API {api_id} has no version {version!r}"
        raise aws.UsageError(f"--version {version}: {why} (it has: {has}); pass one of those")
    stage = stages[version]
    try:
        current = apigw_client.get_stage(restApiId=api_id, stageName=stage)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NotFoundException":
            raise aws.UsageError(
                f"--version {version}: API {api_id} has no stage {stage!r} for it; the stack's "
                "deploy creates stages, deploy it first"
            ) from None
        raise aws.translate(error, f"reading stage {stage} of API {api_id}") from error
    return stage, current


def alias_state(lambda_client: Any, function: str, alias: str) -> tuple[str, dict[str, float]]:
    """The model version the alias serves, and any weights of a traffic shift in progress."""
    try:
        response = lambda_client.get_alias(FunctionName=function, Name=alias)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise aws.UsageError(
                f"--alias {alias}: function {function} has no alias {alias!r}; pass one it has "
                "(the stack's own alias is its output model_alias)"
            ) from None
        raise aws.translate(error, f"reading alias {alias} of {function}") from error
    weights = (response.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return str(response["FunctionVersion"]), dict(weights)


def newest_version(stages: Mapping[str, str]) -> str:
    versions = [v for v in stages if re.fullmatch(r"v\d+", v)]
    if not versions:
        raise aws.UsageError(f"the stack outputs' api_stages name no version vN: {dict(stages)!r}")
    return max(versions, key=_major)


def definition_fingerprint(apigw_client: Any, api_id: str) -> str:
    """A digest of what a new deployment would snapshot: every path, method and integration."""
    resources = aws.pages(apigw_client, "get_resources", "items", restApiId=api_id)
    shape = []
    for resource in sorted(resources, key=lambda r: r.get("path", "")):
        for method in sorted(resource.get("resourceMethods") or {}):
            detail = aws.call(
                f"reading {method} {resource.get('path')} of API {api_id}",
                apigw_client.get_method,
                restApiId=api_id,
                resourceId=resource["id"],
                httpMethod=method,
            )
            integration = detail.get("methodIntegration") or {}
            shape.append(
                {
                    "path": resource.get("path"),
                    "method": method,
                    "authorization": detail.get("authorizationType"),
                    "api_key": detail.get("apiKeyRequired", False),
                    "integration": {k: integration.get(k) for k in ("type", "httpMethod", "uri")},
                }
            )
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()
    return digest[:16]


def _fingerprint_tag(fingerprint: str) -> str:
    return f"[definition {fingerprint}]"


def release_check(
    apigw_client: Any, api_id: str, version: str, stages: Mapping[str, str]
) -> tuple[dict[str, str], str]:
    """Whether releasing `version` would change what its stage serves; outputs and summary."""
    stage, current = require_release_target(apigw_client, api_id, version, stages)
    fingerprint = definition_fingerprint(apigw_client, api_id)
    served = ""
    if current.get("deploymentId"):
        served = aws.call(
            f"reading deployment {current['deploymentId']} of API {api_id}",
            apigw_client.get_deployment,
            restApiId=api_id,
            deploymentId=current["deploymentId"],
        ).get("description", "")
    needed = _fingerprint_tag(fingerprint) not in served
    values = {"api-version": version, "release": "true" if needed else "false"}
    if needed:
        line = (
            f"Release of API {version} awaits approval in `api-release` (its definition changed)."
        )
    else:
        line = (
            f"Release skipped: stage {stage} already serves API {version}'s definition as it "
            f"is now (fingerprint {fingerprint})."
        )
    return values, line


# --- the release ----------------------------------------------------------------------


def _short(git_sha: str | None) -> str:
    return git_sha[:12] if git_sha else ""


def _discard(apigw_client: Any, api_id: str, deployment_id: str) -> tuple[bool, str]:
    """Delete a deployment this run created and could not finish; whether it went, and how."""
    # API Gateway refuses to delete a deployment a stage uses, so this can never
    # take a serving deployment away, whatever state the failed step left.
    try:
        apigw_client.delete_deployment(restApiId=api_id, deploymentId=deployment_id)
    except ClientError as error:
        detail = error.response.get("Error", {}).get("Message", str(error))
        return False, (
            f"the new deployment {deployment_id} could NOT be deleted ({detail}); check which "
            f"deployment the stage serves (aws apigateway get-stage) before deleting it by hand"
        )
    return True, f"the new deployment {deployment_id} was deleted again; the stage is unchanged"


def release(
    apigw_client: Any,
    lambda_client: Any,
    *,
    api_id: str,
    version: str,
    stages: Mapping[str, str],
    function: str,
    alias: str,
    doc_version: str | None = None,
    description: str | None = None,
    git_sha: str | None = None,
    invokable_alias: str | None = None,
    progress: Progress | None = None,
    emit: Emit | None = None,
) -> ReleaseResult:
    """Point `version`'s stage at a new deployment serving `alias`; other stages stay."""
    check_alias_name(alias, invokable_alias, function)
    if doc_version is not None:
        check_doc_version(doc_version)
    if git_sha:
        try:
            naming.check_git_sha(git_sha)
        except naming.NamingError as error:
            raise aws.UsageError(f"GITHUB_SHA: {error}") from None
    progress = progress or Progress("release", total=5 if emit else 4)
    stage, current = require_release_target(apigw_client, api_id, version, stages)
    previous = current.get("deploymentId", "")
    model_version, weights = alias_state(lambda_client, function, alias)
    progress.step(
        f"{version} releasable: stage {stage} serves deployment {previous or 'none'}; "
        f"alias {alias} serves model version {model_version}"
    )

    if description is None:
        description = f"release {version} with alias {alias} (model version {model_version})"
        if git_sha:
            description += f" at {_short(git_sha)}"
    # What this deployment snapshots, so a later deploy can tell whether the API changed.
    fingerprint = _fingerprint_tag(definition_fingerprint(apigw_client, api_id))
    # No stageName: until step 3 no stage serves this deployment, so stopping
    # anywhere before that changes nothing anyone calls.
    deployment_id = aws.call(
        f"creating a deployment of API {api_id}",
        apigw_client.create_deployment,
        restApiId=api_id,
        description=f"{description} {fingerprint}",
    )["id"]
    progress.step(f"created deployment {deployment_id} (on no stage yet)")

    if doc_version is None:
        parts = [version, _short(git_sha), deployment_id]
        doc_version = "-".join(p for p in parts if p)
    try:
        apigw_client.create_documentation_version(
            restApiId=api_id, documentationVersion=doc_version, description=description
        )
    except ClientError as error:
        cleaned, cleanup = _discard(apigw_client, api_id, deployment_id)
        # Exit 2 promises nothing changed: only true once the deployment is gone.
        if cleaned and error.response.get("Error", {}).get("Code") == "ConflictException":
            raise aws.UsageError(
                f"--doc-version {doc_version}: API {api_id} already has this documentation "
                f"version; pass a new one ({cleanup})"
            ) from None
        raise aws.ScriptError(
            f"{aws.translate(error, f'recording documentation version {doc_version}')}; {cleanup}"
        ) from error
    progress.step(f"recorded documentation version {doc_version}")

    # One call, so the stage switches deployment, alias and documentation together.
    try:
        apigw_client.update_stage(
            restApiId=api_id,
            stageName=stage,
            patchOperations=[
                {"op": "replace", "path": "/deploymentId", "value": deployment_id},
                {"op": "replace", "path": f"/variables/{ALIAS_VARIABLE}", "value": alias},
                {"op": "replace", "path": "/documentationVersion", "value": doc_version},
            ],
        )
    except ClientError as error:
        _, cleanup = _discard(apigw_client, api_id, deployment_id)
        raise aws.ScriptError(
            f"{aws.translate(error, f'pointing stage {stage} at deployment {deployment_id}')}; "
            f"{cleanup}; documentation version {doc_version} stays (it serves nothing)"
        ) from error
    progress.step(f"stage {stage} serves deployment {deployment_id} with alias {alias}")

    result = ReleaseResult(
        api_id=api_id,
        version=version,
        stage=stage,
        previous_deployment=previous,
        deployment_id=deployment_id,
        alias=alias,
        model_version=model_version,
        documentation_version=doc_version,
        description=description,
    )
    if emit:
        fields: dict[str, Any] = {
            "version": model_version,
            "api_version": version,
            "stage": stage,
            "deployment_id": deployment_id,
            "previous_deployment": previous,
            "alias": alias,
            "documentation_version": doc_version,
        }
        if weights:
            fields["alias_weights"] = weights
        try:
            emit("released", **fields)
        except aws.ScriptError as error:
            # The stage has moved: this is not "nothing changed", whatever the cause.
            raise aws.ScriptError(
                f"{result.message}; but the 'released' event was not recorded: {error}"
            ) from error
        progress.step("released event emitted")
    return result


def markdown(result: ReleaseResult, url: str) -> str:
    return "\n".join(
        [
            f"### Release of API `{result.version}`",
            "",
            summary.table(
                ["version", "stage", "deployment", "alias", "documentation version", "URL"],
                [
                    [
                        result.version,
                        result.stage,
                        f"{result.previous_deployment or 'none'} -> {result.deployment_id}",
                        f"{result.alias} (model version {result.model_version})",
                        result.documentation_version,
                        url or "n/a",
                    ]
                ],
            ),
        ]
    )


def _doc_version_arg(text: str) -> str:
    try:
        check_doc_version(text)
    except aws.UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = cli.parser("release", __doc__.splitlines()[0])
    parser.add_argument(
        "--version",
        type=cli.api_version_arg,
        help="API major version to release, e.g. v2 (default: the newest)",
    )
    outputs.add_arguments(parser)
    parser.add_argument(
        "--alias", help="Lambda alias the stage serves (default: the stack output model_alias)"
    )
    parser.add_argument(
        "--doc-version",
        type=_doc_version_arg,
        help="documentation version (default: VERSION-DEPLOYMENTID, with the commit's "
        "first 12 hex digits before the id when GITHUB_SHA is set)",
    )
    parser.add_argument("--description", help="deployment description (default: generated)")
    parser.add_argument(
        "--check", action="store_true", help="change nothing; print api-version= and release="
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parsed(parse_args, sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args

    def body() -> int:
        stack = outputs.load(args)
        api_id = stack.require("api_id")
        stages = stack.require("api_stages")
        if not isinstance(stages, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in stages.items()
        ):
            raise aws.UsageError(
                f"stack outputs from {stack.source}: 'api_stages' must map versions to stage "
                f'names, e.g. {{"v1": "v1"}}; got {stages!r}'
            )
        version = args.version or newest_version(stages)
        if args.check:
            values, line = release_check(
                aws.client("apigateway", stack.region), api_id, version, stages
            )
            summary.report_check("release", values, line)
            return 0
        function = stack.require("model_function")
        invokable = stack.require("model_alias")
        alias = args.alias or invokable
        emit = events.emitter(aws.client("events", stack.region), stack, function)

        result = release(
            aws.client("apigateway", stack.region),
            aws.client("lambda", stack.region),
            api_id=api_id,
            version=version,
            stages=stages,
            function=function,
            alias=alias,
            doc_version=args.doc_version,
            description=args.description,
            git_sha=os.environ.get("GITHUB_SHA") or None,
            invokable_alias=invokable,
            emit=emit,
        )
        urls = stack.values.get("api_urls")
        report = markdown(result, urls.get(version, "") if isinstance(urls, dict) else "")
        print(report)
        summary.write_step_summary(report)
        print(f"release: {result.message}", file=sys.stderr)
        return 0

    return aws.run("release", body)


if __name__ == "__main__":
    raise SystemExit(main())
