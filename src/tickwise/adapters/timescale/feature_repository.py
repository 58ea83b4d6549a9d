"""Features in a wide hypertable: one ``double precision`` column per feature, added on first write.

Every feature is readable by name in SQL (``SELECT rsi_14 FROM features WHERE ...``). Which columns
belong to a feature set is recorded in ``feature_sets`` (name -> ordered feature names) so a read
returns exactly that set's columns. NaN (warm-up) is stored as NULL and read back as NaN.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import numpy as np
import pandas as pd

from tickwise.adapters.timescale.bulk import Column, OnConflict
from tickwise.adapters.timescale.frames import (
    BatchRejected,
    copy_time_float_rows,
    encode_frame,
    float_column,
    int_column,
    records_frame,
    require_columns,
    time_bounds,
    time_column,
    timeframe_column,
    upsert_batch,
)
from tickwise.adapters.timescale.names import FEATURE_KEY_COLUMNS
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.repositories import FeatureMatrix

FEATURE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_SHOW = ("instrument_token", "timeframe", "time")
_RESERVED = {*FEATURE_KEY_COLUMNS, "ctid", "oid", "tableoid", "xmin", "xmax", "cmin", "cmax"}


def feature_columns_of(frame: pd.DataFrame) -> list[str]:
    """The feature columns of a frame (everything but the key), validated as SQL column names."""
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        raise BatchRejected(f"rejected feature batch: duplicate column {duplicated[0]!r}")
    names = [str(c) for c in frame.columns if c not in FEATURE_KEY_COLUMNS]
    for name in names:
        if not FEATURE_NAME.fullmatch(name) or name in _RESERVED:
            raise BatchRejected(
                f"rejected feature batch: column name {name!r} is not a valid feature name "
                "(lower case letter, then lower case letters, digits or _, at most 63 characters)"
            )
    return names


class TimescaleFeatureRepository:
    """FeatureRepository on the wide ``features`` hypertable."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._known: set[str] | None = None
        # (feature_set, names) already recorded in feature_sets by this repository: the registration
        # is an upsert that rewrites (and locks) the row, so it is done once, not on every live flush.
        self._registered: set[tuple[str, tuple[str, ...]]] = set()

    async def add_frame(
        self, frame: pd.DataFrame, feature_set: str, *, on_conflict: OnConflict = "update"
    ) -> int:
        """Write a feature frame (columns ``instrument_token, timeframe, time`` + features) for ``feature_set``.

        Unseen feature columns are added to the table first. Re-written rows are updated (default) so a
        recomputed feature set replaces the old values; other feature columns of a row stay untouched.
        Infinite values reject the whole batch; NaN is stored as NULL.
        """
        if not feature_set or len(feature_set) > 200:
            raise BatchRejected(f"rejected feature batch: invalid feature_set {feature_set!r}")
        what = "feature"
        names = feature_columns_of(frame)
        require_columns(what, frame, ("instrument_token", "timeframe", "time"))
        if "feature_set" in frame.columns:
            other = frame["feature_set"][frame["feature_set"] != feature_set]
            if len(other):
                raise BatchRejected(
                    f"rejected feature batch: frame holds feature_set {other.iloc[0]!r}, expected {feature_set!r}"
                )

        def encode(rows: pd.DataFrame) -> list[Column]:
            columns = [
                int_column(what, rows, "instrument_token", _SHOW),
                Column("timeframe", "text", timeframe_column(what, rows, _SHOW)),
                Column("feature_set", "text", np.full(len(rows), feature_set, dtype=object)),
                Column("time", "timestamptz", time_column(what, rows, "time", _SHOW)),
            ]
            for name in names:
                values = float_column(what, rows, name, _SHOW, nullable=True)
                columns.append(Column(name, "float8", values, nan_to_null=True))
            return columns

        # The key is (token, timeframe, time): one feature_set per call, so its rows dedupe on those.
        batch = encode_frame(
            frame,
            ("instrument_token", "timeframe", "time"),
            encode,
            on_conflict=on_conflict,
            dedupe_always=True,
        )
        if batch is None:
            return 0
        await self.ensure_columns(names)  # after validation: a rejected batch adds no column

        async def register(conn: asyncpg.Connection) -> None:
            await self._register(conn, feature_set, names)

        registration = (feature_set, tuple(names))
        written = await upsert_batch(
            self._pool,
            "features",
            batch,
            FEATURE_KEY_COLUMNS,
            on_conflict=on_conflict,
            prepare=None if registration in self._registered else register,
        )
        self._registered.add(registration)  # only once committed
        return written

    @staticmethod
    async def _register(conn: asyncpg.Connection, feature_set: str, names: list[str]) -> None:
        await conn.execute(
            "INSERT INTO feature_sets (feature_set, feature_names) VALUES ($1, $2) "
            "ON CONFLICT (feature_set) DO UPDATE SET feature_names = feature_sets.feature_names || "
            "ARRAY(SELECT x FROM unnest(EXCLUDED.feature_names) x "
            "WHERE x <> ALL(feature_sets.feature_names)), updated_at = now()",
            feature_set,
            names,
        )

    async def ensure_columns(self, names: Sequence[str]) -> None:
        """Add a ``double precision`` column for every feature name the table does not have yet."""
        known = await self.columns()
        missing = [n for n in names if n not in known]
        if not missing:
            return
        for name in missing:
            if not FEATURE_NAME.fullmatch(name) or name in _RESERVED:
                raise BatchRejected(f"invalid feature name {name!r}")
        # Separate short transaction: ALTER TABLE locks the hypertable exclusively.
        async with self._pool.acquire() as conn, conn.transaction():
            for name in missing:
                await conn.execute(f'ALTER TABLE features ADD COLUMN IF NOT EXISTS "{name}" double precision')
        known.update(missing)

    async def columns(self) -> set[str]:
        """Feature columns currently in the table (cached; refreshed by :meth:`ensure_columns`)."""
        if self._known is None:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'features'"
                )
            self._known = {r["column_name"] for r in rows} - set(FEATURE_KEY_COLUMNS)
        return self._known

    async def feature_names(self, feature_set: str) -> list[str]:
        """The ordered feature names recorded for ``feature_set`` (empty when unknown)."""
        async with self._pool.acquire() as conn:
            names = await conn.fetchval(
                "SELECT feature_names FROM feature_sets WHERE feature_set = $1", feature_set
            )
        return list(names or [])

    async def read_frame(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        feature_set: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Rows of one instrument/timeframe/feature set with ``start <= time < end``, oldest first.

        Columns: ``instrument_token, timeframe, time`` then the set's features (or ``columns``).
        """
        names = list(columns) if columns is not None else await self.feature_names(feature_set)
        for name in names:
            if not FEATURE_NAME.fullmatch(name):
                raise BatchRejected(f"invalid feature name {name!r}")
        params: list[object] = [instrument_token, str(timeframe), feature_set]
        where = time_bounds(start, end, params)
        selected = ", ".join(["instrument_token", "timeframe", "time", *(f'"{n}"' for n in names)])
        sql = (
            f"SELECT {selected} FROM features WHERE instrument_token = $1 AND timeframe = $2 "  # nosec B608: column lists are module constants; every value is a bound $n parameter
            f"AND feature_set = $3{where} ORDER BY time"
        )
        async with self._pool.acquire() as conn:
            try:
                rows = await conn.fetch(sql, *params)
            except asyncpg.UndefinedColumnError as exc:
                raise BatchRejected(f"unknown feature column: {exc}") from None
        frame = records_frame(rows, ["instrument_token", "timeframe", "time", *names], float_columns=names)
        frame["instrument_token"] = frame["instrument_token"].astype(np.int64)
        return frame

    async def read_matrix(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        feature_set: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        columns: Sequence[str],
    ) -> FeatureMatrix:
        """The rows of :meth:`read_frame` with ``columns`` as one float64 matrix (NULL as NaN), read as a
        binary COPY of fixed-width rows: no frame and no Python object per value (the training load)."""
        names = list(columns)
        for name in names:
            if not FEATURE_NAME.fullmatch(name):
                raise BatchRejected(f"invalid feature name {name!r}")
        params: list[object] = [instrument_token, str(timeframe), feature_set]
        where = time_bounds(start, end, params)
        # NULL -> NaN in SQL keeps every row the same width, so the COPY decodes as one array.
        selected = ", ".join(["time", *(f"COALESCE(\"{n}\", 'NaN'::float8)" for n in names)])
        sql = (
            f"SELECT {selected} FROM features WHERE instrument_token = $1 AND timeframe = $2 "  # nosec B608: column names are validated feature names; every value is a bound $n parameter
            f"AND feature_set = $3{where} ORDER BY time"
        )
        async with self._pool.acquire() as conn:
            try:
                times, values = await copy_time_float_rows(conn, sql, params, len(names))
            except asyncpg.UndefinedColumnError as exc:
                raise BatchRejected(f"unknown feature column: {exc}") from None
        return FeatureMatrix(times, values, tuple(names))

    async def count(self, feature_set: str | None = None) -> int:
        async with self._pool.acquire() as conn:
            if feature_set is None:
                return int(await conn.fetchval("SELECT count(*) FROM features"))
            return int(
                await conn.fetchval("SELECT count(*) FROM features WHERE feature_set = $1", feature_set)
            )
