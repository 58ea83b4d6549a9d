"""Killing `tickwise historical` mid-way and running it again ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from tickwise.adapters.timescale.schema import ALL_TABLES

ROOT = Path(__file__).resolve().parents[2]

COUNTS = {
    "candles": "SELECT timeframe || ':' || count(*) FROM candles GROUP BY timeframe ORDER BY timeframe",
    "features": "SELECT count(*)::text FROM features",
    "labels": "SELECT side || ':' || count(*) FROM labels GROUP BY side ORDER BY side",
    "models": "SELECT model_version || ':' || status FROM models ORDER BY model_version",
    "signals": "SELECT model_version || ':' || count(*) FROM signals GROUP BY model_version",
    "duplicates": (
        "SELECT count(*)::text FROM (SELECT 1 FROM signals GROUP BY instrument_token, timeframe, time, "
        "model_version, mode HAVING count(*) > 1) d"
    ),
}


def _env(data_dir: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKWISE__", "KITE_"))}
    env.update(
        {
            "TICKWISE_ENV": "test",
            "TICKWISE_DATA_DIR": str(data_dir),
            "TICKWISE__BROKER__TOKEN_FILE": str(data_dir / "kite_token.json"),
            "TICKWISE__TRADING__SYMBOLS": "[INFY, TCS]",
            "TICKWISE__TRADING__BACKFILL_DAYS": "10",
            "TICKWISE__MODEL_TRAINING__TRIALS": "1",
            "DATABASE_URL": db_url,
        }
    )
    return env


def _run(env: dict[str, str], kill_after_s: float | None = None) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickwise.cli.main", "historical"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if kill_after_s is None:
        return proc.wait(timeout=600)
    deadline = time.monotonic() + kill_after_s
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the simulator child goes too
    return proc.wait(timeout=60)


async def _snapshot(pool: asyncpg.Pool) -> dict[str, list[str]]:
    async with pool.acquire() as conn:
        return {name: [r[0] for r in await conn.fetch(sql)] for name, sql in COUNTS.items()}


async def _truncate(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join(ALL_TABLES)}")


@pytest.mark.db
@pytest.mark.slow
async def test_a_killed_historical_run_completes_correctly_when_run_again(
    tmp_path: Path, db_url: str, pool: asyncpg.Pool
) -> None:
    await _truncate(pool)
    clean_dir = tmp_path / "clean"
    started = time.monotonic()
    assert await asyncio.to_thread(_run, _env(clean_dir, db_url)) == 0
    duration = time.monotonic() - started
    reference = await _snapshot(pool)
    assert reference["duplicates"] == ["0"] and reference["signals"]
    shutil.rmtree(clean_dir, ignore_errors=True)

    # Kill early (backfill/derivation) and late (training/prediction) in the chain.
    for fraction in (0.35, 0.8):
        await _truncate(pool)
        killed_dir = tmp_path / f"killed-{fraction:g}"
        code = await asyncio.to_thread(_run, _env(killed_dir, db_url), fraction * duration)
        assert code == -signal.SIGKILL, f"the run ended by itself before {fraction:.0%} of its duration"
        assert await asyncio.to_thread(_run, _env(killed_dir, db_url)) == 0
        assert await _snapshot(pool) == reference, f"after a kill at {fraction:.0%} of the run"
