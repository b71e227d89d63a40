"""Where the pipeline and the training runner meet in the artifact bucket; pure constants.

The program (components/model_testing.py), the buildspec and `scripts.train`
all read these, so a key is never spelled twice; no Pulumi import, so scripts
stay light.
"""

SOURCE_PREFIX = "source/"
SOURCE_KEY = f"{SOURCE_PREFIX}source.zip"
# runs/<CodeBuild build id>/: model.json, metrics.json (the buildspec) and lambda.zip
# (the version scripts.train publishes from them).
RUNS_PREFIX = "runs/"
# Where a team keeps the real training data (the spec's `dataset: s3://BUCKET/datasets/...`).
DATASETS_PREFIX = "datasets/"
# The default branch's latest evaluated model's metrics, which other branches compare with.
PUBLISHED_PREFIX = "published/"
PUBLISHED_METRICS_KEY = f"{PUBLISHED_PREFIX}metrics.json"
# The tag that marks it published: the one object of a protected stack's bucket an
# ephemeral branch's role may read (infra/components/ci_denies.py, docs/access.md).
PUBLISHED_TAG = ("published", "every-branch")
RESULTS_DIR = "results"
MODEL_REQUIREMENTS = "model/requirements.txt"
BUILD_TIMEOUT_MINUTES = 60
# The branch's latest comparison with the default branch (scripts.train writes it, the
# pull request's comment reads it).
LATEST_EVALUATION_KEY = "evaluations/latest.json"
