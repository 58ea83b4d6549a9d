"""`tickwise historical`, `train`, `predict`, `backfill` as a user runs them (console script, subprocess);
the help and usage checks in-process (``cli_support.invoke``), the commands' runs through the script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_support import invoke

ROOT = Path(__file__).resolve().parents[2]


def _tickwise(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickwise.cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _env(tmp_path: Path, db_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKWISE__", "KITE_"))}
    env.update(
        {
            "TICKWISE_ENV": "test",
            "TICKWISE_DATA_DIR": str(tmp_path),
            "TICKWISE__BROKER__TOKEN_FILE": str(tmp_path / "kite_token.json"),
            "TICKWISE__TRADING__SYMBOLS": "[INFY, TCS]",
            "TICKWISE__TRADING__BACKFILL_DAYS": "10",
            "TICKWISE__MODEL_TRAINING__TRIALS": "1",
            # the shared test database may hold a recent champion: train anyway (no retrain cadence)
            "TICKWISE__MODEL_TRAINING__RETRAIN_EVERY_DAYS": "0",
        }
    )
    if db_url:
        env["DATABASE_URL"] = db_url
    return env


def test_historical_commands_are_registered_with_help(tmp_path: Path) -> None:
    for command in ("historical", "backfill", "train", "predict"):
        result = invoke([command, "--help"], _env(tmp_path))
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout


def test_a_malformed_date_is_a_usage_error_naming_the_option(tmp_path: Path) -> None:
    result = invoke(["predict", "--from", "yesterday"], _env(tmp_path))
    assert result.returncode == 2
    assert "--from" in result.stderr and "YYYY-MM-DD" in result.stderr


@pytest.mark.db
@pytest.mark.slow
def test_historical_then_predict_with_the_model_from_the_cli(tmp_path: Path, db_url: str) -> None:
    env = _env(tmp_path, db_url)
    run = _tickwise(["historical"], env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "historical mode done" in run.stdout and "mlflow ui --backend-store-uri" in run.stdout
    assert "data quality: " in run.stdout  # the candle checks' counts (docs/data-quality.md)
    version = next(line.split()[1] for line in run.stdout.splitlines() if line.strip().startswith("model m"))
    again = _tickwise(["backfill"], env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "0 instrument-days fetched" in again.stdout and "data quality: " in again.stdout
    predicted = _tickwise(["predict", "--model", version], env)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert f"model {version}" in predicted.stdout
