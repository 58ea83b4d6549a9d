"""`tickwise bench ingest`: candle bulk-write throughput into the real ``candles`` hypertable.

Three timings over the same generated rows, in one run:

* ``repo_fresh``: ``TimescaleCandleRepository.add_frame`` (validation, numpy binary COPY into a temp
  stage, ``INSERT ... ON CONFLICT DO NOTHING``) into empty chunks;
* ``repo_rewrite``: the same call again, every row already stored (all conflicts);
* ``psql_copy``: ``psql -c "\\copy candles ... FROM file.csv CSV"`` of the same rows into the same,
  again empty, chunks (CSV written before the timer starts).

The rows live in a reserved window in 1990 (30-day chunks nobody else uses), cleared with
``drop_chunks`` before, between and after the runs, so real candles are never touched and each
measurement starts from the same table state.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.cluster import find_bindir
from tickwise.adapters.timescale.pool import open_pool
from tickwise.domain.candle import CANDLE_FRAME_COLUMNS
from tickwise.domain.errors import StorageError

WINDOW_START = pd.Timestamp("1990-01-01", tz="UTC")
WINDOW_END = pd.Timestamp("1991-01-01", tz="UTC")
_CSV_COLUMNS = list(CANDLE_FRAME_COLUMNS)


def bench_frame(rows: int, *, instruments: int = 50, seed: int = 11) -> pd.DataFrame:
    """``rows`` valid 1-minute candles over ``instruments`` tokens inside the reserved 1990 window."""
    instruments = max(1, min(instruments, rows))
    per = -(-rows // instruments)
    minutes = np.tile(np.arange(per), instruments)[:rows]
    tokens = np.repeat(np.arange(1, instruments + 1, dtype=np.int64) * 256 + 1, per)[:rows]
    # 375 bars a session, one session a day from 09:15 IST (03:45 UTC).
    day, bar = np.divmod(minutes, 375)
    start = WINDOW_START + pd.Timedelta(hours=3, minutes=45)
    times = start + pd.to_timedelta(day, unit="D") + pd.to_timedelta(bar, unit="min")
    if len(times) and times.max() >= WINDOW_END:
        raise ValueError(f"{rows} rows over {instruments} instruments do not fit the 1990 bench window")
    rng = np.random.default_rng(seed)
    close = 1000.0 + np.round(rng.standard_normal(rows).cumsum() * 0.05, 2)
    close = np.maximum(close, 1.0)
    spread = np.round(np.abs(rng.standard_normal(rows)) * 0.5, 2)
    return pd.DataFrame(
        {
            "instrument_token": tokens,
            "timeframe": "1m",
            "time": times,
            "open": close,
            "high": close + spread,
            "low": np.maximum(close - spread, 0.5),
            "close": close,
            "volume": rng.integers(0, 50_000, rows),
            "oi": pd.array([None] * rows, dtype="Int64"),
            "source": "historical",
        }
    )


async def _clear(pool: Any) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "SELECT drop_chunks('candles', older_than => $1::timestamptz, newer_than => $2::timestamptz)",
            WINDOW_END.to_pydatetime(),
            WINDOW_START.to_pydatetime(),
        )
        leftover = await conn.fetchval(
            "SELECT count(*) FROM candles WHERE time >= $1 AND time < $2",
            WINDOW_START.to_pydatetime(),
            WINDOW_END.to_pydatetime(),
        )
        if leftover:  # a chunk straddling the window edge: delete row-wise
            await conn.execute(
                "DELETE FROM candles WHERE time >= $1 AND time < $2",
                WINDOW_START.to_pydatetime(),
                WINDOW_END.to_pydatetime(),
            )


async def _window_count(pool: Any) -> int:
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM candles WHERE time >= $1 AND time < $2",
                WINDOW_START.to_pydatetime(),
                WINDOW_END.to_pydatetime(),
            )
        )


def _psql_binary() -> str:
    try:
        candidate = find_bindir() / "psql"
        if candidate.is_file():
            return str(candidate)
    except StorageError:
        pass
    found = shutil.which("psql")
    if not found:
        raise StorageError("psql not found (needed for the \\copy baseline); run `make setup`")
    return found


def _psql_copy(psql: str, url: str, frame: pd.DataFrame) -> float:
    """Write the CSV (untimed), then time ``psql \\copy`` of it into ``candles``; seconds."""
    with tempfile.TemporaryDirectory(prefix="tickwise-bench-") as tmp:
        csv = Path(tmp) / "candles.csv"
        frame.to_csv(csv, columns=_CSV_COLUMNS, header=False, index=False)
        t0 = time.perf_counter()
        result = subprocess.run(  # nosec B603: a fixed argv of trusted tools, no shell
            [
                psql,
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                url,
                "-c",
                f"\\copy candles ({', '.join(_CSV_COLUMNS)}) FROM '{csv}' WITH (FORMAT csv)",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - t0
    if result.returncode != 0:
        raise StorageError(f"psql \\copy baseline failed: {result.stderr.strip()}")
    return elapsed


async def run_ingest_bench(url: str, rows: int, *, instruments: int = 50) -> dict[str, Any]:
    """Run the three timings against ``url`` (migrated); return the figures (rows/s and seconds)."""
    frame = bench_frame(rows, instruments=instruments)
    psql = _psql_binary()
    async with open_pool(url, min_size=1, max_size=2) as pool:
        repo = TimescaleCandleRepository(pool)
        await _clear(pool)
        try:
            t0 = time.perf_counter()
            inserted = await repo.add_frame(frame)
            fresh_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            rewritten = await repo.add_frame(frame)
            rewrite_s = time.perf_counter() - t0
            stored_after_rewrite = await _window_count(pool)
            await _clear(pool)
            psql_s = await asyncio.to_thread(_psql_copy, psql, url, frame)
            copied = await _window_count(pool)
        finally:
            await _clear(pool)
    if inserted != rows or rewritten != 0 or stored_after_rewrite != rows or copied != rows:
        raise StorageError(
            f"bench sanity check failed: inserted {inserted}, rewritten {rewritten}, "
            f"stored {stored_after_rewrite}, psql copied {copied} (expected {rows}, 0, {rows}, {rows})"
        )
    fresh = rows / fresh_s
    psql_rate = rows / psql_s
    return {
        "bench": "ingest",
        "table": "candles",
        "rows": rows,
        "instruments": instruments,
        "repo_fresh_rows_per_s": round(fresh),
        "repo_rewrite_rows_per_s": round(rows / rewrite_s),
        "psql_copy_rows_per_s": round(psql_rate),
        "repo_fresh_vs_psql": round(fresh / psql_rate, 3),
        "repo_fresh_s": round(fresh_s, 3),
        "repo_rewrite_s": round(rewrite_s, 3),
        "psql_copy_s": round(psql_s, 3),
    }
