"""The worker's modules import in one direction (watcher <- control <- reconcile, the lock in its own module), at
module level only: a function-level import to dodge a circle would mean the code sits in the wrong module."""
from __future__ import annotations

import ast
from pathlib import Path

WORKER = Path(__file__).resolve().parents[2] / "worker"


def _module(path: Path) -> str:
    rel = path.relative_to(WORKER.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """(imported worker module, at module level?) for each import of a worker module."""
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "worker":
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "worker"]
        out += [(n, id(node) in top) for n in names]
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in WORKER.rglob("*.py")}
    graph = {}
    for mod, path in files.items():
        graph[mod] = set()
        for name, top_level in _imports(ast.parse(path.read_text())):
            assert top_level, f"{path.relative_to(WORKER.parent)}: imports {name} inside a function"
            if name in files and name != mod:
                graph[mod].add(name)
    return graph


def test_worker_modules_import_at_module_level_without_a_circle():
    graph = _graph()
    seen, stack = set(), []

    def visit(mod: str) -> None:
        assert mod not in stack, f"import circle: {' -> '.join(stack[stack.index(mod):] + [mod])}"
        if mod in seen:
            return
        stack.append(mod)
        for dep in sorted(graph[mod]):
            # A package imports its own submodules; that is not a circle through the package.
            if not dep.startswith(mod + "."):
                visit(dep)
        stack.pop()
        seen.add(mod)

    for mod in sorted(graph):
        visit(mod)
    assert "worker.control" in graph["worker.reconcile"] and "worker.watcher" in graph["worker.control"]
    assert not graph["worker.watcher"] & {"worker.control", "worker.reconcile"}
    assert not graph["worker.control"] & {"worker.reconcile"}
    assert "worker.locks" in graph["worker.control"] and "worker.locks" in graph["worker.reconcile"]
