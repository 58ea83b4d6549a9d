"""Frame <-> column helpers shared by the repositories: vectorised validation and DataFrame reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import pandas as pd

from tickwise.adapters.timescale.bulk import Column, Kind, timestamps_us
from tickwise.adapters.timescale.schema import TIMEFRAMES
from tickwise.domain.errors import DataValidationError
from tickwise.domain.timeframe import Timeframe


class BatchRejected(DataValidationError):
    """A batch was refused as a whole; the message names the first bad row."""


def reject(what: str, frame: pd.DataFrame, row: int, problem: str, show: Sequence[str]) -> BatchRejected:
    """Build the error for the first bad ``row`` of ``frame`` (position, not index label)."""
    parts = []
    for col in show:
        if col in frame.columns:
            parts.append(f"{col}={frame[col].iloc[row]!s}")
    return BatchRejected(
        f"rejected {what} batch of {len(frame)} rows, nothing written: row {row} ({', '.join(parts)}): {problem}"
    )


def require_columns(what: str, frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BatchRejected(f"rejected {what} batch: missing columns {', '.join(missing)}")


def time_column(what: str, frame: pd.DataFrame, column: str, show: Sequence[str]) -> np.ndarray:
    """Validate a tz-aware time column and return int64 µs since the Unix epoch."""
    series = frame[column]
    if not isinstance(series.dtype, pd.DatetimeTZDtype):
        if series.dtype.kind == "M":
            raise reject(what, frame, 0, f"naive timestamp in {column!r} (expected tz-aware)", show)
        values = series.to_numpy(dtype=object)
        for i, value in enumerate(values):
            if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
                raise reject(what, frame, i, f"missing {column}", show)
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise reject(what, frame, i, f"naive or invalid timestamp in {column!r}: {value!r}", show)
        series = pd.to_datetime(series, utc=True)
    nat = series.isna().to_numpy()
    if nat.any():
        raise reject(what, frame, int(np.argmax(nat)), f"missing {column}", show)
    return timestamps_us(series)


def timeframe_column(what: str, frame: pd.DataFrame, show: Sequence[str]) -> np.ndarray:
    codes, uniques = pd.factorize(frame["timeframe"], use_na_sentinel=False)
    names = np.array([v.value if isinstance(v, Timeframe) else str(v) for v in uniques], dtype=object)
    values = names[codes]
    bad = ~np.isin(values, np.array(TIMEFRAMES, dtype=object))
    if bad.any():
        row = int(np.argmax(bad))
        raise reject(
            what,
            frame,
            row,
            f"unknown timeframe {values[row]!r} (expected one of {', '.join(TIMEFRAMES)})",
            show,
        )
    return np.asarray(values)


def choice_column(
    what: str, frame: pd.DataFrame, column: str, allowed: Sequence[Any], show: Sequence[str]
) -> np.ndarray:
    values = frame[column].to_numpy()
    bad = ~pd.Series(values).isin(allowed).to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise reject(what, frame, row, f"{column} is {values[row]!r} (expected one of {list(allowed)})", show)
    return np.asarray(values)


def int_column(
    what: str, frame: pd.DataFrame, column: str, show: Sequence[str], *, nullable: bool = False
) -> Column:
    numeric = pd.to_numeric(frame[column], errors="coerce")
    null = numeric.isna().to_numpy()
    if null.any() and not nullable:
        raise reject(what, frame, int(np.argmax(null)), f"{column} is missing or not a number", show)
    values = numeric.to_numpy(dtype=np.float64 if null.any() else None)
    if null.any():
        values = np.where(null, 0, values)
    return Column(column, "int8", np.asarray(values).astype(np.int64), null if null.any() else None)


def float_column(
    what: str,
    frame: pd.DataFrame,
    column: str,
    show: Sequence[str],
    *,
    positive: bool = False,
    nullable: bool = False,
) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    nan = np.isnan(values)
    if nan.any() and not nullable:
        raise reject(what, frame, int(np.argmax(nan)), f"{column} is NaN or missing", show)
    inf = np.isinf(values)
    if inf.any():
        raise reject(what, frame, int(np.argmax(inf)), f"{column} is infinite", show)
    if positive:
        bad = ~nan & (values <= 0)
        if bad.any():
            row = int(np.argmax(bad))
            raise reject(what, frame, row, f"{column} is not positive ({values[row]})", show)
    return np.asarray(values, dtype=np.float64)


def text_column(name: str, values: np.ndarray) -> Column:
    return Column(name, "text", np.asarray(values, dtype=object))


def column(name: str, kind: Kind, values: np.ndarray, *, nan_to_null: bool = False) -> Column:
    return Column(name, kind, values, nan_to_null=nan_to_null)


def dedupe_last(frame: pd.DataFrame, key: Sequence[str]) -> pd.DataFrame:
    """Keep the last row per key (``ON CONFLICT DO UPDATE`` cannot touch one row twice)."""
    if frame.duplicated(subset=list(key), keep="last").any():
        return frame.drop_duplicates(subset=list(key), keep="last")
    return frame


def records_frame(
    rows: Sequence[asyncpg.Record],
    columns: Sequence[str],
    *,
    time_columns: Sequence[str] = ("time",),
    float_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Rows -> DataFrame with tz-aware (UTC) time columns and float NULLs as NaN."""
    frame = pd.DataFrame.from_records([tuple(r) for r in rows], columns=list(columns))
    for col in time_columns:
        if col in frame.columns:
            frame[col] = pd.to_datetime(frame[col], utc=True)
    for col in float_columns:
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
    return frame


def time_bounds(start: datetime | None, end: datetime | None, params: list[Any], column: str = "time") -> str:
    """SQL for the half-open range ``[start, end)`` (either bound optional), appending parameters."""
    clauses = []
    for bound, op in ((start, ">="), (end, "<")):
        if bound is None:
            continue
        if bound.tzinfo is None:
            raise DataValidationError(
                f"naive datetime {bound.isoformat()} for a time bound (expected tz-aware)"
            )
        params.append(bound)
        clauses.append(f"{column} {op} ${len(params)}")
    return "".join(f" AND {c}" for c in clauses)
