"""Candle data-quality report: problems are found, counted and returned; nothing is dropped.

Issues (keys of :attr:`CandleReport.counts`):

- ``ohlc_inconsistent``: non-finite or non-positive prices, ``high < low``, open/close outside
  ``[low, high]``, negative or non-finite volume.
- ``duplicate``: more than one row for ``(instrument_token, timeframe, time)`` (every copy after the
  first is reported).
- ``outside_market_hours``: an intraday bar whose open is not inside a session of the calendar
  (non-trading day, or before the open / at or after the close).
- ``misaligned``: an intraday bar inside the session whose open is not on the 09:15-aligned grid of
  its timeframe (e.g. a 60m bar at 10:00).
- ``return_outlier``: a log close-to-close return (within one instrument and timeframe, consecutive
  rows, intraday returns within one session) whose robust z-score ``|r - median| / (1.4826 * MAD)`` exceeds ``z_threshold``; when the MAD
  is 0 (a mostly flat series) the fallback is ``|r - median| > min_abs_return``.
  Outliers are flagged, not dropped: real gaps and news moves are legitimate.
- ``gap``: an expected bar open of a trading session (between the instrument's first and last
  trading day in the frame, inclusive) with no row. Kite omits minutes without trades, so gaps in
  illiquid instruments are normal; they are reported so backfill and monitoring can judge them.

The offending rows are in :attr:`CandleReport.rows` (for ``gap``: one row per missing bar with
``instrument_token``, ``timeframe`` and ``time``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tickwise.core.aggregation import bucket_times, ist_days, utc_nanoseconds
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

ISSUES = (
    "ohlc_inconsistent",
    "duplicate",
    "outside_market_hours",
    "misaligned",
    "return_outlier",
    "gap",
)
_MAD_SCALE = 1.4826


@dataclass(frozen=True, slots=True)
class CandleReport:
    """Counts by issue and the offending rows of each issue."""

    total_rows: int
    counts: dict[str, int]
    rows: dict[str, pd.DataFrame] = field(repr=False)

    @property
    def ok(self) -> bool:
        """True when nothing but gaps was found (gaps are expected for illiquid instruments)."""
        return all(n == 0 for issue, n in self.counts.items() if issue != "gap")

    def summary(self) -> str:
        parts = ", ".join(f"{issue}={n}" for issue, n in self.counts.items() if n)
        return f"{self.total_rows} candles: {parts or 'no issues'}"


def validate_candles(
    frame: pd.DataFrame,
    calendar: SessionCalendar = NSE,
    *,
    timeframe: Timeframe | None = None,
    z_threshold: float = 10.0,
    min_abs_return: float = 0.05,
    check_gaps: bool = True,
) -> CandleReport:
    """Validate a candle frame (columns ``time, open, high, low, close, volume`` [+ ``instrument_token``,
    ``timeframe``]). ``timeframe`` applies when the frame has no ``timeframe`` column (default 1m)."""
    data = frame.reset_index(drop=True)
    if "instrument_token" not in data:
        data = data.assign(instrument_token=0)
    if "timeframe" not in data:
        data = data.assign(timeframe=(timeframe or Timeframe.M1).value)
    rows: dict[str, pd.DataFrame] = {}
    rows["ohlc_inconsistent"] = frame.iloc[np.flatnonzero(_ohlc_inconsistent(data))]
    dup = data.duplicated(["instrument_token", "timeframe", "time"], keep="first").to_numpy()
    rows["duplicate"] = frame.iloc[np.flatnonzero(dup)]

    outside = np.zeros(len(data), dtype=bool)
    misaligned = np.zeros(len(data), dtype=bool)
    gap_parts: list[pd.DataFrame] = []
    outlier = np.zeros(len(data), dtype=bool)
    for tf_value, idx in data.groupby("timeframe", sort=False).indices.items():
        tf = Timeframe.parse(str(tf_value))
        part = data.iloc[idx]
        if tf is not Timeframe.D1 and len(part):
            buckets, in_session = bucket_times(part["time"], tf, calendar)
            days = ist_days(part["time"])
            unique_days, inverse = np.unique(days, return_inverse=True)
            is_trading = np.array([calendar.is_trading_day(d.item()) for d in unique_days], dtype=bool)
            trading = is_trading[inverse]
            times_ns = utc_nanoseconds(part["time"])
            outside[idx] = ~(in_session & trading)
            misaligned[idx] = in_session & trading & (times_ns != buckets)
        outlier[idx] = _return_outliers(part, z_threshold, min_abs_return, intraday=tf is not Timeframe.D1)
        if check_gaps:
            gap_parts.append(_gaps(part, tf, calendar))
    rows["outside_market_hours"] = frame.iloc[np.flatnonzero(outside)]
    rows["misaligned"] = frame.iloc[np.flatnonzero(misaligned)]
    rows["return_outlier"] = frame.iloc[np.flatnonzero(outlier)]
    gap_columns = ["instrument_token", "timeframe", "time"]
    rows["gap"] = pd.concat(gap_parts, ignore_index=True) if gap_parts else pd.DataFrame(columns=gap_columns)
    counts = {issue: len(rows[issue]) for issue in ISSUES}
    return CandleReport(total_rows=len(frame), counts=counts, rows=rows)


def _ohlc_inconsistent(data: pd.DataFrame) -> np.ndarray:
    o, h, low, c = (data[col].to_numpy(dtype=float) for col in ("open", "high", "low", "close"))
    v = data["volume"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        prices = np.vstack([o, h, low, c])
        bad = ~np.isfinite(prices).all(axis=0) | (prices <= 0).any(axis=0)
        bad |= h < low
        bad |= (o < low) | (o > h) | (c < low) | (c > h)
        bad |= ~np.isfinite(v) | (v < 0)
    return np.asarray(bad)


def _return_outliers(
    part: pd.DataFrame, z_threshold: float, min_abs_return: float, *, intraday: bool
) -> np.ndarray:
    """Robust z-score flags on log close-to-close returns, per instrument, in time order.

    Intraday returns never span two sessions: the overnight gap is a different distribution.
    """
    flags = np.zeros(len(part), dtype=bool)
    for _, idx in part.groupby("instrument_token", sort=False).indices.items():
        sub = part.iloc[idx]
        times_ns = utc_nanoseconds(sub["time"])
        order = np.argsort(times_ns, kind="stable")
        close = sub["close"].to_numpy(dtype=float)[order]
        if len(close) < 3:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.diff(np.log(close))
        if intraday:
            days = ist_days(sub["time"])[order]
            r[days[1:] != days[:-1]] = np.nan
        finite = np.isfinite(r)
        if finite.sum() < 2:
            continue
        med = np.median(r[finite])
        mad = np.median(np.abs(r[finite] - med))
        with np.errstate(invalid="ignore"):
            if mad > 0:
                is_out = np.abs(r - med) / (_MAD_SCALE * mad) > z_threshold
            else:
                is_out = np.abs(r - med) > min_abs_return
        is_out &= finite
        # A return belongs to the later bar of the pair.
        flags[np.asarray(idx)[order][1:][is_out]] = True
    return flags


def _gaps(part: pd.DataFrame, tf: Timeframe, calendar: SessionCalendar) -> pd.DataFrame:
    out = []
    utc_ns = utc_nanoseconds(part["time"])
    local_days = ist_days(part["time"])
    expected_cache: dict[tuple[object, object], np.ndarray] = {}
    for token, idx in part.groupby("instrument_token", sort=False).indices.items():
        first, last = local_days[idx].min().item(), local_days[idx].max().item()
        expected = expected_cache.get((first, last))
        if expected is None:
            opens = [t for day in calendar.trading_days(first, last) for t in calendar.bar_opens(day, tf)]
            expected = utc_nanoseconds(pd.DatetimeIndex(opens)) if opens else np.array([], dtype=np.int64)
            expected_cache[(first, last)] = expected
        missing = np.setdiff1d(expected, utc_ns[idx], assume_unique=False)
        if len(missing):
            out.append(
                pd.DataFrame(
                    {
                        "instrument_token": token,
                        "timeframe": tf.value,
                        "time": pd.to_datetime(missing, utc=True).tz_convert(IST),
                    }
                )
            )
    if not out:
        return pd.DataFrame(columns=["instrument_token", "timeframe", "time"])
    return pd.concat(out, ignore_index=True)
