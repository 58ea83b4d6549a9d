"""The Makefile: the targets users look for exist, `clean` keeps data, `clean-data` asks first."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *args],
        input=stdin, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_targets_users_look_for_exist() -> None:
    for target in ("install-dev", "db-init", "test-integration", "docs-serve", "logs", "clean-data"):
        assert make("-n", target).returncode == 0, target


def test_clean_removes_build_artifacts_but_never_the_data_directory() -> None:
    plan = make("-n", "clean").stdout
    assert "site" in plan and ".mypy_cache" in plan
    assert ".data" not in plan and "db down" not in plan


def test_run_live_waits_for_the_trading_day() -> None:
    assert "live --wait" in make("-n", "run-live").stdout


def test_clean_data_lists_what_it_deletes_and_keeps_it_unless_confirmed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    (data / "kite_token.json").write_text("{}")
    refused = make("clean-data", f"DATA_DIR={data}", stdin="no\n")
    assert refused.returncode != 0
    assert f"{data}/models" in refused.stdout and f"{data}/kite_token.json" in refused.stdout
    assert data.exists()
    confirmed = make("clean-data", f"DATA_DIR={data}", stdin="delete\n")
    assert confirmed.returncode == 0 and not data.exists()


def test_clean_data_with_confirm_1_runs_unattended(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    result = make("clean-data", f"DATA_DIR={data}", "CONFIRM=1")
    assert result.returncode == 0 and f"deleted {data}" in result.stdout and not data.exists()
