"""Drop rules of labeling.md §5 evaluated for every candidate t0 of one instrument and timeframe."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd

from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

BoolArray = npt.NDArray[np.bool_]
_EPOCH = date(1970, 1, 1)
_DAY_NS = 86_400 * 10**9


def _window_any(flags: BoolArray, starts: npt.NDArray[np.int64], length: int) -> BoolArray:
    """True where any of ``flags[start : start + length]`` is set (windows must lie inside ``flags``)."""
    prefix = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    return (prefix[starts + length] - prefix[starts]) > 0


def local_day_and_offset(times: pd.DatetimeIndex) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """IST calendar day (days since 1970-01-01) and nanoseconds since local midnight for each instant.

    IST has had a fixed +05:30 offset since 1945, so one offset serves the whole array; pandas' per-element
    zoneinfo conversion (``normalize``) is ~100x slower on long histories.
    """
    utc_ns = np.asarray(times.as_unit("ns").asi8, dtype=np.int64)
    if utc_ns.size == 0:
        return utc_ns.copy(), utc_ns.copy()
    ends = (pd.Timestamp(int(x), unit="ns", tz="UTC").tz_convert(IST) for x in (utc_ns[0], utc_ns[-1]))
    offsets = {ts.utcoffset() for ts in ends}
    offset = offsets.pop() if len(offsets) == 1 else None
    if offset is None:  # only for pre-1945 data, when the zone still changed offsets
        wall = np.asarray(times.tz_convert(IST).tz_localize(None).as_unit("ns").asi8, dtype=np.int64)
    else:
        wall = utc_ns + int(offset.total_seconds()) * 10**9
    return wall // _DAY_NS, wall % _DAY_NS


def expected_successor_break(
    times: pd.DatetimeIndex, timeframe: Timeframe, calendar: SessionCalendar
) -> BoolArray:
    """For each bar j < N-1: True when bar j+1 is not the next expected bar after bar j (a hole).

    Intraday bars must sit on the session grid ``open + k·timeframe``; a bar off the grid breaks the
    sequence on both sides. Daily bars must follow on consecutive trading days of ``calendar``.
    """
    n = len(times)
    if n < 2:
        return np.zeros(max(n - 1, 0), dtype=np.bool_)
    day, ns_of_day = local_day_and_offset(times)
    uniq_days, day_pos = np.unique(day, return_inverse=True)
    dates = [_EPOCH + timedelta(days=int(d)) for d in uniq_days]
    trading_by_bar = np.array([calendar.is_trading_day(d) for d in dates], dtype=np.bool_)[day_pos]
    if timeframe is Timeframe.D1:
        nxt = np.array([(calendar.next_trading_day(d) - _EPOCH).days for d in dates], dtype=np.int64)[day_pos]
        follows = nxt[:-1] == day[1:]
        return np.asarray(~(follows & trading_by_bar[:-1] & trading_by_bar[1:]), dtype=np.bool_)
    open_ns = (calendar.open_time.hour * 60 + calendar.open_time.minute) * 60 * 10**9
    since_open = ns_of_day - open_ns  # ns since the session open of the bar's IST date
    step = int(pd.Timedelta(timeframe.delta).as_unit("ns").value)
    slot = since_open // step
    n_slots = calendar.bars_per_session(timeframe)
    on_grid = (since_open % step == 0) & (slot >= 0) & (slot < n_slots) & trading_by_bar
    consecutive = (day[1:] == day[:-1]) & (slot[1:] == slot[:-1] + 1)
    return np.asarray(~(consecutive & on_grid[:-1] & on_grid[1:]), dtype=np.bool_)


def session_cross(times: pd.DatetimeIndex, t0_idx: npt.NDArray[np.int64], horizon: int) -> BoolArray:
    """True where candle ``t0 + horizon`` falls on another IST calendar date than candle t0."""
    day, _ = local_day_and_offset(times)
    return np.asarray(day[t0_idx + horizon] != day[t0_idx], dtype=np.bool_)


def missing_bars(
    values_nan: BoolArray, successor_break: BoolArray | None, t0_idx: npt.NDArray[np.int64], horizon: int
) -> BoolArray:
    """True where ``[t0, t0+horizon]`` holds a NaN bar or a hole in the expected candle times."""
    bad = _window_any(values_nan, t0_idx, horizon + 1)
    if successor_break is not None:
        bad |= _window_any(successor_break, t0_idx, horizon)
    return bad
