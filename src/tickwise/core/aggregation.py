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
exactly as an uninterrupted stream would. :meth:`RollupBuilder.on_candles` folds the bars of one minute
of every instrument in one compiled call, candle by candle under the same rule. Property tests prove the
streaming (candle by candle and in minute waves with gaps, late bars and session boundaries) and batch
results equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time

import numpy as np
import numpy.typing as npt
import pandas as pd
from numba import njit

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


_NO_INSTANT = np.iinfo(np.int64).min  # "never closed": no candle is before it
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_ACCEPTED, _OUTSIDE, _LATE = 0, 1, 2  # what became of a candle fed in
# Integer fields of a bucket (RollupBuilder._int[row, timeframe]): its open and end instants, the last
# minute folded in, volume, oi and whether oi is set; then the instant before which a candle of that
# instrument and timeframe is late (the end of its last closed bucket).
_OPEN, _END, _LAST, _VOLUME, _OI, _OI_SET, _CLOSED = range(7)


def _ns(t: datetime) -> int:
    """Epoch nanoseconds of an aware datetime, in integers (exact to the microsecond, as datetime is)."""
    return (t - _EPOCH) // _US * 1000


class RollupBuilder:
    """Streaming roll-up of closed 1m candles into higher timeframes (same rule as :func:`aggregate_candles`).

    ``source``, when given, stamps every emitted candle (the live engine writes its roll-ups as
    ``live`` even when a bucket started in stored history); otherwise a bucket takes the source of its
    last 1m candle.

    The open buckets live as arrays (structure of arrays: one row per instrument, one column per
    timeframe), and :meth:`on_candles` folds a whole minute's candles of every instrument in ONE
    compiled call (:func:`_roll`): the live minute pays no Python per bar and timeframe. The kernel
    takes the candles in order, one at a time, with exactly the rule :meth:`on_candle` (the same
    call on one candle) applies, so folding a minute at once or candle by candle is the same thing.
    The calendar is asked once per distinct candle instant (a minute's candles share one), not per
    candle.
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
        self._row_of: dict[int, int] = {}
        self._tokens: list[int] = []
        self._sources: list[str] = []  # per row: the source of its last accepted candle
        # instant -> (bucket opens, bucket ends) in ns per timeframe, or None outside the session
        self._instants: dict[datetime, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None] = {}
        self._times: dict[int, datetime] = {}  # bucket open (ns) -> the calendar's datetime of it
        self._alloc(64)

    def _alloc(self, capacity: int) -> None:
        n_tf = len(self.timeframes)
        self._has = np.zeros((capacity, n_tf), dtype=np.bool_)
        self._int = np.zeros((capacity, n_tf, 7), dtype=np.int64)  # see _OPEN ... _CLOSED
        self._int[:, :, _CLOSED] = _NO_INSTANT
        self._float = np.zeros((capacity, n_tf, 4), dtype=np.float64)  # open, high, low, close

    def _row(self, token: int) -> int:
        row = self._row_of.get(token)
        if row is None:
            row = self._row_of[token] = len(self._tokens)
            self._tokens.append(token)
            self._sources.append("")
            if row >= self._has.shape[0]:
                has, ints, floats = self._has, self._int, self._float
                self._alloc(2 * has.shape[0])
                self._has[: has.shape[0]], self._int[: has.shape[0]] = has, ints
                self._float[: has.shape[0]] = floats
        return row

    def on_candle(self, candle: Candle) -> list[Candle]:
        """Feed one closed 1m candle; return the higher-timeframe candles it closed."""
        return self.on_candles([candle])[0]

    def on_candles(self, candles: Sequence[Candle]) -> list[list[Candle]]:
        """Feed closed 1m candles in order (one minute of many instruments, or one instrument's run);
        return, per candle, the higher-timeframe candles it closed (as :meth:`on_candle` would)."""
        k = len(candles)
        if k == 0:
            return []
        n_tf = len(self.timeframes)
        row_of = self._row_of
        rows = np.fromiter(
            (row_of[t] if t in row_of else self._row(t) for t in [c.instrument_token for c in candles]),
            dtype=np.int64,
            count=k,
        )
        # A minute's candles share their instant: the calendar and the conversions once per instant.
        index: dict[datetime, int] = {}
        inverse = np.fromiter(
            (index.setdefault(c.time, len(index)) for c in candles), dtype=np.int64, count=k
        )
        u_ns = np.zeros(len(index), dtype=np.int64)
        u_opens = np.zeros((len(index), n_tf), dtype=np.int64)
        u_ends = np.zeros((len(index), n_tf), dtype=np.int64)
        u_in = np.zeros(len(index), dtype=np.bool_)
        for j, t in enumerate(index):
            u_ns[j] = _ns(t)
            got = self._instant(t)
            if got is not None:
                u_in[j] = True
                u_opens[j], u_ends[j] = got
        t_ns, opens, ends, in_session = u_ns[inverse], u_opens[inverse], u_ends[inverse], u_in[inverse]
        frames = {c.timeframe for c in candles}
        if len(frames) == 1:
            end_ns = t_ns + frames.pop().delta // _US * 1000
        else:
            end_ns = t_ns + np.array([c.timeframe.delta // _US * 1000 for c in candles], dtype=np.int64)
        prices = np.empty((k, 4), dtype=np.float64)
        prices[:, 0] = [c.open for c in candles]
        prices[:, 1] = [c.high for c in candles]
        prices[:, 2] = [c.low for c in candles]
        prices[:, 3] = [c.close for c in candles]
        amounts = np.zeros((k, 3), dtype=np.int64)  # volume, oi, oi set
        amounts[:, 0] = [c.volume for c in candles]
        ois = [c.oi for c in candles]
        if any(o is not None for o in ois):
            amounts[:, 1] = [0 if o is None else o for o in ois]
            amounts[:, 2] = [o is not None for o in ois]
        status = np.empty(k, dtype=np.int8)
        # At most two closes per candle and timeframe (the bucket it leaves, the one it completes).
        emitted = np.empty((2 * k * n_tf, 3), dtype=np.int64)  # candle, timeframe, source candle
        e_int = np.empty((2 * k * n_tf, 4), dtype=np.int64)  # open, volume, oi, oi set
        e_float = np.empty((2 * k * n_tf, 4), dtype=np.float64)
        n = _roll(
            rows, t_ns, end_ns, opens, ends, in_session, prices, amounts,
            self._has, self._int, self._float, status, emitted, e_int, e_float,
        )  # fmt: skip
        accepted = status == _ACCEPTED
        self.outside_session_candles += int(np.count_nonzero(status == _OUTSIDE))
        self.late_candles += int(np.count_nonzero(status == _LATE))
        out: list[list[Candle]] = [[] for _ in range(k)]
        if n:
            before = self._sources if self.source is None else []
            self._emit(out, candles, rows, emitted[:n], e_int[:n], e_float[:n], before)
        for q in np.flatnonzero(accepted).tolist():
            self._sources[rows[q]] = candles[q].source
        return out

    def _emit(
        self,
        out: list[list[Candle]],
        candles: Sequence[Candle],
        rows: npt.NDArray[np.int64],
        emitted: npt.NDArray[np.int64],
        e_int: npt.NDArray[np.int64],
        e_float: npt.NDArray[np.float64],
        sources: list[str],
    ) -> None:
        tfs, tokens, times = self.timeframes, self._tokens, self._times
        for (q, f, src), (open_ns, volume, oi, oi_set), (o, h, lo, c) in zip(
            emitted.tolist(), e_int.tolist(), e_float.tolist(), strict=True
        ):
            if self.source is not None:
                source = self.source
            else:  # the bucket's last candle: one of this call's, or the row's last before it
                source = candles[src].source if src >= 0 else sources[rows[q]]
            out[q].append(
                Candle(
                    instrument_token=tokens[rows[q]],
                    timeframe=tfs[f],
                    time=times[open_ns],
                    open=o,
                    high=h,
                    low=lo,
                    close=c,
                    volume=volume,
                    oi=oi if oi_set else None,
                    source=source,
                )
            )

    def _instant(self, instant: datetime) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
        """Each timeframe's bucket open and end (ns) for a candle opened at ``instant``; None outside the
        session. Cached per instant (bounded), so restoring many instruments on the same history asks
        the calendar once per minute of it."""
        if instant in self._instants:
            return self._instants[instant]
        if len(self._instants) >= 20_000:
            self._instants.clear()
        got = None
        if self.calendar.is_open(instant):
            session_close = self.calendar.session_close(instant.astimezone(IST).date())
            opens, ends = [], []
            for tf in self.timeframes:
                open_time = self.calendar.bar_open(instant, tf)
                end = session_close if tf is Timeframe.D1 else min(open_time + tf.delta, session_close)
                open_ns = _ns(open_time)
                self._times.setdefault(open_ns, open_time)
                opens.append(open_ns)
                ends.append(_ns(end))
            got = (np.array(opens, dtype=np.int64), np.array(ends, dtype=np.int64))
        self._instants[instant] = got
        return got

    def restore(self, instrument_token: int, before: Sequence[Candle]) -> None:
        """Forget ``instrument_token``'s buckets and re-open them on ``before`` (its 1m candles, oldest first).

        Afterwards the builder is in the state it would be in had it been fed ``before`` from the start:
        the buckets containing the last candle are open with their members, and nothing is emitted. Only
        the candles of the buckets still open can matter, so only those are replayed (at most a day's).
        """
        row = self._row(instrument_token)
        self._has[row] = False
        self._int[row, :, _CLOSED] = _NO_INSTANT
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
        self.on_candles(before[i:])

    def on_clock(self, now: datetime) -> list[Candle]:
        """Close every bucket whose end + grace is at or before ``now``.

        Call it after feeding the 1m candles that :meth:`CandleBuilder.on_clock` returned for the same
        ``now`` (with the same grace), so a bucket's last minute is in before the bucket closes.
        """
        n = len(self._tokens)
        due = self._has[:n] & (self._int[:n, :, _END] <= _ns(now - self.grace))
        return self._close_all(due)

    def flush(self) -> list[Candle]:
        """Close every open bucket now."""
        return self._close_all(self._has[: len(self._tokens)].copy())

    def _close_all(self, due: npt.NDArray[np.bool_]) -> list[Candle]:
        rows, fs = np.nonzero(due)
        closed = []
        for r, f in zip(rows.tolist(), fs.tolist(), strict=True):
            open_ns, end, _, volume, oi, oi_set, _ = self._int[r, f].tolist()
            o, h, lo, c = self._float[r, f].tolist()
            self._has[r, f] = False
            self._int[r, f, _CLOSED] = end
            closed.append(
                Candle(
                    instrument_token=self._tokens[r],
                    timeframe=self.timeframes[f],
                    time=self._times[open_ns],
                    open=o,
                    high=h,
                    low=lo,
                    close=c,
                    volume=volume,
                    oi=oi if oi_set else None,
                    source=self.source or self._sources[r],
                )
            )
        closed.sort(key=lambda c: (c.time, c.instrument_token, c.timeframe.minutes))
        return closed


@njit(cache=True)
def _roll(
    rows: npt.NDArray[np.int64],
    t_ns: npt.NDArray[np.int64],
    minute_end: npt.NDArray[np.int64],
    opens: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    in_session: npt.NDArray[np.bool_],
    prices: npt.NDArray[np.float64],
    amounts: npt.NDArray[np.int64],
    has: npt.NDArray[np.bool_],
    ints: npt.NDArray[np.int64],
    floats: npt.NDArray[np.float64],
    status: npt.NDArray[np.int8],
    emitted: npt.NDArray[np.int64],
    e_int: npt.NDArray[np.int64],
    e_float: npt.NDArray[np.float64],
) -> int:
    """Fold candle ``q`` (instrument row ``rows[q]``) into every timeframe's bucket, candle after candle in
    the given order; write each closed bucket to the ``e_*`` arrays (in the order :meth:`on_candle`
    returns them) and return how many closed.

    Per candle: outside the session -> ``_OUTSIDE``; at or before a bucket's last minute, or before the
    end of the last closed bucket, in any timeframe -> ``_LATE`` (dropped for every timeframe, so that
    higher timeframes stay roll-ups of each other). Else, per timeframe: a bucket of an earlier open
    closes, the candle starts a bucket or folds into the open one (high: the larger, low: the smaller,
    as Python's ``max``/``min`` keep the first of equals), and a bucket whose end the minute reaches
    closes. ``emitted[e]`` = (candle, timeframe, the candle that last folded into the bucket, or -1 for
    one of an earlier call).
    """
    n_tf = opens.shape[1]
    last_q = np.full(has.shape[0], -1, dtype=np.int64)
    n = 0
    for q in range(rows.shape[0]):
        r = rows[q]
        if not in_session[q]:
            status[q] = _OUTSIDE
            continue
        t = t_ns[q]
        late = False
        for f in range(n_tf):
            if (has[r, f] and t <= ints[r, f, _LAST]) or t < ints[r, f, _CLOSED]:
                late = True
        if late:
            status[q] = _LATE
            continue
        status[q] = _ACCEPTED
        for f in range(n_tf):
            b = ints[r, f]
            p = floats[r, f]
            if has[r, f] and opens[q, f] != b[_OPEN]:  # the candle is in a later bucket
                n = _emit(q, f, last_q[r], b, p, emitted, e_int, e_float, n)
                has[r, f] = False
                b[_CLOSED] = b[_END]
            if not has[r, f]:
                has[r, f] = True
                b[_OPEN] = opens[q, f]
                b[_END] = ends[q, f]
                p[0] = prices[q, 0]
                p[1] = prices[q, 1]
                p[2] = prices[q, 2]
                b[_VOLUME] = amounts[q, 0]
            else:
                if prices[q, 1] > p[1]:
                    p[1] = prices[q, 1]
                if prices[q, 2] < p[2]:
                    p[2] = prices[q, 2]
                b[_VOLUME] += amounts[q, 0]
            p[3] = prices[q, 3]
            b[_OI] = amounts[q, 1]
            b[_OI_SET] = amounts[q, 2]
            b[_LAST] = t
            if minute_end[q] >= b[_END]:  # the bucket's last minute
                n = _emit(q, f, q, b, p, emitted, e_int, e_float, n)
                has[r, f] = False
                b[_CLOSED] = b[_END]
        last_q[r] = q
    return n


@njit(cache=True)
def _emit(
    q: int,
    f: int,
    src: int,
    b: npt.NDArray[np.int64],
    p: npt.NDArray[np.float64],
    emitted: npt.NDArray[np.int64],
    e_int: npt.NDArray[np.int64],
    e_float: npt.NDArray[np.float64],
    n: int,
) -> int:
    emitted[n, 0] = q
    emitted[n, 1] = f
    emitted[n, 2] = src
    e_int[n, 0] = b[_OPEN]
    e_int[n, 1] = b[_VOLUME]
    e_int[n, 2] = b[_OI]
    e_int[n, 3] = b[_OI_SET]
    e_float[n, 0] = p[0]
    e_float[n, 1] = p[1]
    e_float[n, 2] = p[2]
    e_float[n, 3] = p[3]
    return n + 1
