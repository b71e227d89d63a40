"""The Pulumi program: branch-scoped ML delivery on AWS."""
