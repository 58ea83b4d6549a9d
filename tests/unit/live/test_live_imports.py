"""The live pipeline depends on ports, never on adapters or the composition root (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import tickwise.pipelines.live as live

ALLOWED = (
    "tickwise.core",
    "tickwise.ports",
    "tickwise.domain",
    "tickwise.observability",
    "tickwise.pipelines.live",
)
NEVER = ("tickwise.core.labels", "tickwise.core.cv")  # labels are training-only


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n.startswith("tickwise")}


def test_every_live_pipeline_module_imports_only_the_layers_below_it() -> None:
    root = Path(live.__file__).parent
    modules = sorted(root.glob("*.py"))
    assert len(modules) >= 10
    for path in modules:
        for name in imported_modules(path):
            assert name.startswith(ALLOWED), f"{path.name} imports {name}"
            assert not name.startswith(NEVER), f"{path.name} imports training-only {name}"
