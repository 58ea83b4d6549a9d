"""The import rules of docs/architecture.md, enforced on every module of ``src/tickwise``.

A small AST walk (no imports are executed): every ``import`` / ``from ... import`` statement, including
the ones inside functions and ``TYPE_CHECKING`` blocks, is checked against the layer table. Known
violations that another change is removing are listed in ``KNOWN_VIOLATIONS`` with the issue that
removes them; the test fails for any new violation, and also for an entry that is no longer needed
(delete it when its fix lands).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import tickwise

SRC = Path(tickwise.__file__).resolve().parent

# Layer (second component of the module name) -> the tickwise layers it may import (itself included).
# ``bootstrap`` is the composition root and ``bench`` wires its own benchmark set-ups: they may import
# everything. ``cli`` may import ``domain`` for the error and time vocabulary it prints, and ``bench``
# (the ``tickwise bench`` command runs the harnesses). ``observability`` imports ``ports`` because it
# implements ``PipelineHooks``.
EVERYTHING = frozenset(
    {
        "domain",
        "config",
        "core",
        "ports",
        "observability",
        "pipelines",
        "adapters",
        "bootstrap",
        "bench",
        "cli",
    }
)
MAY_IMPORT: dict[str, frozenset[str]] = {
    "domain": frozenset({"domain"}),
    "config": frozenset({"config", "domain"}),
    "core": frozenset({"core", "domain"}),
    "ports": frozenset({"ports", "domain"}),
    "observability": frozenset({"observability", "ports", "domain"}),
    "pipelines": frozenset({"pipelines", "core", "ports", "domain", "observability"}),
    "adapters": frozenset({"adapters", "ports", "domain", "observability", "config"}),
    "bootstrap": EVERYTHING,
    "bench": EVERYTHING,
    "cli": frozenset({"cli", "bootstrap", "config", "domain", "bench"}),
}

# Training-only code the live pipeline never imports (labels and CV need the future).
TRAINING_ONLY = (
    "tickwise.core.dataset",
    "tickwise.core.fitting",
    "tickwise.core.labels",
    "tickwise.core.meta_training",
    "tickwise.core.cv",
    "tickwise.core.sample_weights",
    "tickwise.core.training",
)
SIMULATOR = "tickwise.adapters.kite.simulator"
SIMULATOR_USERS = ("tickwise.adapters.kite.simulator", "tickwise.bootstrap", "tickwise.bench")
# Libraries that do I/O, logging or configuration: never in the pure inner layers.
IO_LIBRARIES = frozenset(
    {
        "sqlalchemy",
        "asyncpg",
        "psycopg",
        "psycopg2",
        "alembic",
        "httpx",
        "websockets",
        "pydantic",
        "pydantic_settings",
        "yaml",
        "kiteconnect",
        "loguru",
        "mlflow",
        "prometheus_client",
        "typer",
        "rich",
    }
)

# (importer, imported) -> why it is still here. Each entry is removed by the change it names; the
# coordinator deletes the entry after merging it (test_no_known_violation_is_stale tells when).
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # a module name (tickwise modules resolved to the deepest existing module)
    line: int

    @property
    def where(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


MODULES = _modules()


def _imports(module: str, path: Path) -> Iterator[Import]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            for alias in node.names:
                # `from tickwise.adapters.kite import simulator` imports the simulator package.
                deeper = f"{name}.{alias.name}"
                yield Import(module, deeper if deeper in MODULES else name, node.lineno)


ALL_IMPORTS = [imp for module, path in MODULES.items() for imp in _imports(module, path)]


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _violations() -> list[Import]:
    found: list[Import] = []
    for imp in ALL_IMPORTS:
        if not _is_within(imp.imported, "tickwise"):
            continue
        importer, imported = imp.importer, imp.imported
        source, target = _layer(importer), _layer(imported)
        if source and target and target not in MAY_IMPORT[source]:
            found.append(imp)
            continue
        # Siblings: the two pipelines never import each other (shared code lives in pipelines/*.py),
        # and one adapter package never imports another (e.g. kite -> timescale).
        if source == target and source in ("pipelines", "adapters"):
            a, b = ".".join(importer.split(".")[:3]), ".".join(imported.split(".")[:3])
            if a != b and _is_package(a) and _is_package(b):
                found.append(imp)
                continue
        if _is_within(importer, "tickwise.pipelines.live") and any(
            _is_within(imported, t) for t in TRAINING_ONLY
        ):
            found.append(imp)
            continue
        if _is_within(imported, SIMULATOR) and not any(_is_within(importer, u) for u in SIMULATOR_USERS):
            found.append(imp)
    return found


def _is_package(module: str) -> bool:
    path = MODULES.get(module)
    return path is not None and path.name == "__init__.py"


def test_every_module_is_in_a_layer_of_the_table() -> None:
    unknown = sorted({_layer(m) for m in MODULES if _layer(m) and _layer(m) not in MAY_IMPORT})
    assert unknown == [], f"add these top-level packages to the layer table: {unknown}"


def test_no_module_imports_against_the_layer_rules() -> None:
    new = [v.where for v in _violations() if (v.importer, v.imported) not in KNOWN_VIOLATIONS]
    assert new == [], "import rule violations (see docs/architecture.md, Import rules):\n" + "\n".join(new)


def test_no_known_violation_is_stale() -> None:
    present = {(v.importer, v.imported) for v in _violations()}
    stale = sorted(f"{a} -> {b}" for a, b in KNOWN_VIOLATIONS if (a, b) not in present)
    assert stale == [], f"fixed: delete these entries from KNOWN_VIOLATIONS: {stale}"


@pytest.mark.parametrize("layer", ["domain", "core", "ports"])
def test_the_inner_layers_use_no_io_logging_or_configuration_library(layer: str) -> None:
    offending = [
        imp.where
        for imp in ALL_IMPORTS
        if _layer(imp.importer) == layer and imp.imported.split(".")[0] in IO_LIBRARIES
    ]
    assert offending == []


def test_the_domain_uses_the_standard_library_only() -> None:
    offending = [
        imp.where
        for imp in ALL_IMPORTS
        if _layer(imp.importer) == "domain"
        and imp.imported.split(".")[0] not in sys.stdlib_module_names
        and not _is_within(imp.imported, "tickwise.domain")
    ]
    assert offending == []


def test_the_rule_checker_catches_a_back_edge_and_a_sibling_import() -> None:
    # The checker itself must be able to fail: feed it imports that break each rule.
    fake = [
        Import("tickwise.pipelines.historical.run", "tickwise.bootstrap.historical", 1),
        Import("tickwise.pipelines.live.engine", "tickwise.pipelines.historical.train", 2),
        Import("tickwise.pipelines.live.engine", "tickwise.core.labels", 3),
        Import("tickwise.cli.historical", "tickwise.adapters.kite.simulator", 4),
        Import("tickwise.core.model", "tickwise.config", 5),
    ]
    saved = list(ALL_IMPORTS)
    try:
        ALL_IMPORTS[:] = fake
        assert [v.line for v in _violations()] == [1, 2, 3, 4, 5]
    finally:
        ALL_IMPORTS[:] = saved
