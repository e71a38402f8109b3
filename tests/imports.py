"""The project modules a stage imports, directly or through other project modules (any import statement)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.exists():
            return cand
    return None


def project_imports(module: str) -> set[str]:
    """Files (relative to the root) of every lidr module that `module` imports, transitively, and its parents."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        path = module_file(name)
        if path is None or path in seen:
            continue
        seen.add(path)
        parts = name.split(".")
        for i in range(1, len(parts)):  # importing a.b.c runs a/__init__ and a/b/__init__
            todo.append(".".join(parts[:i]))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.split(".")[0] == "lidr"]
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lidr":
                todo.append(node.module)
                todo += [f"{node.module}.{a.name}" for a in node.names]
    return {str(p.relative_to(ROOT)) for p in seen if p.parts[-2] != "stages" or p.name != "__init__.py"}
