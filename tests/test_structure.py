"""The layering the design promises: scripts import no cycle, scripts.lib never imports a
verb or tool, infra never imports scripts."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path, package: str) -> set[str]:
    """Modules of `package` that `path` imports, at the top or inside a function."""
    found: set[str] = set()
    depth = package.count(".") + 1
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == package:
                found |= {alias.name for alias in node.names}
            elif node.module.startswith(f"{package}."):
                found.add(node.module.split(".")[depth])
        elif isinstance(node, ast.Import):
            found |= {
                alias.name.split(".")[depth]
                for alias in node.names
                if alias.name.startswith(f"{package}.")
            }
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
