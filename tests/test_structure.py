"""The layering the design promises: scripts import no cycle, scripts.lib never imports a
verb or tool, infra never imports scripts; tests mirror the code; no module is too long
to hold in one's head."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from tests.project import ROOT


@cache
def _import_statements(source: str) -> tuple[tuple[str | None, tuple[str, ...]], ...]:
    """Each import in `source`, at the top or inside a function: (the module of a `from`
    import, None for a plain `import`; the names it imports)."""
    # Parsed once per text: two tests read the imports of scripts/lib, and parsing is most
    # of their time.
    return tuple(
        (
            node.module or "" if isinstance(node, ast.ImportFrom) else None,
            tuple(alias.name for alias in node.names),
        )
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
    )


def _imports(path: Path, package: str) -> set[str]:
    """Modules of `package` that `path` imports, at the top or inside a function."""
    found: set[str] = set()
    depth = package.count(".") + 1
    for module, names in _import_statements(path.read_text()):
        if module:
            if module == package:
                found |= set(names)
            elif module.startswith(f"{package}."):
                found.add(module.split(".")[depth])
        elif module is None:
            found |= {name.split(".")[depth] for name in names if name.startswith(f"{package}.")}
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            found = visit(target, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None


def test_no_two_scripts_modules_import_each_other() -> None:
    graph = {p.stem: _imports(p, "scripts") for p in (ROOT / "scripts").glob("*.py")}
    assert _cycle(graph) is None
    libraries = {p.stem: _imports(p, "scripts.lib") for p in (ROOT / "scripts/lib").glob("*.py")}
    assert _cycle(libraries) is None


def test_libraries_never_import_a_verb_or_tool() -> None:
    for path in (ROOT / "scripts/lib").glob("*.py"):
        assert _imports(path, "scripts") <= {"lib"}, path


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"cost": {"synth"}, "synth": {"pricing", "cost"}}) == ["cost", "synth", "cost"]
    assert _cycle({"cost": {"synth", "pricing"}, "synth": {"pricing"}}) is None


def test_infra_never_imports_scripts() -> None:
    for path in (ROOT / "infra").rglob("*.py"):
        source = path.read_text()
        tree = ast.parse(source)
        names = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        assert not {n for n in names if n == "scripts" or n.startswith("scripts.")}, path


# Test modules below a mirrored folder that test a subject under another name: what
# they are about, and where it lives.
NAMED_FOR_A_CONCERN = {
    "tests/scripts/test_cleanup_scale.py": "scripts/cleanup.py",
    "tests/infra/test_naming_rules.py": "infra/naming.py",
    "tests/infra/test_aws_name_rules.py": "tests/aws_name_rules.py",
    "tests/model/test_variant.py": "model/train.py",
    "tests/bench/test_bench.py": "bench/__main__.py",
}
MIRRORED = ("scripts", "infra", "policy", "bench", "model")


def _unmirrored(root: Path) -> list[str]:
    """Test modules under tests/<mirrored>/ whose module is not at the same path."""
    strays = []
    for top in MIRRORED:
        for test in sorted((root / "tests" / top).rglob("test_*.py")):
            relative = test.relative_to(root).as_posix()
            subject = NAMED_FOR_A_CONCERN.get(relative)
            if subject is None:
                folder = test.parent.relative_to(root / "tests")
                name = test.name.removeprefix("test_")
                subject = (folder / name).as_posix()
            if not (root / subject).is_file() and not (root / subject).with_suffix("").is_dir():
                strays.append(f"{relative} (no {subject})")
    return strays


def test_tests_mirror_the_modules_they_test() -> None:
    assert _unmirrored(ROOT) == []
    assert all((ROOT / subject).is_file() for subject in NAMED_FOR_A_CONCERN.values())


def test_a_test_module_for_no_module_is_found(tmp_path: Path) -> None:
    (tmp_path / "scripts/lib").mkdir(parents=True)
    (tmp_path / "scripts/lib/cli.py").write_text("")
    (tmp_path / "tests/scripts/lib").mkdir(parents=True)
    (tmp_path / "tests/scripts/lib/test_cli.py").write_text("")
    (tmp_path / "tests/scripts/test_cli.py").write_text("")
    assert _unmirrored(tmp_path) == ["tests/scripts/test_cli.py (no scripts/cli.py)"]


LINE_LIMIT = 800
HELD_TO_THE_LIMIT = ("infra", "scripts", "policy", "model", "bench")


def _too_long(root: Path, limit: int = LINE_LIMIT) -> list[str]:
    """Modules under the code folders longer than `limit` lines, each with its length."""
    found = []
    for top in HELD_TO_THE_LIMIT:
        for path in sorted((root / top).rglob("*.py")):
            if path.name.startswith("test_"):
                continue
            length = len(path.read_text().splitlines())
            if length > limit:
                found.append(f"{path.relative_to(root).as_posix()}: {length} lines")
    return found


def test_no_module_is_over_800_lines() -> None:
    assert _too_long(ROOT) == []


def test_a_module_over_the_limit_is_named_with_its_length(tmp_path: Path) -> None:
    (tmp_path / "scripts/lib").mkdir(parents=True)
    (tmp_path / "scripts/lib/long.py").write_text("x = 1\n" * 801)
    (tmp_path / "scripts/lib/short.py").write_text("x = 1\n" * 800)
    (tmp_path / "infra/components").mkdir(parents=True)
    (tmp_path / "infra/components/wide.py").write_text("x = 1\n" * 900)
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench/benchmarks.py").write_text("x = 1\n" * 900)
    assert _too_long(tmp_path) == [
        "infra/components/wide.py: 900 lines",
        "scripts/lib/long.py: 801 lines",
        "bench/benchmarks.py: 900 lines",
    ]
