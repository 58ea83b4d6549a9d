"""cli commands reach adapters, the simulator, pipelines and benchmarks only through bootstrap.

docs/architecture.md: ``cli`` may import ``bootstrap`` and ``config`` (and ``domain`` for vocabulary).
This checks the command modules already moved behind bootstrap, lazy imports inside functions included;
cli/historical.py and cli/live.py join the list once their pipelines are reached through bootstrap.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tickwise.cli

ALLOWED = ("tickwise.bootstrap", "tickwise.config", "tickwise.domain", "tickwise.cli")
CHECKED = ("auth.py", "bench.py", "db.py", "instruments.py", "simulate.py", "context.py")


def _tickwise_imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [n for n in names if n == "tickwise" or n.startswith("tickwise.")]


@pytest.mark.parametrize("module", CHECKED)
def test_a_cli_command_module_imports_only_bootstrap_config_and_domain(module: str) -> None:
    path = Path(tickwise.cli.__file__).parent / module
    outside = [
        name
        for name in _tickwise_imports(path)
        if not any(name == a or name.startswith(a + ".") for a in ALLOWED)
    ]
    assert outside == [], f"cli/{module} imports {outside}: go through tickwise.bootstrap"
