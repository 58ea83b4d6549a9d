"""The out-of-sample stage reads a score window's label times without pandas' per-value scan: the same
UTC index ``pd.to_datetime(..., utc=True)`` gives, for tz-aware, naive (read as UTC) and other-zone
times."""

from __future__ import annotations

import pandas as pd
import pytest

from tickwise.pipelines.historical.oos import _utc_index


@pytest.mark.parametrize("tz", ["UTC", None, "Asia/Kolkata"])
def test_a_score_window_s_label_times_are_the_utc_index_to_datetime_gives(tz: str | None) -> None:
    times = pd.Series(pd.date_range("2026-01-05 03:45", periods=500, freq="1min", tz=tz))
    times.iloc[7] = pd.NaT
    got = _utc_index(times)
    want = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    pd.testing.assert_index_equal(got, want)
    assert got.asi8.tobytes() == want.asi8.tobytes()
