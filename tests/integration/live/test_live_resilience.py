"""The live mode survives a hard crash with a restart, and a database outage, without losing a bar.

One historical run (3 instruments, a few days, quick training) provides the model for both tests; each
live session covers 09:15-09:35 of the simulated day. The oracle is :func:`assert_session_complete`:
candles equal to the simulator's REST candles minute for minute, and live signals equal to the batch
signals of the same bars, one per bar, no duplicates.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from live_support import assert_session_complete, day_open, live_day, live_env, make_settings, reset_live

from tickwise.adapters.timescale.schema import ALL_TABLES
from tickwise.bootstrap.live import LiveOptions, run_live
from tickwise.config import Settings
from tickwise.observability.hooks import NullHooks

pytestmark = [pytest.mark.slow, pytest.mark.db]

UNTIL = "09:35"
MINUTES = 20


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def trained(
    pool: asyncpg.Pool, db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Settings, date]]:
    """Settings with a trained model, and the day the live sessions simulate (after the stored history)."""
    from tickwise.bootstrap.historical import Reporter, run_historical

    async with pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join(ALL_TABLES)}")
    settings = make_settings(db_url, tmp_path_factory.mktemp("live-resilience"))
    with Reporter(quiet=True) as reporter:
        await run_historical(settings, reporter, url=db_url)
    yield settings, await live_day(settings, db_url)


async def stored_minutes(conn: asyncpg.Connection, since: Any) -> int:
    """Distinct 1m bars with a live signal stored since ``since`` (all instruments)."""
    return int(
        await conn.fetchval(
            "SELECT count(DISTINCT time) FROM signals WHERE mode = 'live' AND time >= $1", since
        )
    )


async def start_cli(settings: Settings, db_url: str, log: Path) -> asyncio.subprocess.Process:
    """``tickwise live`` in a child process (its log appended to ``log``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWISE")}
    env.update(live_env(db_url, Path(settings.system.data_dir)))
    env["TICKWISE__SYSTEM__LOG_LEVEL"] = "INFO"
    exe = Path(sys.executable).with_name("tickwise")
    with log.open("ab") as err:
        return await asyncio.create_subprocess_exec(
            str(exe),
            "live",
            "--until",
            UNTIL,
            "--speed",
            "150",
            "--json",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )


async def test_a_live_session_killed_hard_and_restarted_ends_with_every_candle_and_signal(
    trained: tuple[Settings, date], db_url: str, tmp_path: Path
) -> None:
    settings, day = trained
    start = day_open(day)
    await reset_live(settings, db_url, start)
    log = tmp_path / "live.log"
    conn = await asyncpg.connect(db_url)
    try:
        first = await start_cli(settings, db_url, log)
        # Kill the process (no chance to flush or spill) once some bars are stored, mid-session.
        for _ in range(1200):
            if await stored_minutes(conn, start) >= 8 or first.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert first.returncode is None, f"the first run ended before the kill: {log.read_text()[-2000:]}"
        first.send_signal(signal.SIGKILL)
        await first.communicate()
        done = await stored_minutes(conn, start)
        assert 0 < done < MINUTES
        # The writer flushes each table on its own, so a crash can store a bar's candle but not its
        # signal or feature row: make sure of such torn bars (one of each kind), the restart must redo them.
        tokens = [
            r[0]
            for r in await conn.fetch(
                "SELECT DISTINCT instrument_token FROM candles WHERE time >= $1 ORDER BY 1", start
            )
        ]
        for table, token in (("signals", tokens[0]), ("features", tokens[1])):
            await conn.execute(
                f"DELETE FROM {table} WHERE instrument_token = $1 AND time >= (SELECT max(time) FROM candles "
                "WHERE instrument_token = $1 AND timeframe = '1m')",
                token,
            )

        second = await start_cli(settings, db_url, log)
        out, _ = await asyncio.wait_for(second.communicate(), 240)
        assert second.returncode == 0, log.read_text()[-3000:]
    finally:
        await conn.close()
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report["ended_by"] == "until"
    assert report["repairs"] >= 1 and report["repaired_bars"] >= 1  # the minutes lost in the crash
    await assert_session_complete(settings, db_url, day, MINUTES)


class CountingHooks(NullHooks):
    """Counts the bars the engine computed (features + prediction), whatever the database does."""

    def __init__(self) -> None:
        self.predictions = 0

    def on_prediction(self, seconds: float) -> None:
        self.predictions += 1


async def test_a_database_outage_mid_session_loses_nothing_and_the_pipeline_keeps_computing(
    trained: tuple[Settings, date], db_url: str
) -> None:
    settings, day = trained
    start = day_open(day)
    await reset_live(settings, db_url, start)
    watcher = await asyncpg.connect(db_url)  # opened before the outage and spared by it
    admin = await asyncpg.connect(db_url, database="postgres")  # a database may not lock itself out
    hooks = CountingHooks()
    try:
        database = await watcher.fetchval("SELECT current_database()")
        spared = await watcher.fetchval("SELECT pg_backend_pid()")
        live = asyncio.create_task(
            run_live(settings, LiveOptions(until=UNTIL, speed=50, url=db_url, metrics=False), hooks=hooks)
        )
        for _ in range(1200):
            if await stored_minutes(watcher, start) >= 4 or live.done():
                break
            await asyncio.sleep(0.05)
        assert not live.done()
        # The outage: no new connection is accepted and every existing one (but the watcher) is cut.
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> $2",
                database,
                spared,
            )
            stored_before = await stored_minutes(watcher, start)
            computed_before = hooks.predictions
            await asyncio.sleep(12.0)  # 10 simulated minutes at 50x
            computed_during = hooks.predictions - computed_before
            stored_during = await stored_minutes(watcher, start) - stored_before
        finally:
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        assert stored_during == 0  # the outage was real
        assert computed_during >= 3 * 5  # ... and the pipeline kept computing through it
        report = await asyncio.wait_for(live, 120)
    finally:
        await admin.close()
        await watcher.close()
    assert report.ended_by == "until"
    assert report.spilled_files_left == 0
    assert report.written["signals"] >= 3 * MINUTES
    await assert_session_complete(settings, db_url, day, MINUTES)
