"""The `tickwise backtest` and `tickwise report` commands as a user runs them (a real subprocess); the
usage errors in-process (``cli_support.invoke``: no start-up importing the stack for each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from backtest_seed import seed

from cli_support import invoke

TICKWISE = str(Path(sys.executable).with_name("tickwise"))


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWISE__")}
    full_env.pop("DATABASE_URL", None)
    full_env.update(env)
    return subprocess.run(
        [TICKWISE, *args], capture_output=True, text=True, env=full_env, timeout=300, check=False
    )


@pytest.mark.db
@pytest.mark.slow  # three CLI processes, each importing the whole stack
async def test_backtest_json_then_report_of_that_run(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    await seed(clean_db)
    result = run(
        "backtest", "--from", "2026-11-02", "--to", "2026-11-03", "--model", "m-champ", "--json",
        DATABASE_URL=db_url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["model_version"] == "m-champ" and summary["sample"] == "out-of-sample"
    assert (
        summary["trades"] == 2 and summary["exit_reasons"]["pt"] == 1 and summary["exit_reasons"]["sl"] == 1
    )
    # Default 2 bps slippage per fill: 10 % of Rs 10 lakh in and out twice costs about Rs 80 more than the
    # hand-computed Rs 334.44 without slippage.
    assert summary["slippage"] > 0
    assert summary["net_pnl"] == pytest.approx(334.44 - summary["slippage"], abs=0.05)

    table = run(
        "backtest", "--from", "2026-11-02", "--to", "2026-11-03", "--model", "m-champ", DATABASE_URL=db_url
    )
    assert table.returncode == 0, table.stderr
    assert "net PnL" in table.stdout and "out-of-sample" in table.stdout

    # Without --model the out-of-sample signal set is traded (every historical row tickwise writes is).
    default = run("backtest", "--from", "2026-11-02", "--to", "2026-11-03", "--json", DATABASE_URL=db_url)
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout.strip().splitlines()[-1])["model_version"] == "oos"

    out = tmp_path / "report"
    report = run("report", "--backtest", summary["run_id"], "--out", str(out), DATABASE_URL=db_url)
    assert report.returncode == 0, report.stderr
    assert (out / "index.html").is_file() and (out / "equity.png").is_file()
    assert summary["run_id"] in (out / "index.html").read_text()


def test_model_and_oos_together_are_a_usage_error() -> None:
    result = invoke(["backtest", "--from", "2026-11-02", "--to", "2026-11-03", "--model", "m", "--oos"], {})
    assert result.returncode == 2
    assert "--model and --oos" in result.stderr and "Traceback" not in result.stderr


def test_a_malformed_date_is_a_usage_error() -> None:
    result = invoke(["backtest", "--from", "02/11/2026", "--to", "2026-11-03"], {})
    assert result.returncode == 2
    assert "--from" in result.stderr
