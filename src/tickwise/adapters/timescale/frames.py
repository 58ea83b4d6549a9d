"""Frame <-> column helpers shared by the repositories: vectorised validation, the one write sequence, reads.

Reads come back as frames (:func:`records_frame`, a Python object per value: fine for small reads) or,
for the training load's bulk reads, as arrays decoded straight from a binary ``COPY`` of fixed-width
rows (:func:`copy_time_float_rows`), which never builds a Python object per value."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import numpy as np
import pandas as pd

from tickwise.adapters.timescale.bulk import (
    SMALL_BATCH_ROWS,
    Column,
    OnConflict,
    copy_upsert,
    insert_upsert,
    timestamps_us,
)
from tickwise.adapters.timescale.names import TIMEFRAMES
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
    what: str, frame: pd.DataFrame, column: str, allowed: Sequence[object], show: Sequence[str]
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


def dedupe_last(frame: pd.DataFrame, key: Sequence[str]) -> pd.DataFrame:
    """Keep the last row per key (``ON CONFLICT DO UPDATE`` cannot touch one row twice)."""
    if frame.duplicated(subset=list(key), keep="last").any():
        return frame.drop_duplicates(subset=list(key), keep="last")
    return frame


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """A validated batch ready to upsert: its COPY columns and row count."""

    columns: Sequence[Column]
    n: int


def encode_frame(
    frame: pd.DataFrame,
    key: Sequence[str],
    encode: Callable[[pd.DataFrame], Sequence[Column]],
    *,
    on_conflict: OnConflict,
    dedupe_always: bool = False,
) -> EncodedBatch | None:
    """The first half of every repository's write: nothing for an empty frame, else dedupe and encode.

    Duplicate keys keep the last row whenever the write updates (``ON CONFLICT DO UPDATE`` cannot touch
    one row twice), and also for ``'nothing'`` with ``dedupe_always``. ``encode`` validates as it
    converts, so a bad row rejects the batch (BatchRejected) before any connection is taken.
    """
    if frame.empty:
        return None
    if dedupe_always or on_conflict == "update":
        frame = dedupe_last(frame, key)
    return EncodedBatch(encode(frame), len(frame))


async def upsert_batch(
    pool: asyncpg.Pool,
    table: str,
    batch: EncodedBatch,
    key: Sequence[str],
    *,
    on_conflict: OnConflict,
    direct_if: Callable[[asyncpg.Connection, Sequence[Column]], Awaitable[bool]] | None = None,
    small_batch_insert: bool = False,
    prepare: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> int:
    """The second half: one connection, one atomic upsert; returns rows inserted or updated.

    ``small_batch_insert``: up to ``SMALL_BATCH_ROWS`` rows go as one prepared INSERT (latency-bound
    writes); otherwise binary COPY through a stage. ``direct_if(conn, columns)`` True lets the COPY go
    straight into the table (the caller found no stored rows in the batch's range). ``prepare`` runs
    first, in the same transaction as the upsert (e.g. registering what the rows refer to).
    """
    async with pool.acquire() as conn, contextlib.AsyncExitStack() as stack:
        if prepare is not None:
            await stack.enter_async_context(conn.transaction())
            await prepare(conn)
        if small_batch_insert and batch.n <= SMALL_BATCH_ROWS:
            return await insert_upsert(conn, table, batch.columns, batch.n, key, on_conflict=on_conflict)
        direct = direct_if is not None and await direct_if(conn, batch.columns)
        return await copy_upsert(
            conn, table, batch.columns, batch.n, key, on_conflict=on_conflict, direct=direct
        )


async def write_frame(
    pool: asyncpg.Pool,
    table: str,
    frame: pd.DataFrame,
    key: Sequence[str],
    encode: Callable[[pd.DataFrame], Sequence[Column]],
    *,
    on_conflict: OnConflict,
    dedupe_always: bool = False,
    direct_if: Callable[[asyncpg.Connection, Sequence[Column]], Awaitable[bool]] | None = None,
    small_batch_insert: bool = False,
) -> int:
    """A repository's ``add_frame``: :func:`encode_frame`, then :func:`upsert_batch` (0 for an empty frame)."""
    batch = encode_frame(frame, key, encode, on_conflict=on_conflict, dedupe_always=dedupe_always)
    if batch is None:
        return 0
    return await upsert_batch(
        pool,
        table,
        batch,
        key,
        on_conflict=on_conflict,
        direct_if=direct_if,
        small_batch_insert=small_batch_insert,
    )


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
            frame[col] = utc_times(frame[col])
    for col in float_columns:
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
    return frame


def utc_times(values: pd.Series) -> pd.Series:
    """``pd.to_datetime(values, utc=True)``, the same values and dtype, without its per-value pass
    when the column is already tz-aware: ``from_records`` makes asyncpg's aware datetimes a
    ``datetime64[ns, UTC]`` column, and ``to_datetime`` then turned up to 10,000 of them per call back
    into Timestamps to decide whether to cache (issue 14: most of the training load's label reads)."""
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        return pd.to_datetime(values, utc=True)
    utc = values.array.tz_convert(None).tz_localize("utc")  # what to_datetime(utc=True) does with it
    return pd.Series(utc, index=values.index, name=values.name)


# PostgreSQL's binary COPY: an 11-byte signature, int32 flags, int32 header extension length; a trailer
# int16 -1. Its timestamps are microseconds since 2000-01-01 UTC.
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_COPY_HEADER = len(_COPY_SIGNATURE) + 8
_PG_EPOCH_US = 946_684_800_000_000


def time_float_row_dtype(k: int) -> np.dtype[np.void]:
    """One binary COPY row of a ``timestamptz`` then ``k`` non-NULL ``float8`` fields (big-endian)."""
    return np.dtype(
        [("n", ">i2"), ("tlen", ">i4"), ("t", ">i8"), ("f", [("len", ">i4"), ("v", ">f8")], (k,))]
    )


def decode_time_float_rows(data: bytes | bytearray | memoryview, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary COPY output of ``SELECT time, <k float8 never NULL>`` -> (int64 ns since the epoch, (n, k)
    float64). The rows are fixed-width because the query turns NULL into NaN (``COALESCE``), so the
    whole output is one structured array; every field's length is checked."""
    view = memoryview(data)
    if len(view) < _COPY_HEADER + 2 or bytes(view[: len(_COPY_SIGNATURE)]) != _COPY_SIGNATURE:
        raise DataValidationError("binary COPY: not a PostgreSQL binary COPY stream")
    extension = int.from_bytes(view[_COPY_HEADER - 4 : _COPY_HEADER], "big")
    body = view[_COPY_HEADER + extension : len(view) - 2]
    if bytes(view[len(view) - 2 :]) != b"\xff\xff":
        raise DataValidationError("binary COPY: the stream has no trailer (cut short?)")
    dtype = time_float_row_dtype(k)
    if len(body) % dtype.itemsize:
        raise DataValidationError("binary COPY: a row is not one timestamp and float8 values without NULL")
    rows = np.frombuffer(body, dtype=dtype)
    fields_ok = (rows["n"] == k + 1).all() and (rows["tlen"] == 8).all() and (rows["f"]["len"] == 8).all()
    if not fields_ok:
        raise DataValidationError("binary COPY: unexpected field count or width (a NULL value?)")
    times = (rows["t"].astype(np.int64) + _PG_EPOCH_US) * 1000
    values = np.ascontiguousarray(rows["f"]["v"], dtype=np.float64).reshape(len(rows), k)
    return times, values


async def copy_time_float_rows(
    conn: asyncpg.Connection, query: str, args: Sequence[object], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``query`` (``SELECT time, <k float8 columns, NULL turned into NaN>``) as a binary COPY and
    decode it (:func:`decode_time_float_rows`)."""
    chunks: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        chunks.append(chunk)

    await conn.copy_from_query(query, *args, output=collect, format="binary")
    data = b"".join(chunks)
    chunks.clear()
    return decode_time_float_rows(data, k)


def time_bounds(
    start: datetime | None, end: datetime | None, params: list[object], column: str = "time"
) -> str:
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
