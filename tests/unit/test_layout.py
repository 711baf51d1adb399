"""The shape of the code, read from the source (no database): ``jobs`` does not import
``workers``, the modules of ``jobs`` import each other without a cycle, and the engine never
reaches up into the REST layer."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "jobs"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def jobs_modules() -> dict[str, set[str]]:
    paths = [p for p in JOBS.rglob("*.py") if "migrations" not in p.parts]
    names = {module_name(p) for p in paths}
    return {module_name(p): {i for i in imports(p) if i in names} for p in paths}


def test_jobs_does_not_import_workers() -> None:
    offenders = {
        module: sorted(i for i in imports(path) if i == "workers" or i.startswith("workers."))
        for path in JOBS.rglob("*.py")
        if (module := module_name(path))
    }
    assert {m: i for m, i in offenders.items() if i} == {}


def test_the_modules_of_jobs_import_each_other_without_a_cycle() -> None:
    graph = jobs_modules()
    # A package's __init__ importing its own modules is how it exports them, not a cycle.
    graph = {m: {i for i in deps if not m.startswith(i + ".")} for m, deps in graph.items()}
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> None:
        if module in path:
            raise AssertionError(
                "import cycle: " + " -> ".join([*path[path.index(module) :], module])
            )
        if module in done:
            return
        path.append(module)
        for dep in sorted(graph.get(module, ())):
            visit(dep)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_the_engine_and_the_live_feed_do_not_import_the_rest_api() -> None:
    graph = jobs_modules()
    upward = {
        module: sorted(d for d in deps if d.startswith("jobs.api"))
        for module, deps in graph.items()
        if module.startswith(("jobs.engine", "jobs.live", "jobs.types"))
    }
    assert {m: d for m, d in upward.items() if d} == {}
