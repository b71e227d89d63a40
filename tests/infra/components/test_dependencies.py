import json

import pulumi
import pytest

from infra.components.dependencies import Dependencies, DependenciesArgs, packages_arn
from scripts.synth import SynthError, run_under_mocks

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# An account and region the component is never told: ARNs that carry them can
# only have come from the resources' own outputs.
ACCOUNT = "210987654321"
REGION = "eu-west-1"
DOMAIN = "mlship"
STORE = "mlship-pypi-store"
TEAM = "mlship-ml"
READER = f"arn:aws:iam::{ACCOUNT}:root"
PUBLISHER = f"arn:aws:iam::{ACCOUNT}:role/mlship-deploy"
PREFIX = f"arn:aws:codeartifact:{REGION}:{ACCOUNT}"
DOMAIN_ARN = f"{PREFIX}:domain/{DOMAIN}"
STORE_ARN = f"{PREFIX}:repository/{DOMAIN}/{STORE}"
TEAM_ARN = f"{PREFIX}:repository/{DOMAIN}/{TEAM}"
STORE_PACKAGES = f"{PREFIX}:package/{DOMAIN}/{STORE}/*"
TEAM_PACKAGES = f"{PREFIX}:package/{DOMAIN}/{TEAM}/*"

DOMAIN_TYPE = "aws:codeartifact/domain:Domain"
REPOSITORY_TYPE = "aws:codeartifact/repository:Repository"
DOMAIN_POLICY_TYPE = "aws:codeartifact/domainPermissions:DomainPermissions"
REPOSITORY_POLICY_TYPE = "aws:codeartifact/repositoryPermissionsPolicy:RepositoryPermissionsPolicy"
REPOSITORY_READ = [
    "codeartifact:ReadFromRepository",
    "codeartifact:DescribeRepository",
    "codeartifact:GetRepositoryEndpoint",
    "codeartifact:ListPackages",
]


def synth(publishers=(PUBLISHER,), readers=(READER,), output_reader=False):
    def build():
        # A principal that is still an Output (e.g. a role's ARN) must resolve too.
        reader_inputs = (
            tuple(pulumi.Output.from_input(r) for r in readers) if output_reader else readers
        )
        Dependencies(
            "dependencies",
            DependenciesArgs(
                domain=DOMAIN,
                store_repository=STORE,
                team_repository=TEAM,
                reader_principals=reader_inputs,
                publisher_principals=publishers,
            ),
        )

    return run_under_mocks(
        build, project="mlship", stack="shared", region=REGION, account_id=ACCOUNT
    )


def policy(synthesis, type_, name):
    return json.loads(synthesis.one(type_, name).inputs["policyDocument"])


def by_sid(document):
    sids = [s["Sid"] for s in document["Statement"]]
    assert len(sids) == len(set(sids))
    return {s["Sid"]: s for s in document["Statement"]}


def test_domain_and_repositories_are_protected_and_retained():
    s = synth()
    data = [s.one(DOMAIN_TYPE, "dependencies-domain"), *s.of_type(REPOSITORY_TYPE)]
    assert len(data) == 3
    for r in data:
        assert r.protect, r.name
        assert r.retain_on_delete, r.name


def test_physical_names_come_from_args():
    s = synth()
    assert s.one(DOMAIN_TYPE, "dependencies-domain").inputs["domain"] == DOMAIN
    store = s.one(REPOSITORY_TYPE, "dependencies-store").inputs
    team = s.one(REPOSITORY_TYPE, "dependencies-team").inputs
    assert (store["domain"], store["repository"]) == (DOMAIN, STORE)
    assert (team["domain"], team["repository"]) == (DOMAIN, TEAM)


def test_domain_uses_the_aws_managed_key():
    assert "encryptionKey" not in synth().one(DOMAIN_TYPE, "dependencies-domain").inputs


def test_store_caches_public_pypi():
    store = synth().one(REPOSITORY_TYPE, "dependencies-store").inputs
    assert store["externalConnections"] == {"externalConnectionName": "public:pypi"}
    assert "upstreams" not in store


def test_team_resolves_pypi_through_the_store():
    s = synth()
    team = s.one(REPOSITORY_TYPE, "dependencies-team")
    store = s.one(REPOSITORY_TYPE, "dependencies-store")
    assert team.inputs["upstreams"] == [{"repositoryName": STORE}]
    assert "externalConnections" not in team.inputs
    # The upstream is wired from the store's output, so the store exists first.
    assert store.urn in team.depends_on


def test_every_child_is_parented_to_the_component():
    s = synth()
    component = s.one("mlship:components:Dependencies", "dependencies")
    children = [r for r in s.resources if r is not component]
    assert len(children) == 6
    assert all(r.parent == component.urn for r in children)
    assert all(r.name.startswith("dependencies-") for r in children)


def test_domain_policy_lets_readers_and_publishers_get_a_token():
    document = policy(synth(), DOMAIN_POLICY_TYPE, "dependencies-domain-policy")
    assert document["Statement"] == [
        {
            "Sid": "GetAuthorizationToken",
            "Effect": "Allow",
            "Action": ["codeartifact:GetAuthorizationToken"],
            "Resource": [DOMAIN_ARN],
            "Principal": {"AWS": [READER, PUBLISHER]},
        }
    ]


