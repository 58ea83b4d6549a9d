"""The paper trading options on the command line: `live --paper`, `backtest --signals/--prices`; the help
through the console script, the refusals in-process (``cli_support.invoke``: no start-up per command)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cli_support import invoke

TICKWISE = str(Path(sys.executable).with_name("tickwise"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWISE__")}
    env.pop("DATABASE_URL", None)
    env["COLUMNS"] = "200"  # no wrapped option names in the help text
    return subprocess.run(
        [TICKWISE, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_live_offers_paper_trading_and_backtest_the_parity_fill_rule() -> None:
    live = run("live", "--help")
    assert live.returncode == 0 and "--paper" in live.stdout
    backtest = run("backtest", "--help")
    assert backtest.returncode == 0
    assert "--signals" in backtest.stdout and "--prices" in backtest.stdout
    assert "--paper-run" in backtest.stdout


def test_an_unknown_price_source_is_one_clear_line_with_exit_code_2() -> None:
    result = invoke(["backtest", "--from", "2026-12-01", "--to", "2026-12-02", "--prices", "candles"], {})
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "candles" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_replaying_a_paper_session_without_naming_it_is_one_clear_line_with_exit_code_2() -> None:
    result = invoke(["backtest", "--from", "2026-12-01", "--to", "2026-12-02", "--signals", "paper"], {})
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--paper-run" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
