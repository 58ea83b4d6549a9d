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

# Where in the chain the run is killed: the first row of a step's output table (polled every 50 ms).
KILL_POINTS = {
    "the first feature row": "SELECT EXISTS (SELECT 1 FROM features)",
    "the first trained model": "SELECT EXISTS (SELECT 1 FROM models)",
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


def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tickwise.cli.main", "historical"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _run(env: dict[str, str]) -> int:
    return _start(env).wait(timeout=600)


async def _run_until(env: dict[str, str], pool: asyncpg.Pool, reached: str) -> int:
    """Start a run and kill -9 it (with its simulator child) once the query ``reached`` is true.

    A point in the chain, not a fraction of a clean run's duration: two runs' durations differ by
    more than the steps' gaps on a loaded machine (CI once saw a run end before "80 %" of another).
    """
    proc = _start(env)
    try:
        deadline = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < deadline:
            async with pool.acquire() as conn:
                if await conn.fetchval(reached):
                    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the simulator child goes too
                    break
            await asyncio.sleep(0.05)
        return await asyncio.to_thread(proc.wait, 60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


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
    assert await asyncio.to_thread(_run, _env(clean_dir, db_url)) == 0
    reference = await _snapshot(pool)
    assert reference["duplicates"] == ["0"] and reference["signals"]
    shutil.rmtree(clean_dir, ignore_errors=True)

    # Kill early (derivation under way) and late (a fold model trained, signals not yet all written).
    for name, reached in KILL_POINTS.items():
        await _truncate(pool)
        killed_dir = tmp_path / f"killed-{name}"
        code = await _run_until(_env(killed_dir, db_url), pool, reached)
        assert code == -signal.SIGKILL, f"the run ended by itself before {name}"
        assert await asyncio.to_thread(_run, _env(killed_dir, db_url)) == 0
        assert await _snapshot(pool) == reference, f"after a kill at {name}"
