"""Versioned ML dependencies: one CodeArtifact index for PyPI and the team's own packages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components import type_token
from infra.components.base import child, policy_document, retained, statement

# Actions that AWS scopes to the repository resource itself (ReadFromRepository
# cannot be granted on package ARNs at all).
REPOSITORY_READ_ACTIONS = (
    "codeartifact:ReadFromRepository",
    "codeartifact:DescribeRepository",
    "codeartifact:GetRepositoryEndpoint",
    "codeartifact:ListPackages",
)
# Actions that AWS scopes to package resources inside the repository.
PACKAGE_READ_ACTIONS = ("codeartifact:ListPackageVersions",)
# ListPackageVersionAssets lets a re-publish of an unchanged version be told from a conflict.
PUBLISH_ACTIONS = (
    "codeartifact:PublishPackageVersion",
    "codeartifact:PutPackageMetadata",
    "codeartifact:ListPackageVersionAssets",
)
# sts:GetServiceBearerToken is also needed for a token, but AWS ignores it in
# resource policies: it belongs in the callers' IAM policies, not here.
DOMAIN_ACTIONS = ("codeartifact:GetAuthorizationToken",)


@dataclass(frozen=True)
class DependenciesArgs:
    domain: str
    store_repository: str
    team_repository: str
    reader_principals: tuple[pulumi.Input[str], ...]
    publisher_principals: tuple[pulumi.Input[str], ...]

    def __post_init__(self) -> None:
        # A policy with an empty Principal is rejected by AWS at apply time;
        # fail while the program runs, where the cause is obvious.
        if not self.reader_principals:
            raise ValueError("Dependencies needs at least one reader principal")


def packages_arn(repository_arn: str) -> str:
    """Every package in a repository, from the repository's own ARN.

    `arn:...:repository/<domain>/<repo>` -> `arn:...:package/<domain>/<repo>/*`
    (package ARNs continue with `/<format>/<namespace>/<name>`).
    """
    head, _, path = repository_arn.partition(":repository/")
    if not path:
        raise ValueError(f"{repository_arn!r} is not a CodeArtifact repository ARN")
    return f"{head}:package/{path}/*"


class Dependencies(pulumi.ComponentResource):
    domain: aws.codeartifact.Domain
    store: aws.codeartifact.Repository
    team: aws.codeartifact.Repository

    def __init__(
        self, name: str, args: DependenciesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(type_token("Dependencies"), name, None, opts)
        # Lives in the account-wide `shared` stack: every branch resolves its
        # packages here, so it is always protected and survives a destroy.
        # encryption_key is left unset on purpose: the AWS-managed
        # aws/codeartifact key encrypts the assets at rest and access is decided
        # by the policies below. A customer key would add a key policy to keep
        # in step and a monthly cost, and could never be swapped later: a
        # domain's key is fixed at creation, so changing it replaces the domain.
        self.domain = aws.codeartifact.Domain(
            f"{name}-domain",
            domain=args.domain,
            opts=retained(self, True),
        )
        self.store = aws.codeartifact.Repository(
            f"{name}-store",
            repository=args.store_repository,
            domain=self.domain.domain,
            description="Cache of public PyPI; the team repository's upstream",
            external_connections={"external_connection_name": "public:pypi"},
            opts=retained(self, True),
        )
        # One index for both: the team's own packages first, PyPI through the store.
        self.team = aws.codeartifact.Repository(
            f"{name}-team",
            repository=args.team_repository,
            domain=self.domain.domain,
            description="The team's packages, with public PyPI through the store upstream",
            upstreams=[{"repository_name": self.store.repository}],
            opts=retained(self, True),
        )

        readers = [*args.reader_principals, *args.publisher_principals]
        aws.codeartifact.DomainPermissions(
            f"{name}-domain-policy",
            domain=self.domain.domain,
            policy_document=policy_document(
                [
                    statement(
                        DOMAIN_ACTIONS,
                        [self.domain.arn],
                        Sid="GetAuthorizationToken",
                        Principal={"AWS": readers},
                    )
                ]
            ),
            opts=child(self),
        )
        aws.codeartifact.RepositoryPermissionsPolicy(
            f"{name}-store-policy",
            domain=self.domain.domain,
            repository=self.store.repository,
            policy_document=policy_document(_read_statements(self.store, readers)),
            opts=child(self),
        )
        team_statements = _read_statements(self.team, readers)
        # No publishers, no statement: an empty Principal is invalid, and a
        # broader one would let readers publish.
        if args.publisher_principals:
            team_statements.append(
                statement(
                    PUBLISH_ACTIONS,
                    [self.team.arn.apply(packages_arn)],
                    Sid="Publish",
                    Principal={"AWS": list(args.publisher_principals)},
                )
            )
        aws.codeartifact.RepositoryPermissionsPolicy(
            f"{name}-team-policy",
            domain=self.domain.domain,
            repository=self.team.repository,
            policy_document=policy_document(team_statements),
            opts=child(self),
        )
        self.register_outputs(
            {
                "domain": self.domain.domain,
                "domain_arn": self.domain.arn,
                "store": self.store.repository,
                "team": self.team.repository,
                "team_arn": self.team.arn,
            }
        )


def _read_statements(
    repository: aws.codeartifact.Repository, principals: list[pulumi.Input[str]]
) -> list[dict[str, Any]]:
    """Read-only access, each action on the resource type AWS scopes it to."""
    return [
        statement(
            REPOSITORY_READ_ACTIONS,
            [repository.arn],
            Sid="ReadRepository",
            Principal={"AWS": principals},
        ),
        statement(
            PACKAGE_READ_ACTIONS,
            [repository.arn.apply(packages_arn)],
            Sid="ListPackageVersions",
            Principal={"AWS": principals},
        ),
    ]
