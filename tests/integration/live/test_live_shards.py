"""`tickwise live --shards 3`: three worker processes, one killed with SIGKILL mid-session and restarted
by the supervisor; the day's bars end equal to the simulator's REST candles and every bar has its signal.

One historical run (3 instruments, quick training) provides the model; the live session covers
09:15-09:35 of the simulated day, one instrument per shard.
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

import asyncpg
import pytest
import pytest_asyncio
from live_support import assert_session_complete, day_open, live_day, live_env, make_settings, reset_live

from tickwise.adapters.timescale.schema import ALL_TABLES
from tickwise.config import Settings

pytestmark = [pytest.mark.slow, pytest.mark.db]

UNTIL = "09:35"
MINUTES = 20


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def trained(
    pool: asyncpg.Pool, db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Settings, date]]:
    from tickwise.bootstrap.historical import Reporter, run_historical

    async with pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join(ALL_TABLES)}")
    settings = make_settings(db_url, tmp_path_factory.mktemp("live-shards"))
    with Reporter(quiet=True) as reporter:
        await run_historical(settings, reporter, url=db_url)
    yield settings, await live_day(settings, db_url)


def shard_pids(supervisor: int) -> dict[str, int]:
    """``{"I/N": pid}`` of the supervisor's shard processes (from /proc)."""
    out: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == supervisor and b"--shard" in argv:
            out[argv[argv.index(b"--shard") + 1].decode()] = int(entry.name)
    return out


async def shard_minutes(conn: asyncpg.Connection, since: object) -> int:
    """Live signals stored since ``since`` by the shard that owns the middle token."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM signals WHERE mode = 'live' AND time >= $1 AND instrument_token = "
            "(SELECT instrument_token FROM instruments WHERE tradingsymbol IN ('INFY','TCS','RELIANCE') "
            "ORDER BY instrument_token OFFSET 1 LIMIT 1)",
            since,
        )
    )


async def test_three_shards_one_killed_hard_end_with_every_candle_equal_to_rest(
    trained: tuple[Settings, date], db_url: str, tmp_path: Path
) -> None:
    settings, day = trained
    start = day_open(day)
    await reset_live(settings, db_url, start)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWISE")}
    env.update(live_env(db_url, Path(settings.system.data_dir)))
    env["TICKWISE__SYSTEM__LOG_LEVEL"] = "INFO"
    log = tmp_path / "live.log"
    exe = Path(sys.executable).with_name("tickwise")
    conn = await asyncpg.connect(db_url)
    try:
        with log.open("ab") as err:
            supervisor = await asyncio.create_subprocess_exec(
                str(exe), "live", "--shards", "3", "--until", UNTIL, "--speed", "150", "--json",
                env=env, stdout=asyncio.subprocess.PIPE, stderr=err,
            )  # fmt: skip
        # Shard 1 owns the second token (sorted, round-robin): kill it once it has stored a few bars.
        for _ in range(2400):
            if await shard_minutes(conn, start) >= 5 or supervisor.returncode is not None:
                break
            await asyncio.sleep(0.05)
        pids = shard_pids(supervisor.pid)
        assert "1/3" in pids and len(pids) == 3, f"shards seen: {pids}; log: {log.read_text()[-2000:]}"
        os.kill(pids["1/3"], signal.SIGKILL)
        killed_at = await shard_minutes(conn, start)
        assert 0 < killed_at < MINUTES
        out, _ = await asyncio.wait_for(supervisor.communicate(), 400)
    finally:
        await conn.close()
    assert supervisor.returncode == 0, log.read_text()[-3000:]
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report["ok"]
    assert [s["restarts"] for s in report["shards"]] == [0, 1, 0]
    assert report["shards"][1]["exit_codes"][0] == -signal.SIGKILL
    assert all(s["report"]["ended_by"] == "until" for s in report["shards"])
    await assert_session_complete(settings, db_url, day, MINUTES)
