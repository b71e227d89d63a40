"""Lambda's alias RevisionId lock, which moto 5.2.5 does not model ("not yet implemented").

Lambda gives each alias a revision that changes on every update, and refuses an
UpdateAlias naming an older one with PreconditionFailedException (HTTP 412). The promote
and rollback verbs rely on exactly that; this patch gives the session's in-process moto
server the same behaviour, and nothing else.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pytest

if TYPE_CHECKING:
    from moto.awslambda.responses import LambdaResponse

STALE = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/"
    "GetAlias API to retrieve the latest Revision Id"
)


@pytest.fixture(name="alias_revisions")
def _alias_revisions(monkeypatch: pytest.MonkeyPatch) -> None:
    # Imported here, not at the top: the modules that import this fixture are collected by
    # every test process, and moto's Lambda takes longer to import than most unit tests run.
    from moto.awslambda.responses import LambdaResponse  # noqa: PLC0415

    original = LambdaResponse.update_alias

    def update_alias(self: LambdaResponse):
        function_name = unquote(self.path.rsplit("/")[-3])
        alias = self.backend.get_alias(unquote(self.path.rsplit("/", 2)[-1]), function_name)
        expected = json.loads(self.body or "{}").get("RevisionId")
        if expected is not None and expected != alias.revision_id:
            body = json.dumps({"Type": "User", "message": STALE})
            headers = {"status": 412, "x-amzn-ErrorType": "PreconditionFailedException"}
            return 412, headers, body
        alias.revision_id = str(uuid.uuid4())
        return original(self)

    monkeypatch.setattr(LambdaResponse, "update_alias", update_alias)
