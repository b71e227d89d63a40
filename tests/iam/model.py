"""The access model as the synthesized program states it: roles, trust, policies, keys.

Everything is read from `synth --format json` output (each resource's full
inputs), never from the component's Python: the tests judge what would be
deployed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from infra import config, naming
from infra.components import ci_access, ci_duties
from scripts import synth
from tests.iam.actions import Call
from tests.iam.evaluator import (
    ALLOW,
    Request,
    can_assume_with_web_identity,
    evaluate,
    evaluate_kms,
)

# Mixed case on purpose: GitHub's `sub` carries the repository as GitHub spells it.
REPOSITORY = "Acme-Labs/Model.Factory"
ACCOUNT = synth.MOCK_ACCOUNT_ID
ISSUER = ci_duties.GITHUB_OIDC_HOST
# Stands in for the AWS managed ReadOnlyAccess policy the preview role carries:
# it grants List/Get/Describe-style reads on everything (and no writes).
READ_ONLY_STANDIN = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["*:Get*", "*:List*", "*:Describe*"], "Resource": "*"}
    ],
}
MANAGED = {ci_duties.READ_ONLY_POLICY: READ_ONLY_STANDIN}


@dataclass(frozen=True)
class Role:
    duty: str
    arn: str
    trust: Mapping[str, Any]
    policies: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class AccessModel:
    project: str
    region: str
    roles: Mapping[str, Role]
    boundaries: Mapping[str, Mapping[str, Any]]  # policy ARN -> permissions boundary
    key_policies: Mapping[str, Mapping[str, Any]]  # key ARN -> key policy
    outputs: Mapping[str, Any]
    resources: tuple[Mapping[str, Any], ...]

    @property
    def provider_arn(self) -> str:
        return str(self.outputs["oidc_provider_arn"])

    @property
    def state_bucket(self) -> str:
        return str(self.outputs["state_bucket"])

    def assumable(self, sub: str, aud: str = ci_duties.AUDIENCE) -> set[str]:
        claims = {"sub": sub, "aud": aud}
        return {
            duty
            for duty, role in self.roles.items()
            if can_assume_with_web_identity(role.trust, self.provider_arn, claims, ISSUER)
        }

    def decide(self, duty: str, request: Request) -> str:
        role = self.roles[duty]
        request = Request(request.action, request.resource, request.context, role.arn)
        key_policy = self.key_policies.get(request.resource)
        if key_policy is not None:
            return evaluate_kms(role.policies, key_policy, request)
        resource_policy = self.resource_policy(request.resource)
        return evaluate(list(role.policies), request, resource=resource_policy)

    def granting_everything(self) -> AccessModel:
        """The same roles with `Allow * on *` added to each: what stops a call now is a deny
        (a role's own, its boundary's, a key's or the state bucket's), not a missing grant."""
        anything = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        roles = {
            duty: dataclasses.replace(role, policies=(*role.policies, anything))
            for duty, role in self.roles.items()
        }
        return dataclasses.replace(self, roles=roles)

    def refused(self, duty: str, calls: Iterable[Call]) -> list[tuple[str, str]]:
        """The (action, resource) of each call the duty's role may not make."""
        return [k for k, decision in self._decisions(duty, calls).items() if decision != ALLOW]

    def granted(self, duty: str, calls: Iterable[Call]) -> list[tuple[str, str]]:
        """The (action, resource) of each call the duty's role may make."""
        return [k for k, decision in self._decisions(duty, calls).items() if decision == ALLOW]

    def _decisions(self, duty: str, calls: Iterable[Call]) -> dict[tuple[str, str], str]:
        return {(c.action, c.resource): self.decide(duty, c.request()) for c in calls}

    def resource_policy(self, arn: str) -> Mapping[str, Any] | None:
        bucket = f"arn:aws:s3:::{self.state_bucket}"
        if arn == bucket or arn.startswith(bucket + "/"):
            return self.bucket_policy
        return None

    @cached_property
    def bucket_policy(self) -> Mapping[str, Any]:
        (policy,) = [
            json.loads(r["inputs"]["policy"])
            for r in self.resources
            if r["type"] == "aws:s3/bucketPolicy:BucketPolicy"
            and r["inputs"]["bucket"] == self.state_bucket
        ]
        return policy


def rows(synthesis: synth.Synthesis) -> list[dict[str, Any]]:
    """The inventory as `synth --format json` writes it."""
    return json.loads(synth.render_json(synthesis))["resources"]


@cache
def shared_model(region: str | None = None) -> AccessModel:
    """The shared stack's access, in Pulumi.yaml's region unless `region` is given.

    For the moto tier, whose stack stands in its own region; the unit tests take the
    session fixture `access` (tests/conftest.py) instead.
    """
    overrides: dict[str, object] = {"githubRepository": REPOSITORY}
    if region is not None:
        overrides["aws:region"] = region
    return access_model(synth.synthesize(naming.SHARED_STACK, overrides=overrides))


def access_model(synthesis: synth.Synthesis) -> AccessModel:
    """The access a synthesized shared stack (its githubRepository REPOSITORY) states."""
    document = json.loads(synth.render_json(synthesis))
    resources = tuple(document["resources"])
    by_name = {(r["type"], r["name"]): r for r in resources}
    outputs = document["outputs"]
    roles = {}
    for duty in ci_duties.DUTIES:
        role = by_name[("aws:iam/role:Role", f"ci-{duty}")]["inputs"]
        inline = by_name[("aws:iam/rolePolicy:RolePolicy", f"ci-{duty}-policy")]["inputs"]
        managed = [MANAGED[arn] for arn in role.get("managedPolicyArns") or []]
        roles[duty] = Role(
            duty=duty,
            arn=outputs[ci_access.output_name(duty)],
            trust=json.loads(role["assumeRolePolicy"]),
            policies=(json.loads(inline["policy"]), *managed),
        )
    key_policies = {
        outputs["secrets_key_arn"]: json.loads(
            by_name[("aws:kms/keyPolicy:KeyPolicy", "ci-secrets-policy")]["inputs"]["policy"]
        ),
        outputs["ephemeral_secrets_key_arn"]: json.loads(
            by_name[("aws:kms/keyPolicy:KeyPolicy", "ci-ephemeral-secrets-policy")]["inputs"][
                "policy"
            ]
        ),
    }
    boundaries = {
        f"arn:aws:iam::{ACCOUNT}:policy/{r['inputs']['name']}": json.loads(r["inputs"]["policy"])
        for r in resources
        if r["type"] == "aws:iam/policy:Policy"
    }
    return AccessModel(
        project=document["project"],
        region=str(outputs["region"]),
        roles=roles,
        boundaries=boundaries,
        key_policies=key_policies,
        outputs=outputs,
        resources=resources,
    )


def settings() -> config.Settings:
    return config.settings_for_stack(naming.SHARED_STACK)


def protected_branches() -> list[str]:
    s = settings()
    return list(dict.fromkeys([s.default_branch, *s.protected_branches]))
