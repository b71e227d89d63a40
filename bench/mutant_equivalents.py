"""Surviving mutants that no test can kill, each matched by a rule stated here.

    python -m bench.mutant_equivalents     # after `mutmut run`, in its environment

mutmut mutates every string literal three ways: wrapped in `XX`, lower-cased and
upper-cased. In an IAM policy document the case of an action name (`s3:GetObject`) and
of a condition key (`aws:ResourceTag/kind`) does not matter: AWS compares both without
regard to case ("IAM JSON policy elements: Action"; "Condition element": condition key
names are not case-sensitive). Such a mutant grants and denies exactly what the original
does, so no test of what a principal can do could kill it, and one that pinned the
spelling would test wording. A statement's `Sid` is a label AWS ignores when it decides.

Each survivor whose diff changes nothing but such a string, on one line of
`infra/components/` (where the policy documents are written), is listed with its rule in
mutants/equivalent.json; the bench counts the score without them and prints both. The
rules look at the diff only, so a mutant they match is equivalent whichever tests exist.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

EQUIVALENTS = "mutants/equivalent.json"
POLICY_SOURCES = "infra/components/"
# `service:Name` or `service:Key/part`, no ARN (which has five colons and is case-sensitive).
_IAM_NAME = re.compile(r"[a-z0-9-]+:[A-Za-z0-9*]+(?:/[A-Za-z0-9*_-]+)?")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
CASE_OF_IAM_NAME = "case of an IAM action name or condition key (AWS ignores it)"
SID = "text of a statement's Sid (a label AWS ignores when it decides)"


def rule_for(diff: str) -> str | None:
    """The rule that makes the mutant in this unified diff equivalent, or None."""
    header = next((line for line in diff.splitlines() if line.startswith("--- ")), "")
    changed = _one_changed_string(diff) if POLICY_SOURCES in header else None
    if changed is None:
        return None
    line, strings, i, mutated = changed
    if strings[i].lower() == mutated.lower() and _IAM_NAME.fullmatch(strings[i]):
        return CASE_OF_IAM_NAME
    if i > 0 and strings[i - 1] == "Sid" and re.search(r'"Sid":\s*"', line):
        return SID
    return None


def _one_changed_string(diff: str) -> tuple[str, list[str], int, str] | None:
    """(the original line, its string literals, which one changed, to what), when the
    mutant changes one string literal on one line and nothing else."""
    lines = diff.splitlines()
    removed = [x[1:] for x in lines if x.startswith("-") and not x.startswith("---")]
    added = [x[1:] for x in lines if x.startswith("+") and not x.startswith("+++")]
    if len(removed) != 1 or len(added) != 1:
        return None
    before, after = removed[0], added[0]
    old, new = _STRING.findall(before), _STRING.findall(after)
    # The same line outside its string literals, and the same number of them.
    if len(old) != len(new) or _STRING.sub('""', before) != _STRING.sub('""', after):
        return None
    changed = [i for i, (o, n) in enumerate(zip(old, new, strict=True)) if o != n]
    if len(changed) != 1:
        return None
    return before, old, changed[0], new[changed[0]]


def main() -> int:
    # mutmut's own reading of its results (its version is pinned in noxfile.py).
    from mutmut.mutation.data import SourceFileMutationData  # noqa: PLC0415
    from mutmut.mutation.diff_apply import get_diff_for_mutant  # noqa: PLC0415
    from mutmut.stats import status_by_exit_code  # noqa: PLC0415
    from mutmut.utils.file_utils import walk_mutatable_files  # noqa: PLC0415

    equivalent: dict[str, str] = {}
    survivors = 0
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in data.exit_code_by_key.items():
            if status_by_exit_code[code] != "survived":
                continue
            survivors += 1
            rule = rule_for(get_diff_for_mutant(name, path=path))
            if rule is not None:
                equivalent[name] = rule
    out = Path(EQUIVALENTS)
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"mutants": equivalent}, indent=1, sort_keys=True) + "\n")
    by_rule = {r: sum(1 for v in equivalent.values() if v == r) for r in (CASE_OF_IAM_NAME, SID)}
    print(f"{len(equivalent)} of {survivors} survivors are equivalent: {by_rule}; see {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
