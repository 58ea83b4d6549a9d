"""The candle checks of a closed minute for every instrument at once, equal to the batch checks.

:func:`~tickwise.core.candle_flags.flag_candles` checks one instrument's history; live, a minute closes
for hundreds of instruments together. :class:`MinuteChecks` keeps what the checks of the next bar need,
as arrays across instruments (structure of arrays):

- the trailing ``window`` values of each per-bar series (return, range, wick, log volume, volume) in
  ring buffers (instruments x window), and the previous bar;
- for the anomaly model, each instrument's per-bar model inputs of the recent sessions (float32: the
  forest casts its inputs to float32 anyway) and the fitted weekly forests, compiled into one
  :class:`~tickwise.core.isolation_pack.IsolationPack`.

:meth:`MinuteChecks.step` then runs each check once over the minute's bars: the same functions
(:func:`~tickwise.core.candle_flags.bar_series`, ``window_statistics``, ``fired_checks``,
``flag_rows``) over rows that hold the same values as the batch's trailing windows, so a bar's flags
are the batch's flags, row for row (``tests/unit/live/test_live_candle_checks.py``). Models are fitted
by :meth:`MinuteChecks.prepare` (before the session: off the hot path) or, for a week nobody prepared,
at its first bar.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date
from functools import lru_cache
from itertools import pairwise

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from tickwise.core.aggregation import ist_days
from tickwise.core.candle_flags import (
    FLAG_COLUMNS,
    SERIES,
    BarArrays,
    CandleCheckConfig,
    FloatArray,
    bar_series,
    fired_checks,
    fit_compiled_model,
    flag_rows,
    in_market_hours,
    trailing_windows,
    window_statistics,
)
from tickwise.core.isolation_pack import CompiledForest, IsolationPack
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.timeframe import Timeframe

# What fits anomaly models elsewhere: :func:`fit_compiled_model` requests in, compiled forests out.
FitRequest = tuple[list[tuple[date, FloatArray]], date, CandleCheckConfig]
FitMany = Callable[[list[FitRequest]], list[CompiledForest | None]]

_NO_DAY = np.int64(-(2**62))
_NO_TIME = np.iinfo(np.int64).min
_EPOCH = date(1970, 1, 1).toordinal()
# Bars of one session held for the model inputs before the block grows (NSE: 375).
_SESSION_ROWS = 400


@lru_cache(maxsize=64)
def _week(day: date) -> tuple[int, int]:
    iso = day.isocalendar()
    return iso.year, iso.week


@lru_cache(maxsize=64)
def _day(days_since_epoch: int) -> date:
    return date.fromordinal(int(days_since_epoch) + _EPOCH)


@dataclass(frozen=True, slots=True)
class MinuteBatch:
    """One bar per instrument (tokens distinct): UTC epoch-nanosecond opens and the OHLCV arrays."""

    tokens: NDArray[np.int64]
    times_ns: NDArray[np.int64]
    o: FloatArray
    h: FloatArray
    low: FloatArray
    c: FloatArray
    v: FloatArray


class MinuteChecks:
    """Trailing check state of many instruments; :meth:`step` flags a minute's bars in one pass."""

    def __init__(self, config: CandleCheckConfig, calendar: SessionCalendar = NSE) -> None:
        self.config = config
        self.calendar = calendar
        self.models = IsolationPack()
        self.fits = 0  # forests fitted (prepare or first bar of an unprepared week)
        self._rows: dict[int, int] = {}
        self._alloc(0, 16)
        # Model inputs of finished sessions per instrument (day, float32 rows), and the session in progress.
        self._sessions: list[deque[tuple[int, NDArray[np.float32]]]] = []
        self._no_model: set[tuple[int, tuple[int, int]]] = set()
        self._model_of: dict[int, tuple[int, tuple[int, int]]] = {}

    # -- state -------------------------------------------------------------------------------------

    def _alloc(self, old: int, new: int) -> None:
        w = self.config.window
        if old == 0:
            self._ring = np.full((len(SERIES), new, w), np.nan)
            self._pos = np.zeros(new, dtype=np.int64)
            self._prev = np.full((5, new), np.nan)
            self._prev_day = np.full(new, _NO_DAY, dtype=np.int64)
            self._last_ns = np.full(new, _NO_TIME, dtype=np.int64)
            self._cur_day = np.full(new, _NO_DAY, dtype=np.int64)
            self._cur_n = np.zeros(new, dtype=np.int64)
            self._cur_x = np.zeros((new, _SESSION_ROWS, 5), dtype=np.float32) if self.config.anomaly else None
            return
        ring = np.full((len(SERIES), new, w), np.nan)
        ring[:, :old] = self._ring
        self._ring = ring
        self._pos = np.concatenate((self._pos, np.zeros(new - old, dtype=np.int64)))
        prev = np.full((5, new), np.nan)
        prev[:, :old] = self._prev
        self._prev = prev
        self._prev_day = np.concatenate((self._prev_day, np.full(new - old, _NO_DAY, dtype=np.int64)))
        self._last_ns = np.concatenate((self._last_ns, np.full(new - old, _NO_TIME, dtype=np.int64)))
        self._cur_day = np.concatenate((self._cur_day, np.full(new - old, _NO_DAY, dtype=np.int64)))
        self._cur_n = np.concatenate((self._cur_n, np.zeros(new - old, dtype=np.int64)))
        if self._cur_x is not None:
            cur = np.zeros((new, self._cur_x.shape[1], 5), dtype=np.float32)
            cur[:old] = self._cur_x
            self._cur_x = cur

    def _row(self, token: int) -> int:
        row = self._rows.get(token)
        if row is None:
            row = len(self._rows)
            if row >= len(self._pos):
                self._alloc(len(self._pos), 2 * len(self._pos))
            self._rows[token] = row
            self._sessions.append(deque())
        return row

    @property
    def nbytes(self) -> int:
        """Bytes held: the ring buffers, the model inputs of recent sessions and the compiled forests."""
        arrays = (
            self._ring,
            self._pos,
            self._prev,
            self._prev_day,
            self._last_ns,
            self._cur_day,
            self._cur_n,
        )
        held = sum(a.nbytes for a in arrays) + (self._cur_x.nbytes if self._cur_x is not None else 0)
        held += sum(x.nbytes for s in self._sessions for _, x in s)
        return held + self.models.nbytes

    def last_time_ns(self, token: int) -> int | None:
        row = self._rows.get(token)
        return None if row is None or self._last_ns[row] == _NO_TIME else int(self._last_ns[row])

    # -- seeding -----------------------------------------------------------------------------------

    def seed(self, token: int, history: pd.DataFrame) -> None:
        """Load the instrument's stored 1m candles (columns ``time, open, high, low, close, volume``):
        only the tail the checks need is kept (the last ``window`` bars and, for the anomaly model, the
        model inputs of the sessions a week's fit can use)."""
        row = self._row(token)
        if history.empty:
            return
        data = history.sort_values("time", kind="stable").reset_index(drop=True)
        days = ist_days(data["time"]).astype(np.int64)
        starts = np.flatnonzero(np.concatenate(([True], days[1:] != days[:-1])))
        keep_sessions = self.config.anomaly_fit_sessions + 7 if self.config.anomaly else 0
        first_kept = int(starts[max(len(starts) - keep_sessions, 0)]) if keep_sessions else len(data)
        begin = max(min(first_kept, len(data) - 1) - self.config.window - 1, 0)
        tail = data.iloc[begin:]
        o, h, low, c, v = (
            tail[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close", "volume")
        )
        tail_days = days[begin:]
        new_session = np.concatenate(([True], tail_days[1:] != tail_days[:-1]))
        prev_c = np.concatenate(([np.nan], c[:-1]))
        series, body = bar_series(o, h, low, c, v, prev_c, new_session)
        w = self.config.window
        last = series[:, -w:]
        self._ring[:, row, :] = np.nan
        self._ring[:, row, w - last.shape[1] :] = last
        self._pos[row] = 0
        self._prev[:, row] = (o[-1], h[-1], low[-1], c[-1], v[-1])
        self._prev_day[row] = tail_days[-1]
        self._last_ns[row] = int(pd.Timestamp(tail["time"].iloc[-1]).value)
        if self.config.anomaly:
            pasts = [trailing_windows(s, w) for s in series]
            x, _ = window_statistics(series, pasts, body, self.config)
            cut = first_kept - begin
            x32, kept_days = x[cut:].astype(np.float32), tail_days[cut:]
            sessions = self._sessions[row]
            sessions.clear()
            bounds = np.flatnonzero(np.concatenate(([True], kept_days[1:] != kept_days[:-1], [True])))
            for a, b in pairwise(bounds):
                sessions.append((int(kept_days[a]), x32[a:b].copy()))
            if sessions:  # the last stored session may still be in progress: it continues live
                day, rows = sessions.pop()
                self._set_current(row, day, rows)

    def _set_current(self, row: int, day: int, rows: NDArray[np.float32]) -> None:
        assert self._cur_x is not None
        while len(rows) > self._cur_x.shape[1]:
            self._grow_session()
        self._cur_day[row] = day
        self._cur_n[row] = len(rows)
        self._cur_x[row, : len(rows)] = rows

    def _grow_session(self) -> None:
        assert self._cur_x is not None
        cur = np.zeros((self._cur_x.shape[0], 2 * self._cur_x.shape[1], 5), dtype=np.float32)
        cur[:, : self._cur_x.shape[1]] = self._cur_x
        self._cur_x = cur

    # -- the anomaly models ------------------------------------------------------------------------

    def _model_sessions(self, row: int) -> list[tuple[date, FloatArray]]:
        out = [(_day(d), x.astype(np.float64)) for d, x in self._sessions[row]]
        if self._cur_x is not None and self._cur_n[row]:
            out.append((_day(self._cur_day[row]), self._cur_x[row, : self._cur_n[row]].astype(np.float64)))
        return out

    def _ensure_model(self, token: int, day: date) -> tuple[int, tuple[int, int]] | None:
        key = (token, _week(day))
        if key in self.models:
            return key
        if key in self._no_model:
            return None
        return self._install(
            token, key, fit_compiled_model(self._model_sessions(self._rows[token]), day, self.config)
        )

    def _install(
        self, token: int, key: tuple[int, tuple[int, int]], forest: CompiledForest | None
    ) -> tuple[int, tuple[int, int]] | None:
        self.fits += 1
        # One week's model per instrument is live at a time: older weeks are never scored again.
        old = self._model_of.pop(token, None)
        if old is not None:
            self.models.discard([old])
        if forest is None:
            self._no_model.add(key)
            return None
        self.models.add_compiled(key, forest)
        self._model_of[token] = key
        return key

    def _model_key(self, token: int, day: date) -> tuple[int, tuple[int, int]] | None:
        key = self._model_of.get(token)
        if key is not None and key[1] == _week(day):  # the usual case: this week's model, fitted
            return key
        return self._ensure_model(token, day)

    def prepare(self, day: date, fit_many: FitMany | None = None) -> int:
        """Fit every instrument's model for ``day``'s ISO week now (before the session), so no bar of the
        week waits for a fit. Returns the number of instruments with a model.

        ``fit_many`` fits a list of :func:`fit_compiled_model` requests elsewhere (the live mode: in a
        child process, so scikit-learn never enters the live process); the models are the same.
        """
        if not self.config.anomaly:
            return 0
        if fit_many is not None:
            week = _week(day)
            todo = [t for t in self._rows if (t, week) not in self.models and (t, week) not in self._no_model]
            requests = [(self._model_sessions(self._rows[t]), day, self.config) for t in todo]
            for token, forest in zip(todo, fit_many(requests), strict=True):
                self._install(token, (token, week), forest)
        fitted = sum(self._ensure_model(token, day) is not None for token in self._rows)
        if fitted:  # compile (or load) the scoring loop and pack the arrays now, not at the first bar
            self.models.score(np.zeros((1, 5)), [self.models.keys()[0]])
        return fitted

    def _record(self, rows: NDArray[np.int64], days: NDArray[np.int64], x: FloatArray) -> None:
        """Append the bars' model inputs to their instruments' current session (a new day closes it)."""
        assert self._cur_x is not None
        for k in np.flatnonzero(self._cur_day[rows] != days):
            row = int(rows[k])
            if self._cur_n[row]:
                sessions = self._sessions[row]
                sessions.append((int(self._cur_day[row]), self._cur_x[row, : self._cur_n[row]].copy()))
                self._trim(sessions)
            self._cur_day[row] = days[k]
            self._cur_n[row] = 0
        while (self._cur_n[rows] >= self._cur_x.shape[1]).any():
            self._grow_session()
        self._cur_x[rows, self._cur_n[rows]] = x.astype(np.float32)
        self._cur_n[rows] += 1

    def _trim(self, sessions: deque[tuple[int, NDArray[np.float32]]]) -> None:
        """Drop sessions no future fit can use: the model of a week reads the ``anomaly_fit_sessions``
        sessions before its first session, and every later week starts after the newest one."""
        newest_week = _week(_day(sessions[-1][0]))
        first = next(k for k, (d, _) in enumerate(sessions) if _week(_day(d)) == newest_week)
        for _ in range(max(first - self.config.anomaly_fit_sessions, 0)):
            sessions.popleft()

    # -- the minute --------------------------------------------------------------------------------

    def step(self, batch: MinuteBatch, timeframe: Timeframe = Timeframe.M1) -> pd.DataFrame:
        """Flags (:data:`FLAG_COLUMNS`) of one new bar per instrument of ``batch``, sorted by instrument,
        time and check; a bar not after its instrument's last checked bar is skipped."""
        if len(np.unique(batch.tokens)) != len(batch.tokens):
            raise ValueError("a minute batch holds one bar per instrument")
        rows_all = np.fromiter(
            (self._row(int(t)) for t in batch.tokens), dtype=np.int64, count=len(batch.tokens)
        )
        fresh = batch.times_ns > self._last_ns[rows_all]
        if not fresh.all():
            batch = MinuteBatch(*(getattr(batch, f.name)[fresh] for f in fields(MinuteBatch)))
            rows_all = rows_all[fresh]
        if not len(rows_all):
            return pd.DataFrame(columns=FLAG_COLUMNS)
        rows = rows_all
        times = pd.Series(pd.DatetimeIndex(batch.times_ns.astype("datetime64[ns]")).tz_localize("UTC"))
        days = ist_days(times).astype(np.int64)
        prev = self._prev[:, rows]
        has_prev = self._prev_day[rows] != _NO_DAY
        new_session = ~has_prev | (days != self._prev_day[rows])
        series, body = bar_series(batch.o, batch.h, batch.low, batch.c, batch.v, prev[3], new_session)
        w = self.config.window
        order = (self._pos[rows][:, None] + np.arange(w)) % w  # oldest first, as the batch's windows
        pasts = [self._ring[k][rows[:, None], order] for k in range(len(SERIES))]
        x, stats = window_statistics(series, pasts, body, self.config)
        bars = BarArrays(
            batch.o, batch.h, batch.low, batch.c, batch.v, prev, has_prev, has_prev & new_session
        )
        distinct, which = np.unique(days, return_inverse=True)
        day_objects = np.array([_day(int(d)) for d in distinct], dtype=object)[which]
        in_hours = (
            None
            if timeframe is Timeframe.D1
            else in_market_hours(times, day_objects, timeframe, self.calendar)
        )
        anomaly = self._anomaly(batch.tokens, day_objects, x, rows, days) if self.config.anomaly else None
        fired = fired_checks(bars, stats, self.config, in_hours, anomaly)
        # Advance the state: this bar becomes the newest of each window and the previous bar.
        self._ring[:, rows, self._pos[rows]] = series
        self._pos[rows] = (self._pos[rows] + 1) % w
        self._prev[:, rows] = np.vstack((batch.o, batch.h, batch.low, batch.c, batch.v))
        self._prev_day[rows] = days
        self._last_ns[rows] = batch.times_ns
        flags = flag_rows(batch.tokens, times, fired, timeframe)
        return flags.sort_values(["instrument_token", "time", "check"], kind="stable").reset_index(drop=True)

    def _anomaly(
        self,
        tokens: NDArray[np.int64],
        day_objects: NDArray[np.object_],
        x: FloatArray,
        rows: NDArray[np.int64],
        days: NDArray[np.int64],
    ) -> FloatArray:
        # The bar's own inputs join its session only after its model is chosen: a week's model is fitted
        # on earlier sessions, and a model fitted at this bar must see the history the batch fit saw.
        keys = [self._model_key(int(t), d) for t, d in zip(tokens, day_objects, strict=True)]
        scores = np.full(len(x), np.nan)
        scored = np.array([k is not None for k in keys], dtype=bool)
        if scored.any():
            scores[scored] = -self.models.score(x[scored], [k for k in keys if k is not None])
        self._record(rows, days, x)
        return scores
