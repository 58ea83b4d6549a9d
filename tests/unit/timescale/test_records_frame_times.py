"""A read's time columns: ``records_frame`` gives the very frame ``pd.to_datetime(..., utc=True)`` gave
(values, NaT, dtype, time zone), now without its per-value pass over columns already tz-aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from tickwise.adapters.timescale.frames import records_frame, utc_times

COLUMNS = ["instrument_token", "time", "t1", "ret"]
IST = timezone(timedelta(hours=5, minutes=30))


def _records(n: int, *, null_every: int = 0, tz: timezone = UTC) -> list[tuple[object, ...]]:
    # What asyncpg gives for a timestamptz: aware datetimes (UTC), None for NULL.
    base = datetime(2026, 9, 1, 3, 45, 0, 123_456, tzinfo=tz)
    return [
        (
            408065,
            base + timedelta(minutes=i),
            None if null_every and i % null_every == 0 else base + timedelta(minutes=i + 7, microseconds=i),
            None if i % 5 == 0 else 0.001 * i,
        )
        for i in range(n)
    ]


def _as_before(records: list[tuple[object, ...]]) -> pd.DataFrame:
    """The frame records_frame made before: every time column through pd.to_datetime."""
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    for col in ("time", "t1"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    frame["ret"] = pd.to_numeric(frame["ret"], errors="coerce").astype(np.float64)
    return frame


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert got.index.equals(want.index)
    for col in want.columns:
        assert got[col].dtype == want[col].dtype, col
        if isinstance(want[col].dtype, pd.DatetimeTZDtype):
            assert str(got[col].dtype.tz) == str(want[col].dtype.tz)
            assert got[col].array.asi8.tobytes() == want[col].array.asi8.tobytes(), col
        else:
            assert got[col].to_numpy().tobytes() == want[col].to_numpy().tobytes(), col


@pytest.mark.parametrize("n", [0, 1, 49, 50, 51, 3_000, 25_000])
@pytest.mark.parametrize("null_every", [0, 1, 7])
def test_a_reads_time_columns_equal_pandas_to_datetime_byte_for_byte(n: int, null_every: int) -> None:
    records = _records(n, null_every=null_every)
    got = records_frame(records, COLUMNS, time_columns=("time", "t1"), float_columns=("ret",))
    _same(got, _as_before(records))


def test_times_in_another_zone_come_back_in_utc_as_to_datetime_gives_them() -> None:
    records = _records(120, null_every=3, tz=IST)
    got = records_frame(records, COLUMNS, time_columns=("time", "t1"), float_columns=("ret",))
    _same(got, _as_before(records))


def test_a_column_not_yet_tz_aware_is_converted_by_to_datetime_itself() -> None:
    values = pd.Series(["2026-09-01T03:45:00+00:00", None, "2026-09-01T09:15:00+05:30"], name="t")
    got, want = utc_times(values), pd.to_datetime(values, utc=True)
    assert got.dtype == want.dtype
    assert got.array.asi8.tobytes() == want.array.asi8.tobytes()
    assert got.name == "t"
