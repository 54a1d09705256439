"""The guideline modules import each other in one direction: no circle, and no import hidden in a
function to dodge one (lazy imports of heavy third-party libraries are fine)."""

from __future__ import annotations

import ast
from pathlib import Path

import gap_replay.sources.guidelines as package

PREFIX = "gap_replay.sources.guidelines."
# the wrapper of a heavy library, imported on first use: pypdf (pdf.py)
LAZY = {f"{PREFIX}pdf"}


def _modules() -> dict[str, ast.Module]:
    folder = Path(package.__file__).parent
    return {f"{PREFIX}{p.stem}": ast.parse(p.read_text()) for p in folder.glob("*.py")}


def _imported(node: ast.AST) -> set[str]:
    if isinstance(node, ast.ImportFrom) and node.module:
        return {node.module}
    if isinstance(node, ast.Import):
        return {a.name for a in node.names}
    return set()


def test_guideline_modules_form_no_import_circle():
    modules = _modules()
    graph = {name: {m for node in tree.body for m in _imported(node) if m in modules}
             for name, tree in modules.items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join(path + (name,))
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, path + (name,))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())


def test_no_guideline_module_is_imported_inside_a_function():
    modules = _modules()
    for name, tree in modules.items():
        for func in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            inner = {m for node in ast.walk(func) for m in _imported(node) if m in modules} - LAZY
            assert not inner, f"{name}.{func.name} imports {sorted(inner)} inside the function"
