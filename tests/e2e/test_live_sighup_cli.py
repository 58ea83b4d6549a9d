"""SIGHUP to a running `tickwise live`: the new signal threshold is applied and logged, a change that
needs a restart is named, and the session carries on to its end."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parents[2]


def env_for(tmp_path: Path, db_url: str, config_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKWISE__", "KITE_"))}
    env.update(
        TICKWISE_ENV="test",
        TICKWISE_CONFIG_DIR=str(config_dir),
        DATABASE_URL=db_url,
        TICKWISE__SYSTEM__DATA_DIR=str(tmp_path),
        TICKWISE__SYSTEM__LOG_LEVEL="INFO",
        TICKWISE__LIVE__SPILL_DIR=str(tmp_path / "spill"),
        TICKWISE__BROKER__TOKEN_FILE=str(tmp_path / "kite_token.json"),
        TICKWISE__TRADING__SYMBOLS="[INFY]",
        TICKWISE__TRADING__BACKFILL_DAYS="6",
        TICKWISE__MODEL_TRAINING__TRIALS="1",
        TICKWISE__MONITORING__METRICS_PORT="0",
    )
    return env


@pytest.mark.slow
async def test_sighup_applies_a_new_threshold_to_a_running_session_and_names_what_needs_a_restart(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    log, out, code = await asyncio.to_thread(run_and_reload, tmp_path, db_url)
    assert code == 0, log[-3000:]
    assert "SIGHUP: model_training.signal_threshold: 0.55 -> 0.6 (applied)" in log
    assert "SIGHUP: live.candle_grace_s changed: restart the live session to apply" in log
    assert "live session" in out


def run_and_reload(tmp_path: Path, db_url: str) -> tuple[str, str, int]:
    """historical, then a live session that gets a SIGHUP after an edit of config.yaml; (log, stdout, rc)."""
    config_dir = tmp_path / "config"
    shutil.copytree(ROOT / "config", config_dir, ignore=shutil.ignore_patterns("grafana"))
    env = env_for(tmp_path, db_url, config_dir)
    historical = subprocess.run(
        [sys.executable, "-m", "tickwise.cli.main", "historical"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert historical.returncode == 0, historical.stderr[-2000:]

    live = subprocess.Popen(
        [sys.executable, "-m", "tickwise.cli.entry", "live", "--until", "+40m", "--speed", "120"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert live.stderr is not None
        for line in live.stderr:
            lines.append(line)
            if "live session" in line and "until" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(300), "".join(lines[-30:])
        config = config_dir / "config.yaml"
        text = config.read_text()
        assert "signal_threshold: 0.55" in text
        config.write_text(
            text.replace("signal_threshold: 0.55", "signal_threshold: 0.6").replace(
                "candle_grace_s: 2.0", "candle_grace_s: 3.0"
            )
        )
        live.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("SIGHUP" in line for line in lines):
            time.sleep(0.2)
        out, _ = live.communicate(timeout=600)
    finally:
        if live.poll() is None:
            live.kill()
    reader.join(timeout=10)
    return "".join(lines), out, live.returncode
