"""Roll 1-minute candles up to 5m / 15m / 60m / 1d, in batch (frames) and live (incrementally).

One rule for both paths, so that live and historical candles are identical:

- Intraday buckets are aligned to the session open (origin 09:15 IST, like Kite and like
  ``time_bucket(..., origin => '2000-01-03 09:15:00+05:30')``): a 60m session has buckets 09:15,
  10:15, ... 15:15, and the last one covers only 15:15-15:30 (partial, as on Kite). Day buckets are
  stamped at midnight IST (Kite's ``T00:00:00+0530``).
- open = open of the first 1m candle, high = max, low = min, close = close of the last, volume = sum,
  oi = oi of the last 1m candle (``last(oi, time)``).
- Only 1m candles inside the session window (calendar open <= time-of-day < close) count; others are
  dropped (:func:`~tickwise.core.candle_validator.validate_candles` reports them).
- A bucket with no 1m candle yields no candle (Kite omits periods without trades).
- Duplicate ``(instrument_token, time)`` rows: the first one wins (live: a repeated 1m candle is late).

Streaming (:class:`RollupBuilder`, what the live engine runs): a higher bar closes when its last 1m bar
arrives, when a 1m bar of a later bucket arrives, or on :meth:`RollupBuilder.on_clock` once
``now >= bucket end + grace``. A 1m candle for a closed bucket is counted in ``late_candles`` and
ignored. :meth:`RollupBuilder.restore` re-opens an instrument's buckets on the 1m candles before an
instant (a restart mid-session, or a correction that replays bars), so the next candles complete them
exactly as an uninterrupted stream would. A property test proves the streaming and batch results equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dt_time

import numpy as np
import numpy.typing as npt
import pandas as pd

from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.candle import Candle
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

_NS_MIN = 60 * 1_000_000_000
_NS_DAY = 24 * 60 * _NS_MIN
ROLLUP_TIMEFRAMES = (Timeframe.M5, Timeframe.M15, Timeframe.M60, Timeframe.D1)
CANDLE_VALUE_COLUMNS = ("open", "high", "low", "close", "volume", "oi")


# India has kept +05:30 without daylight saving since 1945, so IST wall time is a fixed shift of UTC
# (much faster than a per-element time-zone conversion on millions of rows).
_IST_OFFSET_NS = 19_800 * 1_000_000_000


def utc_nanoseconds(times: pd.Series | pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    """UTC epoch nanoseconds of a tz-aware datetime column (refuses naive times)."""
    index = pd.DatetimeIndex(times)
    if index.tz is None:
        raise ValueError("candle 'time' must be a tz-aware datetime column")
    return np.asarray(index.as_unit("ns").asi8, dtype=np.int64)


def ist_days(times: pd.Series | pd.DatetimeIndex) -> npt.NDArray[np.datetime64]:
    """IST calendar day (``datetime64[D]``) of each tz-aware time."""
    local = utc_nanoseconds(times) + _IST_OFFSET_NS
    return (local // _NS_DAY).astype("datetime64[D]")


def _minutes_of_day(t: dt_time) -> int:
    return t.hour * 60 + t.minute


def bucket_times(
    times: pd.Series, timeframe: Timeframe, calendar: SessionCalendar = NSE
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Bucket open (UTC epoch ns) of each tz-aware time, and whether the time is inside the session."""
    utc_ns = utc_nanoseconds(times)
    local_ns = utc_ns + _IST_OFFSET_NS
    day_ns = local_ns // _NS_DAY * _NS_DAY
    tod_min = (local_ns - day_ns) // _NS_MIN
    open_min = _minutes_of_day(calendar.open_time)
    close_min = _minutes_of_day(calendar.close_time)
    in_session = (tod_min >= open_min) & (tod_min < close_min)
    if timeframe is Timeframe.D1:
        bucket_local = day_ns
    else:
        step = timeframe.minutes
        bucket_local = day_ns + (open_min + (tod_min - open_min) // step * step) * _NS_MIN
    return utc_ns - (local_ns - bucket_local), in_session


def aggregate_candles(
    frame: pd.DataFrame,
    timeframe: Timeframe,
    calendar: SessionCalendar = NSE,
    *,
    chunk_rows: int = 1_000_000,
    chunk_days: int = 30,
) -> pd.DataFrame:
    """Aggregate a frame of 1m candles to ``timeframe`` (see the module docstring for the rule).

    ``frame`` has columns ``time`` (tz-aware), ``open, high, low, close, volume`` and optionally
    ``oi``, ``instrument_token``, ``timeframe``, ``source``. The result has the same columns (the
    ``timeframe`` column set to the target), sorted by instrument and time, ``time`` in the input's
    time zone. Inputs above ``chunk_rows`` rows are processed per instrument and per ``chunk_days``
    IST days (buckets never cross a day), so temporary arrays stay small.
    """
    if frame.empty:
        return _empty_like(frame, timeframe)
    if len(frame) <= chunk_rows:
        return _aggregate(frame, timeframe, calendar)
    parts = []
    groups: Iterable[tuple[object, pd.DataFrame]] = (
        frame.groupby("instrument_token", sort=True) if "instrument_token" in frame else [(None, frame)]
    )
    for _, group in groups:
        if len(group) <= chunk_rows:
            parts.append(_aggregate(group, timeframe, calendar))
            continue
        days = ist_days(group["time"]).astype(np.int64)
        chunk_id = (days - days.min()) // chunk_days
        for _, chunk in group.groupby(chunk_id, sort=True):
            parts.append(_aggregate(chunk, timeframe, calendar))
    return pd.concat(parts, ignore_index=True)


def _empty_like(frame: pd.DataFrame, timeframe: Timeframe) -> pd.DataFrame:
    out = frame.iloc[0:0].copy()
    if "timeframe" in out:
        out["timeframe"] = out["timeframe"].astype(object)
    return out.reset_index(drop=True)


def _aggregate(frame: pd.DataFrame, timeframe: Timeframe, calendar: SessionCalendar) -> pd.DataFrame:
    has_token = "instrument_token" in frame
    t_ns = utc_nanoseconds(frame["time"])
    tokens = (
        frame["instrument_token"].to_numpy(dtype=np.int64) if has_token else np.zeros(len(frame), np.int64)
    )
    # Sort by (instrument, time) only when needed (frames read from the database already are).
    same_token = tokens[1:] == tokens[:-1]
    if not np.all((tokens[1:] > tokens[:-1]) | (same_token & (t_ns[1:] >= t_ns[:-1]))):
        order = np.lexsort((t_ns, tokens))  # stable: the first of equal keys stays first
        t_ns, tokens = t_ns[order], tokens[order]
        same_token = tokens[1:] == tokens[:-1]
    else:
        order = None
    keep = np.ones(len(t_ns), dtype=bool)
    keep[1:] = ~(same_token & (t_ns[1:] == t_ns[:-1]))  # duplicates: the first one wins
    data = frame if order is None else frame.iloc[order]
    buckets, in_session = bucket_times(data["time"], timeframe, calendar)
    keep &= in_session
    if not keep.all():
        data, buckets, tokens = data[keep], buckets[keep], tokens[keep]
    n = len(data)
    if n == 0:
        return _empty_like(frame, timeframe)
    change = np.empty(n, dtype=bool)
    change[0] = True
    change[1:] = (buckets[1:] != buckets[:-1]) | (tokens[1:] != tokens[:-1])
    starts = np.flatnonzero(change)
    lasts = np.append(starts[1:], n) - 1

    out: dict[str, object] = {}
    if has_token:
        out["instrument_token"] = data["instrument_token"].to_numpy()[starts]
    if "timeframe" in data:
        out["timeframe"] = np.full(len(starts), timeframe.value, dtype=object)
    tz = data["time"].dt.tz
    out["time"] = pd.DatetimeIndex(buckets[starts].astype("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
    out["open"] = data["open"].to_numpy()[starts]
    out["high"] = np.maximum.reduceat(data["high"].to_numpy(), starts)
    out["low"] = np.minimum.reduceat(data["low"].to_numpy(), starts)
    out["close"] = data["close"].to_numpy()[lasts]
    out["volume"] = np.add.reduceat(data["volume"].to_numpy(), starts)
    for column in ("oi", "source"):
        if column in data:
            out[column] = data[column].to_numpy()[lasts]
    result = pd.DataFrame(out)
    # Keep the input's column order; columns with no aggregation rule (e.g. a feature) are dropped.
    return result[[c for c in frame.columns if c in result.columns]]


@dataclass(slots=True)
class _Bucket:
    open_time: datetime
    end_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int
    oi: int | None
    source: str
    last_minute: datetime


class RollupBuilder:
    """Streaming roll-up of closed 1m candles into higher timeframes (same rule as :func:`aggregate_candles`).

    ``source``, when given, stamps every emitted candle (the live engine writes its roll-ups as
    ``live`` even when a bucket started in stored history); otherwise a bucket takes the source of its
    last 1m candle.
    """

    def __init__(
        self,
        timeframes: Sequence[Timeframe] = ROLLUP_TIMEFRAMES,
        calendar: SessionCalendar = NSE,
        grace_s: float = 2.0,
        *,
        source: str | None = None,
    ) -> None:
        for tf in timeframes:
            if tf is Timeframe.M1:
                raise ValueError("RollupBuilder targets timeframes above 1m")
        self.timeframes = tuple(timeframes)
        self.calendar = calendar
        self.grace = timedelta(seconds=grace_s)
        self.source = source
        self.late_candles = 0
        self.outside_session_candles = 0
        self._open: dict[tuple[int, Timeframe], _Bucket] = {}
        self._closed_until: dict[tuple[int, Timeframe], datetime] = {}
        self._opens_at: tuple[datetime, tuple[datetime, ...] | None] | None = None

    def on_candle(self, candle: Candle) -> list[Candle]:
        """Feed one closed 1m candle; return the higher-timeframe candles it closed."""
        opens = self._bucket_opens(candle.time)
        if opens is None:
            self.outside_session_candles += 1
            return []
        if self._is_late(candle):
            # Dropped for every timeframe, so that higher timeframes stay rollups of each other.
            self.late_candles += 1
            return []
        closed: list[Candle] = []
        minute_end = candle.time + candle.timeframe.delta
        for tf, open_time in zip(self.timeframes, opens, strict=True):
            key = (candle.instrument_token, tf)
            bucket = self._open.get(key)
            if bucket is not None and open_time != bucket.open_time:
                closed.append(self._close(key, bucket))
                bucket = None
            if bucket is None:
                bucket = self._start(candle, tf, open_time)
                self._open[key] = bucket
            else:
                bucket.high = max(bucket.high, candle.high)
                bucket.low = min(bucket.low, candle.low)
                bucket.close = candle.close
                bucket.volume += candle.volume
                bucket.oi = candle.oi
                bucket.source = candle.source
                bucket.last_minute = candle.time
            if minute_end >= bucket.end_time:
                closed.append(self._close(key, bucket))
        return closed

    def _bucket_opens(self, instant: datetime) -> tuple[datetime, ...] | None:
        """Each timeframe's bucket open for a candle opened at ``instant`` (None outside the session).

        Live, every instrument's candle of a minute has the same ``instant``: the calendar is asked
        once per minute, not once per candle and timeframe.
        """
        if self._opens_at is not None and self._opens_at[0] == instant:
            return self._opens_at[1]
        opens = (
            tuple(self.calendar.bar_open(instant, tf) for tf in self.timeframes)
            if self.calendar.is_open(instant)
            else None
        )
        self._opens_at = (instant, opens)
        return opens

    def restore(self, instrument_token: int, before: Sequence[Candle]) -> None:
        """Forget ``instrument_token``'s buckets and re-open them on ``before`` (its 1m candles, oldest first).

        Afterwards the builder is in the state it would be in had it been fed ``before`` from the start:
        the buckets containing the last candle are open with their members, and nothing is emitted. Only
        the candles of the buckets still open can matter, so only those are replayed (at most a day's).
        """
        for tf in self.timeframes:
            self._open.pop((instrument_token, tf), None)
            self._closed_until.pop((instrument_token, tf), None)
        if not before:
            return
        last = before[-1].time
        day = last.astimezone(IST).date()
        starts = [
            self.calendar.session_open(day) if tf is Timeframe.D1 else self.calendar.bar_open(last, tf)
            for tf in self.timeframes
        ]
        since = min(starts)
        i = len(before)
        while i > 0 and before[i - 1].time >= since:
            i -= 1
        for candle in before[i:]:
            self.on_candle(candle)

    def _is_late(self, candle: Candle) -> bool:
        for tf in self.timeframes:
            key = (candle.instrument_token, tf)
            bucket = self._open.get(key)
            if bucket is not None and candle.time <= bucket.last_minute:
                return True
            closed_until = self._closed_until.get(key)
            if closed_until is not None and candle.time < closed_until:
                return True
        return False

    def on_clock(self, now: datetime) -> list[Candle]:
        """Close every bucket whose end + grace is at or before ``now``.

        Call it after feeding the 1m candles that :meth:`CandleBuilder.on_clock` returned for the same
        ``now`` (with the same grace), so a bucket's last minute is in before the bucket closes.
        """
        due = [(k, b) for k, b in self._open.items() if now >= b.end_time + self.grace]
        closed = [self._close(k, b) for k, b in due]
        closed.sort(key=lambda c: (c.time, c.instrument_token, c.timeframe.minutes))
        return closed

    def flush(self) -> list[Candle]:
        """Close every open bucket now."""
        closed = [self._close(k, b) for k, b in list(self._open.items())]
        closed.sort(key=lambda c: (c.time, c.instrument_token, c.timeframe.minutes))
        return closed

    def _start(self, candle: Candle, tf: Timeframe, open_time: datetime) -> _Bucket:
        day = candle.time.astimezone(IST).date()
        session_close = self.calendar.session_close(day)
        end = session_close if tf is Timeframe.D1 else min(open_time + tf.delta, session_close)
        return _Bucket(
            open_time=open_time,
            end_time=end,
            open=candle.open,
            high=candle.high,
            low=candle.low,
            close=candle.close,
            volume=candle.volume,
            oi=candle.oi,
            source=candle.source,
            last_minute=candle.time,
        )

    def _close(self, key: tuple[int, Timeframe], bucket: _Bucket) -> Candle:
        del self._open[key]
        self._closed_until[key] = bucket.end_time
        return Candle(
            instrument_token=key[0],
            timeframe=key[1],
            time=bucket.open_time,
            open=bucket.open,
            high=bucket.high,
            low=bucket.low,
            close=bucket.close,
            volume=bucket.volume,
            oi=bucket.oi,
            source=self.source or bucket.source,
        )
