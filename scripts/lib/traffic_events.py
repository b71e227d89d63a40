"""Recording a traffic move once it happened: a failure to record is reported, never raised.

Promote and rollback move alias `live` first and record the move second, so a lifecycle
event that cannot be written must not turn a move that stands into a failure; the verb
reports the move and the command that adds the missing record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from scripts.lib import aws

Emit = Callable[..., object]


def repair_command(kind: str, fields: Mapping[str, Any]) -> str:
    """The command that records an event a verb could not, for its summary."""
    extra = {k: v for k, v in fields.items() if k not in ("model", "version")}
    detail = json.dumps(extra, sort_keys=True).replace("'", "'\\''")
    return (
        f"nox -s events -- emit {kind} --version {fields.get('version')} "
        f"--detail '{detail}' --outputs OUTPUTS.json"
    )


def record(emit: Emit, kind: str, unrecorded: list[str], **fields: Any) -> bool:
    """Emit an event about traffic that already moved; a failure is noted, never raised.

    The move stands whether or not its record does, so the verb must report the move as
    it happened and say how to add the missing record, not fail as if nothing changed.
    """
    try:
        emit(kind, **fields)
    except aws.ScriptError as error:
        unrecorded.append(
            f"the `{kind}` event was not recorded ({error}); record it with "
            f"`{repair_command(kind, fields)}`"
        )
        return False
    return True
