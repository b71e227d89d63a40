"""A Lambda client whose invoke runs the invoked version's own code, as Lambda would.

moto without Docker echoes the payload. This wrapper remembers the code of every
update_function_code it passes on (by the CodeSha256 Lambda reports), and answers
invoke by unzipping the version's code and calling its handler in-process. So a
test of "the version serves that run's artifact" runs the artifact inside the
version, not the repository's copy.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from botocore.response import StreamingBody


def code_sha(code: bytes) -> str:
    """Lambda's CodeSha256 of a zip."""
    return base64.b64encode(hashlib.sha256(code).digest()).decode()


def run_handler(code: bytes, event: Any, arn: str) -> Any:
    """Unzip a function's code and call its handler once, as Lambda would."""
    with tempfile.TemporaryDirectory() as folder:
        zipfile.ZipFile(io.BytesIO(code)).extractall(folder)
        spec = importlib.util.spec_from_file_location(
            f"lambda_code_{code_sha(code)[:8]}", Path(folder) / "handler.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, folder)  # the packaged dependencies, as Lambda's /var/task
        try:
            spec.loader.exec_module(module)
            return module.handler(event, SimpleNamespace(invoked_function_arn=arn))
        finally:
            sys.path.remove(folder)


class VersionedLambda:
    def __init__(self, client: Any, s3: Any) -> None:
        self._client = client
        self._s3 = s3
        self.code: dict[str, bytes] = {}
        self.invoked: list[tuple[str, str]] = []
        self.exceptions = client.exceptions

    def update_function_code(self, **params: Any) -> dict:
        if "S3Bucket" in params:
            body = self._s3.get_object(Bucket=params["S3Bucket"], Key=params["S3Key"])["Body"]
            code = body.read()
        else:
            code = params["ZipFile"]
        self.code[code_sha(code)] = code
        return self._client.update_function_code(**params)

    def invoke(self, **params: Any) -> dict:
        function, qualifier = params["FunctionName"], params.get("Qualifier", "$LATEST")
        configuration = self._client.get_function_configuration(
            FunctionName=function, Qualifier=qualifier
        )
        code = self.code[configuration["CodeSha256"]]
        self.invoked.append((function, configuration["Version"]))
        arn = configuration["FunctionArn"]
        if not arn.endswith(f":{qualifier}"):
            arn = f"{arn}:{qualifier}"
        result = run_handler(code, json.loads(params["Payload"]), arn)
        raw = json.dumps(result).encode()
        return {
            "StatusCode": 200,
            "ExecutedVersion": configuration["Version"],
            "Payload": StreamingBody(io.BytesIO(raw), len(raw)),
        }

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