def test_domain_policy_applies_to_the_domain():
    s = synth()
    assert s.one(DOMAIN_POLICY_TYPE, "dependencies-domain-policy").inputs["domain"] == DOMAIN


def test_store_policy_is_read_only():
    s = synth()
    inputs = s.one(REPOSITORY_POLICY_TYPE, "dependencies-store-policy").inputs
    assert (inputs["domain"], inputs["repository"]) == (DOMAIN, STORE)
    statements = by_sid(json.loads(inputs["policyDocument"]))
    assert statements == {
        "ReadRepository": {
            "Sid": "ReadRepository",
            "Effect": "Allow",
            "Action": REPOSITORY_READ,
            "Resource": [STORE_ARN],
            "Principal": {"AWS": [READER, PUBLISHER]},
        },
        "ListPackageVersions": {
            "Sid": "ListPackageVersions",
            "Effect": "Allow",
            "Action": ["codeartifact:ListPackageVersions"],
            "Resource": [STORE_PACKAGES],
            "Principal": {"AWS": [READER, PUBLISHER]},
        },
    }


def test_team_policy_lets_only_publishers_publish():
    s = synth()
    inputs = s.one(REPOSITORY_POLICY_TYPE, "dependencies-team-policy").inputs
    assert (inputs["domain"], inputs["repository"]) == (DOMAIN, TEAM)
    statements = by_sid(json.loads(inputs["policyDocument"]))
    assert set(statements) == {"ReadRepository", "ListPackageVersions", "Publish"}
    assert statements["ReadRepository"]["Action"] == REPOSITORY_READ
    assert statements["ReadRepository"]["Resource"] == [TEAM_ARN]
    assert statements["ListPackageVersions"]["Action"] == ["codeartifact:ListPackageVersions"]
    assert statements["ListPackageVersions"]["Resource"] == [TEAM_PACKAGES]
    assert statements["Publish"] == {
        "Sid": "Publish",
        "Effect": "Allow",
        "Action": [
            "codeartifact:PublishPackageVersion",
            "codeartifact:PutPackageMetadata",
            "codeartifact:ListPackageVersionAssets",
        ],
        "Resource": [TEAM_PACKAGES],
        "Principal": {"AWS": [PUBLISHER]},
    }
    publishing = {"codeartifact:PublishPackageVersion", "codeartifact:PutPackageMetadata"}
    for sid in ("ReadRepository", "ListPackageVersions"):
        assert not publishing & set(statements[sid]["Action"])


def test_no_publishers_means_no_publish_statement():
    s = synth(publishers=())
    for document in (
        policy(s, REPOSITORY_POLICY_TYPE, "dependencies-team-policy"),
        policy(s, REPOSITORY_POLICY_TYPE, "dependencies-store-policy"),
        policy(s, DOMAIN_POLICY_TYPE, "dependencies-domain-policy"),
    ):
        for st in document["Statement"]:
            assert not any("Publish" in a or "PutPackage" in a for a in st["Action"])
            assert st["Principal"] == {"AWS": [READER]}
    assert set(by_sid(policy(s, REPOSITORY_POLICY_TYPE, "dependencies-team-policy"))) == {
        "ReadRepository",
        "ListPackageVersions",
    }


def test_principals_that_are_outputs_resolve():
    document = policy(synth(output_reader=True), DOMAIN_POLICY_TYPE, "dependencies-domain-policy")
    assert document["Statement"][0]["Principal"] == {"AWS": [READER, PUBLISHER]}


@pytest.mark.parametrize("publishers", [(PUBLISHER,), ()])
def test_no_wildcard_action_principal_or_resource(publishers):
    s = synth(publishers=publishers)
    policies = [*s.of_type(DOMAIN_POLICY_TYPE), *s.of_type(REPOSITORY_POLICY_TYPE)]
    assert len(policies) == 3
    for r in policies:
        for st in json.loads(r.inputs["policyDocument"])["Statement"]:
            assert st["Effect"] == "Allow"
            assert all(a.startswith("codeartifact:") and "*" not in a for a in st["Action"])
            assert st["Resource"]
            assert all(arn.startswith(PREFIX) for arn in st["Resource"])
            assert st["Principal"]["AWS"]
            assert "*" not in st["Principal"]["AWS"]


def test_bearer_token_permission_stays_out_of_resource_policies():
    s = synth()
    for r in [*s.of_type(DOMAIN_POLICY_TYPE), *s.of_type(REPOSITORY_POLICY_TYPE)]:
        assert "sts:" not in r.inputs["policyDocument"]


def test_no_readers_is_refused():
    with pytest.raises(ValueError, match="reader principal"):
        DependenciesArgs(DOMAIN, STORE, TEAM, reader_principals=(), publisher_principals=())
    with pytest.raises(SynthError, match="reader principal"):
        synth(readers=())


def test_packages_arn_is_derived_from_the_repository_arn():
    assert packages_arn(TEAM_ARN) == TEAM_PACKAGES
    with pytest.raises(ValueError, match="not a CodeArtifact repository ARN"):
        packages_arn(DOMAIN_ARN)
