"""Model signals in the ``signals`` hypertable, upserted on the contract key."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import numpy as np
import pandas as pd

from tickwise.adapters.timescale.bulk import (
    Column,
    OnConflict,
)
from tickwise.adapters.timescale.frames import (
    BatchRejected,
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
from tickwise.domain.signal import Signal
from tickwise.domain.timeframe import Timeframe

SIGNAL_COLUMNS = (
    "instrument_token",
    "timeframe",
    "time",
    "available_at",
    "model_version",
    "direction",
    "confidence",
    "mode",
    "feature_set",
    "latency_ms",
    "created_at",
    "size",
    "sample",
    "meta_prob",
    "meta_size",
)
KEY = ("instrument_token", "timeframe", "time", "model_version", "mode")
_SHOW = ("instrument_token", "timeframe", "time", "model_version", "mode")


def signals_to_frame(signals: Sequence[Signal], latency_ms: Sequence[float] | None = None) -> pd.DataFrame:
    """The table's columns of ``signals``; ``latency_ms``, when given, instead of their own field."""
    if latency_ms is not None and len(latency_ms) != len(signals):
        raise ValueError(f"{len(latency_ms)} latencies for {len(signals)} signals")
    return pd.DataFrame(
        {
            "instrument_token": [s.instrument_token for s in signals],
            "timeframe": [str(s.timeframe) for s in signals],
            "time": [s.time for s in signals],
            "available_at": [s.available_at for s in signals],
            "model_version": [s.model_version for s in signals],
            "direction": [s.direction for s in signals],
            "confidence": [s.confidence for s in signals],
            "mode": [s.mode for s in signals],
            "feature_set": [s.feature_set for s in signals],
            "latency_ms": (
                [np.nan if s.latency_ms is None else s.latency_ms for s in signals]
                if latency_ms is None
                else list(latency_ms)
            ),
            "size": [np.nan if s.size is None else s.size for s in signals],
            "meta_prob": [np.nan if s.meta_prob is None else s.meta_prob for s in signals],
            "meta_size": [np.nan if s.meta_size is None else s.meta_size for s in signals],
        }
    )


def encode_signals(frame: pd.DataFrame) -> list[Column]:
    what = "signal"
    require_columns(what, frame, SIGNAL_COLUMNS[:9])
    confidence = float_column(what, frame, "confidence", _SHOW)
    bad = (confidence < 0) | (confidence > 1)
    if bad.any():
        row = int(np.argmax(bad))
        raise BatchRejected(
            f"rejected signal batch of {len(frame)} rows, nothing written: row {row}: "
            f"confidence {confidence[row]} outside [0, 1]"
        )
    for col in ("model_version", "feature_set"):
        empty = frame[col].isna().to_numpy() | (frame[col].astype(str).str.len() == 0).to_numpy()
        if empty.any():
            raise BatchRejected(f"rejected signal batch: row {int(np.argmax(empty))} has an empty {col}")
    columns = [
        int_column(what, frame, "instrument_token", _SHOW),
        Column("timeframe", "text", timeframe_column(what, frame, _SHOW)),
        Column("time", "timestamptz", time_column(what, frame, "time", _SHOW)),
        Column("available_at", "timestamptz", time_column(what, frame, "available_at", _SHOW)),
        Column("model_version", "text", frame["model_version"].astype(str).to_numpy(dtype=object)),
        Column(
            "direction",
            "int2",
            np.asarray(choice_column(what, frame, "direction", (-1, 0, 1), _SHOW), np.int64),
        ),
        Column("confidence", "float8", confidence),
        Column(
            "mode",
            "text",
            np.asarray(choice_column(what, frame, "mode", ("historical", "live"), _SHOW), object),
        ),
        Column("feature_set", "text", frame["feature_set"].astype(str).to_numpy(dtype=object)),
    ]
    # A frame without ``sample`` gets one from its mode: a live bar comes after its model was trained
    # (out of sample by construction); a historical row is in sample unless its writer vouches otherwise.
    if "sample" in frame.columns:
        sample = np.asarray(choice_column(what, frame, "sample", ("oos", "in_sample"), _SHOW), object)
    else:
        sample = np.where(frame["mode"].astype(str).to_numpy() == "live", "oos", "in_sample").astype(object)
    columns.append(Column("sample", "text", sample))
    for col in ("latency_ms", "size", "meta_prob", "meta_size"):
        if col in frame.columns:
            columns.append(
                Column(col, "float8", float_column(what, frame, col, _SHOW, nullable=True), nan_to_null=True)
            )
    return columns


