"""Candles in TimescaleDB: validated bulk writes (staged binary COPY) and range/latest reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import numpy as np
import pandas as pd

from tickwise.adapters.timescale.bulk import Column, OnConflict
from tickwise.adapters.timescale.frames import (
    float_column,
    int_column,
    records_frame,
    reject,
    require_columns,
    time_bounds,
    time_column,
    timeframe_column,
    write_frame,
)
from tickwise.domain.candle import CANDLE_FRAME_COLUMNS, Candle
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.frames import candles_to_frame

CANDLE_COLUMNS = (*CANDLE_FRAME_COLUMNS, "obi_5")
_KEY = ("instrument_token", "timeframe", "time")
_SHOW = ("instrument_token", "timeframe", "time")
_SOURCES = ("historical", "live")


def encode_candles(frame: pd.DataFrame) -> list[Column]:
    """Validate a candle frame and convert it to COPY columns; raise DataValidationError on the first bad row.

    Checks: known timeframe, tz-aware time, finite positive prices, ``low <= open, close <= high``,
    finite non-negative volume, ``source`` in historical/live.
    """
    what = "candle"
    require_columns(
        what, frame, ("instrument_token", "timeframe", "time", "open", "high", "low", "close", "volume")
    )
    token = int_column(what, frame, "instrument_token", _SHOW)
    timeframe = timeframe_column(what, frame, _SHOW)
    time_us = time_column(what, frame, "time", _SHOW)
    o = float_column(what, frame, "open", _SHOW, positive=True)
    h = float_column(what, frame, "high", _SHOW, positive=True)
    low = float_column(what, frame, "low", _SHOW, positive=True)
    c = float_column(what, frame, "close", _SHOW, positive=True)
    bad = h < low
    if bad.any():
        row = int(np.argmax(bad))
        raise reject(what, frame, row, f"high {h[row]} < low {low[row]}", _SHOW)
    bad = (o < low) | (o > h) | (c < low) | (c > h)
    if bad.any():
        row = int(np.argmax(bad))
        raise reject(
            what,
            frame,
            row,
            f"open/close outside [low, high] ({o[row]}, {c[row]} vs [{low[row]}, {h[row]}])",
            _SHOW,
        )
    volume = float_column(what, frame, "volume", _SHOW)
    bad = volume < 0
    if bad.any():
        row = int(np.argmax(bad))
        raise reject(what, frame, row, f"volume is negative ({volume[row]})", _SHOW)
    n = len(frame)
    if "source" in frame.columns:
        source = frame["source"].to_numpy(dtype=object)
        bad = ~np.isin(source, np.array(_SOURCES, dtype=object))
        if bad.any():
            row = int(np.argmax(bad))
            raise reject(what, frame, row, f"source is {source[row]!r} (expected historical or live)", _SHOW)
    else:
        source = np.full(n, "historical", dtype=object)
    columns = [
        token,
        Column("timeframe", "text", timeframe),
        Column("time", "timestamptz", time_us),
        Column("open", "float8", o),
        Column("high", "float8", h),
        Column("low", "float8", low),
        Column("close", "float8", c),
        Column("volume", "int8", volume.astype(np.int64)),
    ]
    if "oi" in frame.columns:
        oi = int_column(what, frame, "oi", _SHOW, nullable=True)
        columns.append(oi)
    columns.append(Column("source", "text", source))
    if "obi_5" in frame.columns:
        obi = float_column(what, frame, "obi_5", _SHOW, nullable=True)
        columns.append(Column("obi_5", "float8", obi, nan_to_null=True))
    return columns


class TimescaleCandleRepository:
    """CandleRepository on the ``candles`` hypertable (unique on instrument_token, timeframe, time)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add_frame(self, frame: pd.DataFrame, *, on_conflict: OnConflict = "nothing") -> int:
        """Write a candle frame in one transaction; return rows inserted (or updated).

        ``on_conflict='nothing'`` keeps stored candles (idempotent backfill); ``'update'`` overwrites them
        (live candles revised by late ticks; the last row per key in the frame wins). An invalid row
        rejects the whole batch with DataValidationError and nothing is written.
        """
        return await write_frame(
            self._pool,
            "candles",
            frame,
            _KEY,
            encode_candles,
            on_conflict=on_conflict,
            direct_if=_none_stored,
        )

    async def add_many(self, candles: Sequence[Candle], *, on_conflict: OnConflict = "update") -> int:
        """Write domain candles (live path: by default a re-sent candle replaces the stored one)."""
        if not candles:
            return 0
        return await self.add_frame(candles_to_frame(candles), on_conflict=on_conflict)

    async def read_frame(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Candles of one instrument and timeframe with ``start <= time < end``, oldest first."""
        params: list[object] = [instrument_token, str(timeframe)]
        where = time_bounds(start, end, params)
        sql = (
            f"SELECT {', '.join(CANDLE_COLUMNS)} FROM candles WHERE instrument_token = $1 AND timeframe = $2"  # nosec B608: column lists are module constants; every value is a bound $n parameter
            f"{where} ORDER BY time"
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *params)
        return _frame(rows)

    async def read_many(
        self,
        instrument_tokens: Sequence[int] | None,
        timeframe: Timeframe,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Candles of several instruments (None: all) ordered by instrument, then time."""
        params: list[object] = [str(timeframe)]
        where = "timeframe = $1"
        if instrument_tokens is not None:
            params.append(list(instrument_tokens))
            where += f" AND instrument_token = ANY(${len(params)}::bigint[])"
        where += time_bounds(start, end, params)
        sql = f"SELECT {', '.join(CANDLE_COLUMNS)} FROM candles WHERE {where} ORDER BY instrument_token, time"  # nosec B608: column lists are module constants; every value is a bound $n parameter
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *params)
        return _frame(rows)

    async def latest(self, instrument_token: int, timeframe: Timeframe, n: int) -> pd.DataFrame:
        """The last ``n`` candles (warm-up window), oldest first."""
        sql = (
            f"SELECT * FROM (SELECT {', '.join(CANDLE_COLUMNS)} FROM candles WHERE instrument_token = $1 "  # nosec B608: column lists are module constants; every value is a bound $n parameter
            "AND timeframe = $2 ORDER BY time DESC LIMIT $3) last_n ORDER BY time"
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, instrument_token, str(timeframe), n)
        return _frame(rows)

    async def last_time(self, instrument_token: int | None, timeframe: Timeframe) -> datetime | None:
        """Open instant of the newest stored candle (of one instrument, or of any)."""
        async with self._pool.acquire() as conn:
            if instrument_token is None:
                value = await conn.fetchval(
                    "SELECT max(time) FROM candles WHERE timeframe = $1", str(timeframe)
                )
            else:
                value = await conn.fetchval(
                    "SELECT max(time) FROM candles WHERE instrument_token = $1 AND timeframe = $2",
                    instrument_token,
                    str(timeframe),
                )
        return value if isinstance(value, datetime) else None

    async def first_time(self, instrument_token: int, timeframe: Timeframe) -> datetime | None:
        """Open instant of the instrument's oldest stored candle: its anchor."""
        async with self._pool.acquire() as conn:
            value = await conn.fetchval(
                "SELECT min(time) FROM candles WHERE instrument_token = $1 AND timeframe = $2",
                instrument_token,
                str(timeframe),
            )
        return value if isinstance(value, datetime) else None

    async def count(self, instrument_token: int | None = None, timeframe: Timeframe | None = None) -> int:
        """Number of stored candles, optionally of one instrument and/or timeframe."""
        params: list[object] = []
        clauses = []
        if instrument_token is not None:
            params.append(instrument_token)
            clauses.append(f"instrument_token = ${len(params)}")
        if timeframe is not None:
            params.append(str(timeframe))
            clauses.append(f"timeframe = ${len(params)}")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        async with self._pool.acquire() as conn:
            return int(await conn.fetchval(f"SELECT count(*) FROM candles{where}", *params))  # nosec B608: column lists are module constants; every value is a bound $n parameter


async def _none_stored(conn: asyncpg.Connection, columns: Sequence[Column]) -> bool:
    """Whether no candle exists yet for the batch's instruments/timeframes within its time span."""
    by_name = {c.name: c.values for c in columns}
    time_us = by_name["time"]
    start = pd.Timestamp(int(time_us.min()), unit="us", tz="UTC").to_pydatetime()
    end = pd.Timestamp(int(time_us.max()), unit="us", tz="UTC").to_pydatetime()
    return not bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM candles WHERE instrument_token = ANY($1::bigint[]) "
            "AND timeframe = ANY($2::text[]) AND time >= $3 AND time <= $4)",
            np.unique(by_name["instrument_token"]).tolist(),
            sorted(set(by_name["timeframe"])),
            start,
            end,
        )
    )


def _frame(rows: Sequence[asyncpg.Record]) -> pd.DataFrame:
    frame = records_frame(rows, CANDLE_COLUMNS, float_columns=("open", "high", "low", "close", "obi_5"))
    frame["instrument_token"] = frame["instrument_token"].astype(np.int64)
    frame["volume"] = frame["volume"].astype(np.int64)
    frame["oi"] = frame["oi"].astype("Int64")
    return frame
