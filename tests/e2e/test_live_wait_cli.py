"""`tickwise live --wait` on a closed day: exit 0 at once, one line, nothing started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tickwise.cli.context import state
from tickwise.cli.main import app

TICKWISE = str(Path(sys.executable).with_name("tickwise"))
# Nothing listens on port 1: if --wait touched the database, the command would fail instead of exiting 0.
NO_DATABASE = "postgresql://nobody@127.0.0.1:1/nothing"


def test_live_wait_on_a_simulated_holiday_exits_0_in_under_2_seconds_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "_settings", None)  # the CLI state caches settings per process
    env = {
        "DATABASE_URL": NO_DATABASE,
        "TICKWISE_TODAY": "2026-03-03",  # Holi
        "TICKWISE__SYSTEM__DATA_DIR": str(tmp_path),
    }
    started = time.monotonic()
    result = CliRunner().invoke(app, ["live", "--wait"], env=env)
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "no NSE session on Tuesday 2026-03-03 (exchange holiday); next session Wednesday 2026-03-04"
    )
    assert elapsed < 2.0


def test_live_wait_on_a_weekend_exits_0_through_the_console_script_without_a_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWISE__")}
    env.update(DATABASE_URL=NO_DATABASE, TICKWISE__SYSTEM__DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [TICKWISE, "live", "--wait", "--today", "2026-03-07"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "no NSE session on Saturday 2026-03-07 (weekend); next session Monday 2026-03-09"
    ]
    assert not (tmp_path / "pg").exists() and not (tmp_path / "live-status.json").exists()


def test_live_wait_with_the_simulator_runs_the_simulated_day_without_waiting_for_the_wall_clock(
    tmp_path: Path,
) -> None:
    # No --today: the simulated session follows the simulator's clock, so --wait starts it at once
    # (here it then stops at the unreachable database, exit 1, instead of sleeping or exiting 0).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKWISE__", "KITE_", "TICKWISE_TODAY"))}
    env.update(DATABASE_URL=NO_DATABASE, TICKWISE__SYSTEM__DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [TICKWISE, "live", "--wait", "--until", "+1m"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert (
        result.stdout.splitlines()[0]
        == "simulator: the simulated session runs now (it does not follow the wall clock)"
    )
    assert "no NSE session" not in result.stdout
    assert result.returncode == 1, result.stdout + result.stderr


def test_log_json_makes_every_stderr_line_a_json_object_of_one_session(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWISE__")}
    # 2031 is beyond the holiday data, so the calendar logs its coverage warning; a Saturday exits at once.
    env.update(
        DATABASE_URL=NO_DATABASE, TICKWISE__SYSTEM__DATA_DIR=str(tmp_path), TICKWISE_TODAY="2031-01-04"
    )
    result = subprocess.run(
        [TICKWISE, "--log-json", "live", "--wait"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert records and any("not covered" in r["message"] for r in records)
    assert len({r["correlation_id"] for r in records}) == 1