class TimescaleSignalRepository:
    """SignalRepository: writes upsert on ``(instrument_token, timeframe, time, model_version, mode)``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add_many(self, signals: Sequence[Signal], latency_ms: Sequence[float] | None = None) -> int:
        """Upsert domain signals (a re-run replaces direction, confidence, latency...); ``latency_ms``:
        each signal's latency, stored instead of its ``latency_ms`` field (the live signal sink)."""
        if not signals:
            return 0
        return await self.add_frame(signals_to_frame(signals, latency_ms))

    async def add_frame(self, frame: pd.DataFrame, *, on_conflict: OnConflict = "update") -> int:
        """Upsert a signal frame (columns as the table); returns rows inserted or updated."""
        # A live minute's signals are a small batch: one prepared INSERT (latency); bulk loads stage.
        return await write_frame(
            self._pool,
            "signals",
            frame,
            KEY,
            encode_signals,
            on_conflict=on_conflict,
            dedupe_always=True,
            small_batch_insert=True,
        )

    async def read_frame(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        mode: str | None = None,
        model_version: str | None = None,
        instrument_token: int | None = None,
        timeframe: Timeframe | None = None,
        sample: str | None = None,
    ) -> pd.DataFrame:
        """Signals with ``start <= time < end`` and the given filters, ordered by time, instrument."""
        params: list[object] = []
        where = "TRUE" + time_bounds(start, end, params)
        for col, value in (
            ("mode", mode),
            ("model_version", model_version),
            ("instrument_token", instrument_token),
            ("timeframe", None if timeframe is None else str(timeframe)),
            ("sample", sample),
        ):
            if value is not None:
                params.append(value)
                where += f" AND {col} = ${len(params)}"
        sql = f"SELECT {', '.join(SIGNAL_COLUMNS)} FROM signals WHERE {where} ORDER BY time, instrument_token"  # nosec B608: column lists are module constants; every value is a bound $n parameter
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *params)
        frame = records_frame(
            rows,
            SIGNAL_COLUMNS,
            time_columns=("time", "available_at", "created_at"),
            float_columns=("confidence", "latency_ms", "size", "meta_prob", "meta_size"),
        )
        frame["instrument_token"] = frame["instrument_token"].astype(np.int64)
        frame["direction"] = frame["direction"].astype(np.int64)
        return frame

    async def count(self, mode: str | None = None) -> int:
        async with self._pool.acquire() as conn:
            if mode is None:
                return int(await conn.fetchval("SELECT count(*) FROM signals"))
            return int(await conn.fetchval("SELECT count(*) FROM signals WHERE mode = $1", mode))

    async def delete_historical(
        self, model_versions: Sequence[str], instrument_tokens: Sequence[int] | None = None
    ) -> int:
        """Delete the ``historical`` rows of ``model_versions`` (superseded fold models), only of
        ``instrument_tokens`` when given; returns the number of rows deleted."""
        if not model_versions:
            return 0
        sql = "DELETE FROM signals WHERE mode = 'historical' AND model_version = ANY($1::text[])"
        params: list[object] = [list(model_versions)]
        if instrument_tokens is not None:
            sql += " AND instrument_token = ANY($2::bigint[])"
            params.append(list(instrument_tokens))
        async with self._pool.acquire() as conn:
            status = await conn.execute(sql, *params)
        return int(status.split()[-1])

    async def versions_with_historical(self, model_versions: Sequence[str]) -> set[str]:
        """Those of ``model_versions`` that still have ``historical`` rows."""
        if not model_versions:
            return set()
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT DISTINCT model_version FROM signals WHERE mode = 'historical' "
                "AND model_version = ANY($1::text[])",
                list(model_versions),
            )
        return {r["model_version"] for r in rows}
