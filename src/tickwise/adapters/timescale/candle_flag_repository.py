"""Candle flags (``core.candle_flags``) in the ``candle_flags`` hypertable."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import numpy as np
import pandas as pd

from tickwise.adapters.timescale.bulk import Column
from tickwise.adapters.timescale.frames import (
    choice_column,
    float_column,
    int_column,
    records_frame,
    require_columns,
    time_bounds,
    time_column,
    timeframe_column,
    write_frame,
)
from tickwise.domain.timeframe import Timeframe

FLAG_COLUMNS = ("instrument_token", "timeframe", "time", "check", "score", "action")
ACTIONS = ("kept", "excluded")
_KEY = ("instrument_token", "timeframe", "check", "time")
_SHOW = ("instrument_token", "timeframe", "time", "check")


def encode_flags(frame: pd.DataFrame) -> list[Column]:
    """Validate a flag frame and convert it to COPY columns (first bad row rejects the batch)."""
    what = "candle flag"
    require_columns(what, frame, FLAG_COLUMNS)
    action = choice_column(what, frame, "action", ACTIONS, _SHOW)
    return [
        int_column(what, frame, "instrument_token", _SHOW),
        Column("timeframe", "text", timeframe_column(what, frame, _SHOW)),
        Column("time", "timestamptz", time_column(what, frame, "time", _SHOW)),
        Column("check", "text", frame["check"].astype(str).to_numpy(dtype=object)),
        Column("score", "float8", float_column(what, frame, "score", _SHOW)),
        Column("action", "text", np.asarray(action, dtype=object)),
    ]


class TimescaleCandleFlagRepository:
    """CandleFlagRepository on ``candle_flags`` (primary key instrument_token, timeframe, check, time)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add_frame(self, frame: pd.DataFrame) -> int:
        """Write flags; re-checking a history overwrites the stored score and action."""
        return await write_frame(self._pool, "candle_flags", frame, _KEY, encode_flags, on_conflict="update")

    async def read_frame(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        params: list[object] = [instrument_token, str(timeframe)]
        where = time_bounds(start, end, params)
        sql = (
            'SELECT instrument_token, timeframe, time, "check", score, action FROM candle_flags '  # nosec B608: constant columns; values are bound $n parameters
            f'WHERE instrument_token = $1 AND timeframe = $2{where} ORDER BY time, "check"'
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *params)
        frame = records_frame(rows, FLAG_COLUMNS, float_columns=("score",))
        frame["instrument_token"] = frame["instrument_token"].astype(np.int64)
        return frame

    async def counts(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> dict[tuple[str, str], int]:
        params: list[object] = []
        where = time_bounds(start, end, params)
        sql = (
            'SELECT "check", action, count(*) AS n FROM candle_flags WHERE true'  # nosec B608: constant SQL; values are bound $n parameters
            f'{where} GROUP BY "check", action'
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *params)
        return {(str(r["check"]), str(r["action"])): int(r["n"]) for r in rows}
