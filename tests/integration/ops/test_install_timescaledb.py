"""scripts/install_timescaledb.sh --from-source: argument and source-tree checks fail clearly, before any
package or build step (the build itself is exercised by `make test-tsl`, docs/timescaledb.md)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "install_timescaledb.sh"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_an_unknown_argument_is_a_usage_error() -> None:
    result = run("--from-sauce", "/tmp")
    assert result.returncode == 2
    assert "expected --from-source DIR" in result.stdout


def test_from_source_needs_a_directory() -> None:
    result = run("--from-source")
    assert result.returncode == 2
    assert "--from-source needs a directory" in result.stdout


@pytest.mark.skipif(
    os.geteuid() != 0, reason="the script asks for root (or sudo) before it looks at the tree"
)
def test_a_directory_that_is_not_a_timescaledb_tree_with_tsl_is_refused(tmp_path: Path) -> None:
    (tmp_path / "version.config").write_text("version = 2.19.3\n")  # but no tsl/src: an Apache-only tarball
    result = run("--from-source", str(tmp_path))
    assert result.returncode == 1
    assert "is not a TimescaleDB source tree with its tsl/ directory" in result.stdout
