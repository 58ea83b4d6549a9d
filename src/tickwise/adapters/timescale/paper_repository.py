"""Paper trading in TimescaleDB (``paper_signals``, ``paper_positions``, ``paper_trades``) and the stored
ticks a parity backtest replays."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import pandas as pd

from tickwise.adapters.timescale.backtest_repository import MONEY, TRADE_COLUMNS
from tickwise.adapters.timescale.frames import records_frame
from tickwise.domain.errors import DataValidationError
from tickwise.ports.paper import POSITION_COLUMNS, SIGNAL_COLUMNS, TICK_PRICE_COLUMNS

_CLOSE_SQL = (
    "UPDATE paper_positions SET closed_at = $4, exit_reason = $5, updated_at = now() "
    "WHERE run_id = $1 AND instrument_token = $2 AND entry_time = $3"
)


def _insert_new(table: str, columns: Sequence[str]) -> str:
    """An INSERT of one row that keeps the row already stored (a retried write, or the first version of a
    signal: the one acted on)."""
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "  # nosec B608: constant table and column names; values are bound
        "ON CONFLICT DO NOTHING"
    )


def _plain(value: Any) -> Any:
    # COPY wants Python scalars: numpy ints/floats and pandas timestamps become int/float/datetime.
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _rows(frame: pd.DataFrame, columns: Sequence[str], run_id: str) -> list[tuple[Any, ...]]:
    missing = [c for c in columns if c != "run_id" and c not in frame.columns]
    if missing:
        raise DataValidationError(f"paper frame lacks columns {', '.join(missing)}")
    cols = [frame[c].tolist() if c != "run_id" else [run_id] * len(frame) for c in columns]
    return [tuple(_plain(v) for v in row) for row in zip(*cols, strict=True)]


class TimescalePaperRepository:
    """PaperRepository, PaperSignalSource and TickPriceSource on an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(
        self, run_id: str, opened: pd.DataFrame, closed: pd.DataFrame, signals: pd.DataFrame | None = None
    ) -> None:
        """Signals taken, opened positions, closed trades and the closing of their positions: all or
        nothing, so a retried write never duplicates a trade. A signal already recorded is kept (the
        first version is the one acted on)."""
        signal_rows = [] if signals is None else _rows(signals, ("run_id", *SIGNAL_COLUMNS), run_id)
        position_rows = _rows(opened, ("run_id", *POSITION_COLUMNS), run_id)
        trade_rows = _rows(closed, TRADE_COLUMNS, run_id)
        if not signal_rows and not position_rows and not trade_rows:
            return
        async with self._pool.acquire() as conn, conn.transaction():
            if signal_rows:
                await conn.executemany(_insert_new("paper_signals", ("run_id", *SIGNAL_COLUMNS)), signal_rows)
            if position_rows:
                await conn.executemany(
                    _insert_new("paper_positions", ("run_id", *POSITION_COLUMNS)), position_rows
                )
            if trade_rows:
                await conn.copy_records_to_table("paper_trades", records=trade_rows, columns=TRADE_COLUMNS)
                await conn.executemany(
                    _CLOSE_SQL,
                    [
                        (run_id, _plain(t), _plain(e), _plain(x), r)
                        for t, e, x, r in zip(
                            closed["instrument_token"],
                            closed["entry_time"],
                            closed["exit_time"],
                            closed["exit_reason"],
                            strict=True,
                        )
                    ],
                )

    async def trades(self, run_id: str) -> pd.DataFrame:
        """The session's trades ordered by entry time (money as float rupees)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {', '.join(TRADE_COLUMNS)} FROM paper_trades WHERE run_id = $1 "  # nosec B608: constant column names; values are bound
                "ORDER BY entry_time, instrument_token",
                run_id,
            )
        return records_frame(
            rows,
            TRADE_COLUMNS,
            time_columns=("entry_time", "exit_time", "signal_time"),
            float_columns=(*MONEY, "entry_price", "exit_price", "confidence"),
        )

    async def positions(self, run_id: str) -> pd.DataFrame:
        """The session's positions (open ones have no ``closed_at``), by entry time."""
        columns = ("run_id", *POSITION_COLUMNS, "closed_at", "exit_reason")
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {', '.join(columns)} FROM paper_positions WHERE run_id = $1 "  # nosec B608: constant column names; values are bound
                "ORDER BY entry_time, instrument_token",
                run_id,
            )
        return records_frame(
            rows,
            columns,
            time_columns=("entry_time", "horizon_end", "signal_time", "closed_at"),
            float_columns=("entry_price", "take_profit", "stop_loss", "confidence"),
        )

    async def paper_signals(self, run_id: str) -> pd.DataFrame:
        """The signals the session acted on, in the order its engine took them (by ``available_at``)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {', '.join(SIGNAL_COLUMNS)} FROM paper_signals WHERE run_id = $1 "  # nosec B608: constant column names; values are bound
                "ORDER BY available_at, instrument_token, time, model_version",
                run_id,
            )
        return records_frame(
            rows,
            SIGNAL_COLUMNS,
            time_columns=("time", "available_at", "horizon_end"),
            float_columns=("confidence", "size", "meta_size", "take_profit", "stop_loss"),
        )

    async def close_interrupted(self, run_id: str, at: datetime) -> int:
        """Positions of other sessions left open by a process that died: closed as ``interrupted``."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                "UPDATE paper_positions SET closed_at = $2, exit_reason = 'interrupted', updated_at = now() "
                "WHERE closed_at IS NULL AND run_id <> $1",
                run_id,
                at,
            )
        return int(status.split()[-1])

    async def tick_prices(self, tokens: Sequence[int], start: datetime, end: datetime) -> pd.DataFrame:
        """Stored ticks as the feed delivered them: last price and best bid/ask (NaN without depth)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT instrument_token, time, received_at, last_price, bid_price_1, ask_price_1 FROM ticks "
                "WHERE instrument_token = ANY($1::bigint[]) AND time >= $2 AND time < $3 "
                "ORDER BY time, received_at, instrument_token",
                list(tokens),
                start,
                end,
            )
        frame = records_frame(
            rows,
            TICK_PRICE_COLUMNS,
            time_columns=("time", "received_at"),
            float_columns=("last_price", "bid", "ask"),
        )
        frame["instrument_token"] = frame["instrument_token"].astype(np.int64)
        return frame
