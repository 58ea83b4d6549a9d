"""Backtest runs, trades and equity curves in TimescaleDB, and the signal reads a backtest needs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import pandas as pd

from tickwise.adapters.timescale.frames import records_frame
from tickwise.domain.errors import DataValidationError
from tickwise.domain.trade_record import TRADE_RECORD_COLUMNS
from tickwise.ports.backtests import BacktestRun

TRADE_COLUMNS = ("run_id", *TRADE_RECORD_COLUMNS)
MONEY = ("gross", "brokerage", "stt", "exchange", "sebi", "stamp", "gst", "slippage", "net")
EQUITY_COLUMNS = ("run_id", "time", "equity", "drawdown")
SIGNAL_COLUMNS = (
    "instrument_token",
    "timeframe",
    "time",
    "available_at",
    "model_version",
    "direction",
    "confidence",
    "size",
    "meta_size",
)


def _run(row: asyncpg.Record) -> BacktestRun:
    return BacktestRun(
        run_id=row["run_id"],
        start=row["from"],
        end=row["to"],
        model_version=row["model_version"],
        params=dict(row["params"]),
        metrics=dict(row["metrics"]),
        created_at=row["created_at"],
    )


def _jsonable(value: Any) -> Any:
    # The pool's jsonb codec encodes with plain json.dumps: turn dates, Decimals and the like into text.
    return json.loads(json.dumps(value, default=str))


def _records(frame: pd.DataFrame, columns: Sequence[str], run_id: str) -> list[tuple[Any, ...]]:
    missing = [c for c in columns if c != "run_id" and c not in frame.columns]
    if missing:
        raise DataValidationError(f"backtest frame lacks columns {', '.join(missing)}")
    cols = [frame[c].tolist() if c != "run_id" else [run_id] * len(frame) for c in columns]
    return [tuple(_plain(v) for v in row) for row in zip(*cols, strict=True)]


def _plain(value: Any) -> Any:
    # COPY wants Python scalars: numpy ints/floats and pandas timestamps become int/float/datetime.
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


class TimescaleBacktestRepository:
    """BacktestRepository and BacktestSignalSource on an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def save(self, run: BacktestRun, trades: pd.DataFrame, equity: pd.DataFrame) -> None:
        """Write the run row, its trades and equity points in one transaction (all or nothing)."""
        trade_rows = _records(trades, TRADE_COLUMNS, run.run_id)
        equity_rows = _records(equity, EQUITY_COLUMNS, run.run_id)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                'INSERT INTO backtest_runs (run_id, "from", "to", model_version, params, metrics) '
                "VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)",
                run.run_id,
                run.start,
                run.end,
                run.model_version,
                _jsonable(run.params),
                _jsonable(run.metrics),
            )
            if trade_rows:
                await conn.copy_records_to_table("backtest_trades", records=trade_rows, columns=TRADE_COLUMNS)
            if equity_rows:
                await conn.copy_records_to_table(
                    "backtest_equity", records=equity_rows, columns=EQUITY_COLUMNS
                )

    async def get(self, run_id: str) -> BacktestRun | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM backtest_runs WHERE run_id = $1", run_id)
        return None if row is None else _run(row)

    async def latest(self) -> BacktestRun | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM backtest_runs ORDER BY created_at DESC, run_id DESC LIMIT 1"
            )
        return None if row is None else _run(row)

    async def trades(self, run_id: str) -> pd.DataFrame:
        """The run's trades ordered by entry time (money as float rupees)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {', '.join(TRADE_COLUMNS)} FROM backtest_trades WHERE run_id = $1 "  # nosec B608: the column list is a module constant; every value is a $n parameter
                "ORDER BY entry_time, instrument_token",
                run_id,
            )
        return records_frame(
            rows,
            TRADE_COLUMNS,
            time_columns=("entry_time", "exit_time", "signal_time"),
            float_columns=(*MONEY, "entry_price", "exit_price", "confidence"),
        )

    async def equity(self, run_id: str) -> pd.DataFrame:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {', '.join(EQUITY_COLUMNS)} FROM backtest_equity WHERE run_id = $1 ORDER BY time",  # nosec B608: the column list is a module constant; every value is a $n parameter
                run_id,
            )
        return records_frame(rows, EQUITY_COLUMNS, float_columns=("equity", "drawdown"))

    # -- inputs --------------------------------------------------------------------------------------

    async def has_sample_column(self) -> bool:
        """True once ``signals.sample`` exists (the out-of-sample history adds it)."""
        async with self._pool.acquire() as conn:
            found = await conn.fetchval(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = 'signals' AND column_name = 'sample'"
            )
        return found is not None

    async def signals(
        self,
        start: datetime,
        end: datetime,
        *,
        model_version: str | None,
        oos: bool,
        mode: str = "historical",
    ) -> pd.DataFrame:
        """Signals of ``mode`` (historical; live for a paper parity check) with a direction,
        ``start <= time < end``, of one model or the OOS set."""
        params: list[Any] = [start, end, mode]
        where = "mode = $3 AND direction <> 0 AND time >= $1 AND time < $2"
        if model_version is not None:
            params.append(model_version)
            where += f" AND model_version = ${len(params)}"
        if oos:
            where += " AND sample = 'oos'"
        sql = (
            f"SELECT {', '.join(SIGNAL_COLUMNS)} FROM signals WHERE {where} "  # nosec B608: constant columns and clauses; every value is a $n parameter
            "ORDER BY available_at, instrument_token"
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *params)
        frame = records_frame(
            rows,
            SIGNAL_COLUMNS,
            time_columns=("time", "available_at"),
            float_columns=("confidence", "size", "meta_size"),
        )
        frame["instrument_token"] = frame["instrument_token"].astype(np.int64)
        frame["direction"] = frame["direction"].astype(np.int64)
        return frame

    async def lot_sizes(self, tokens: Sequence[int]) -> dict[int, int]:
        """``instruments.lot_size`` per token (tokens not in the table are left out)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT instrument_token, lot_size FROM instruments WHERE instrument_token = ANY($1::bigint[])",
                list(tokens),
            )
        return {int(r["instrument_token"]): max(1, int(r["lot_size"])) for r in rows}


PARITY_SQL = """
WITH pairs AS (
    SELECT (h.time AT TIME ZONE 'Asia/Kolkata')::date AS day,
           h.direction = l.direction AS agree,
           abs(h.confidence - l.confidence) AS diff
    FROM signals h
    JOIN signals l USING (instrument_token, timeframe, time, model_version)
    WHERE h.mode = 'historical' AND l.mode = 'live'
)
SELECT day, count(*) AS pairs, avg(agree::int)::float8 AS direction_agree, max(diff) AS max_confidence_diff
FROM pairs
GROUP BY day
ORDER BY day DESC
LIMIT $1
"""


class TimescaleParitySource:
    """Live-vs-historical agreement per IST day, from bars scored in both modes by the same model."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def parity_by_day(self, *, days: int = 30) -> pd.DataFrame:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(PARITY_SQL, days)
        frame = records_frame(
            rows,
            ("day", "pairs", "direction_agree", "max_confidence_diff"),
            time_columns=(),
            float_columns=("direction_agree", "max_confidence_diff"),
        )
        return frame.sort_values("day").reset_index(drop=True)
