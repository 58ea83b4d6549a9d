"""Ensemble signals' members (``ports.signal_members``) in the ``signal_members`` hypertable."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import numpy as np
import pandas as pd

from tickwise.adapters.timescale.bulk import Column
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
from tickwise.ports.signal_members import MEMBER_ROW_COLUMNS

_KEY = ("instrument_token", "timeframe", "model_version", "mode", "member_timeframe", "time")
_SHOW = ("instrument_token", "timeframe", "time", "model_version", "member_timeframe")
_MODES = ("historical", "live")


def encode_members(frame: pd.DataFrame) -> list[Column]:
    """Validate a member frame and convert it to COPY columns (the first bad row rejects the batch)."""
    what = "signal member"
    require_columns(what, frame, MEMBER_ROW_COLUMNS)
    mode = choice_column(what, frame, "mode", _MODES, _SHOW)
    member_tf = timeframe_column(what, frame.assign(timeframe=frame["member_timeframe"]), _SHOW)
    probs = {c: float_column(what, frame, c, _SHOW) for c in ("p_long", "p_short")}
    for name, values in probs.items():
        bad = (values < 0) | (values > 1)
        if bad.any():
            row = int(np.argmax(bad))
            raise BatchRejected(
                f"rejected signal member batch of {len(frame)} rows, nothing written: row {row}: "
                f"{name} {values[row]} outside [0, 1]"
            )
    for col in ("model_version", "member_version"):
        empty = frame[col].isna().to_numpy() | (frame[col].astype(str).str.len() == 0).to_numpy()
        if empty.any():
            raise BatchRejected(
                f"rejected signal member batch of {len(frame)} rows, nothing written: "
                f"row {int(np.argmax(empty))}: {col} is empty"
            )
    return [
        int_column(what, frame, "instrument_token", _SHOW),
        Column("timeframe", "text", timeframe_column(what, frame, _SHOW)),
        Column("time", "timestamptz", time_column(what, frame, "time", _SHOW)),
        Column("model_version", "text", frame["model_version"].astype(str).to_numpy(dtype=object)),
        Column("mode", "text", np.asarray(mode, dtype=object)),
        Column("member_timeframe", "text", member_tf),
        Column("member_version", "text", frame["member_version"].astype(str).to_numpy(dtype=object)),
        Column("member_time", "timestamptz", time_column(what, frame, "member_time", _SHOW)),
        Column("p_long", "float8", probs["p_long"]),
        Column("p_short", "float8", probs["p_short"]),
    ]


class TimescaleSignalMemberRepository:
    """SignalMemberRepository on ``signal_members`` (upserts on the signal key + member timeframe)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add_frame(self, frame: pd.DataFrame) -> int:
        """Write member rows; re-running the ensemble overwrites what it stored for the same signal."""
        return await write_frame(
            self._pool, "signal_members", frame, _KEY, encode_members, on_conflict="update"
        )

    async def read_frame(
        self,
        model_version: str,
        *,
        mode: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        params: list[object] = [model_version]
        where = ""
        if mode is not None:
            params.append(mode)
            where = f" AND mode = ${len(params)}"
        where += time_bounds(start, end, params)
        sql = (
            f"SELECT {', '.join(MEMBER_ROW_COLUMNS)} FROM signal_members "  # nosec B608: constant columns; values are bound $n parameters
            f"WHERE model_version = $1{where} ORDER BY time, instrument_token, member_timeframe"
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *params)
        frame = records_frame(
            rows,
            MEMBER_ROW_COLUMNS,
            time_columns=("time", "member_time"),
            float_columns=("p_long", "p_short"),
        )
        frame["instrument_token"] = frame["instrument_token"].astype(np.int64)
        return frame
