"""Triple-barrier labels (labeling.md) in the ``labels`` hypertable."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import numpy as np
import pandas as pd

from tickwise.adapters.timescale.bulk import Column, OnConflict
from tickwise.adapters.timescale.frames import (
    choice_column,
    float_column,
    int_column,
    records_frame,
    require_columns,
    time_bounds,
    time_column,
    timeframe_column,
    utc_times,
    write_frame,
)
from tickwise.domain.timeframe import Timeframe

LABEL_COLUMNS = (
    "instrument_token",
    "timeframe",
    "time",
    "side",
    "label",
    "t1",
    "t1_max",
    "ret",
    "exit_price",
    "barrier",
    "ambiguous",
    "weight",
    "meta",
)
BARRIERS = ("pt", "sl", "pt_gap", "sl_gap", "both_sl_first", "vertical")
_KEY = ("instrument_token", "timeframe", "side", "time")
_SHOW = ("instrument_token", "timeframe", "time", "side")


def encode_labels(frame: pd.DataFrame) -> list[Column]:
    """Validate a label frame and convert it to COPY columns (first bad row rejects the batch)."""
    what = "label"
    require_columns(what, frame, LABEL_COLUMNS[:10])
    n = len(frame)
    side = choice_column(what, frame, "side", (-1, 1), _SHOW)
    label = choice_column(what, frame, "label", (-1, 0, 1), _SHOW)
    barrier = choice_column(what, frame, "barrier", BARRIERS, _SHOW)
    columns = [
        int_column(what, frame, "instrument_token", _SHOW),
        Column("timeframe", "text", timeframe_column(what, frame, _SHOW)),
        Column("time", "timestamptz", time_column(what, frame, "time", _SHOW)),
        Column("side", "int2", np.asarray(side, dtype=np.int64)),
        Column("label", "int2", np.asarray(label, dtype=np.int64)),
        Column("t1", "timestamptz", time_column(what, frame, "t1", _SHOW)),
        Column("t1_max", "timestamptz", time_column(what, frame, "t1_max", _SHOW)),
        Column("ret", "float8", float_column(what, frame, "ret", _SHOW)),
        Column("exit_price", "float8", float_column(what, frame, "exit_price", _SHOW, positive=True)),
        Column("barrier", "text", np.asarray(barrier, dtype=object)),
        Column(
            "ambiguous",
            "bool",
            frame["ambiguous"].fillna(False).to_numpy(dtype=bool)
            if "ambiguous" in frame
            else np.zeros(n, bool),
        ),
    ]
    if "weight" in frame.columns:
        columns.append(
            Column(
                "weight",
                "float8",
                float_column(what, frame, "weight", _SHOW, nullable=True),
                nan_to_null=True,
            )
        )
    if "meta" in frame.columns:
        meta = int_column(what, frame, "meta", _SHOW, nullable=True)
        columns.append(Column("meta", "int2", meta.values, meta.null))
    return columns


class TimescaleLabelRepository:
    """LabelRepository on the ``labels`` hypertable (unique on instrument_token, timeframe, side, time)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add_frame(self, frame: pd.DataFrame, *, on_conflict: OnConflict = "update") -> int:
        """Write labels; relabelling (default ``'update'``) replaces stored rows. Returns rows written."""
        return await write_frame(self._pool, "labels", frame, _KEY, encode_labels, on_conflict=on_conflict)

    async def read_frame(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        side: int | None = None,
    ) -> pd.DataFrame:
        """Labels with ``start <= time (t0) < end``, ordered by time then side."""
        params: list[object] = [instrument_token, str(timeframe)]
        where = time_bounds(start, end, params)
        if side is not None:
            params.append(side)
            where += f" AND side = ${len(params)}"
        sql = (
            f"SELECT {', '.join(LABEL_COLUMNS)} FROM labels WHERE instrument_token = $1 AND timeframe = $2"  # nosec B608: column lists are module constants; every value is a bound $n parameter
            f"{where} ORDER BY time, side"
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *params)
        frame = records_frame(
            rows,
            LABEL_COLUMNS,
            time_columns=("time", "t1", "t1_max"),
            float_columns=("ret", "exit_price", "weight"),
        )
        for col in ("instrument_token", "side", "label"):
            frame[col] = frame[col].astype(np.int64)
        frame["ambiguous"] = frame["ambiguous"].astype(bool)
        frame["meta"] = frame["meta"].astype("Int64")
        return frame

    async def replace_meta(
        self,
        timeframe: Timeframe,
        instrument_tokens: Sequence[int],
        start: datetime,
        end: datetime | None,
        meta: pd.DataFrame,
    ) -> int:
        """Make ``meta`` the meta-labels of the window ``start <= time < end`` (``end`` None: open) of
        ``instrument_tokens``: every other label there loses its meta-label, in one transaction (a
        re-scored window never keeps a stale one). ``meta``: ``instrument_token``, ``time``, ``side``,
        ``meta``; rows without a stored label are ignored. Returns the labels set."""
        tokens = [int(t) for t in instrument_tokens]
        times = pd.DatetimeIndex(utc_times(pd.Series(meta["time"]))).to_pydatetime().tolist()
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE labels SET meta = NULL WHERE timeframe = $1 AND instrument_token = ANY($2::bigint[]) "
                "AND time >= $3 AND ($4::timestamptz IS NULL OR time < $4) AND meta IS NOT NULL",
                str(timeframe),
                tokens,
                start,
                end,
            )
            if meta.empty:
                return 0
            status = await conn.execute(
                "UPDATE labels l SET meta = v.meta "
                "FROM unnest($2::bigint[], $3::timestamptz[], $4::int2[], $5::int2[]) "
                "AS v(instrument_token, time, side, meta) "
                "WHERE l.timeframe = $1 AND l.instrument_token = v.instrument_token "
                "AND l.time = v.time AND l.side = v.side",
                str(timeframe),
                meta["instrument_token"].astype(np.int64).tolist(),
                times,
                meta["side"].astype(np.int64).tolist(),
                meta["meta"].astype(np.int64).tolist(),
            )
        return int(status.split()[-1])

    async def count(self, timeframe: Timeframe | None = None) -> int:
        async with self._pool.acquire() as conn:
            if timeframe is None:
                return int(await conn.fetchval("SELECT count(*) FROM labels"))
            return int(
                await conn.fetchval("SELECT count(*) FROM labels WHERE timeframe = $1", str(timeframe))
            )
