"""The live side of the data-quality checks: flag each closed 1m bar as the batch run would.

:class:`LiveCandleChecker` keeps, per instrument, a buffer of the recent 1m bars (seeded from the stored
history at start) and flags each new bar with ``core.candle_flags.flag_candles`` on the trailing
``history_bars`` (the robust checks look no further back) plus the anomaly model of the bar's ISO
week, fitted once per week on the buffered sessions before it. Both are the functions the historical
step runs over the whole history, so a bar gets the same flags in both modes.

:func:`checked_candle_sink` wraps the writer's ``candles`` sink: the flags of the 1m bars in a batch are
written to ``candle_flags`` before the candles themselves. The writer may retry a batch; a bar the
checker has already seen is not flagged (or counted) twice.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import date, datetime

import pandas as pd
from sklearn.ensemble import IsolationForest

from tickwise.core.candle_flags import (
    FLAG_COLUMNS,
    CandleCheckConfig,
    anomaly_inputs,
    fit_week_model,
    flag_candles,
    with_actions,
)
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import NullHooks
from tickwise.ports.candle_flags import CandleFlagRepository
from tickwise.ports.hooks import PipelineHooks

_COLUMNS = ("time", "open", "high", "low", "close", "volume")
# Sessions kept beyond the fit window: the current week (up to 5) and one for the fit rows' warm-up.
_EXTRA_SESSIONS = 6


class LiveCandleChecker:
    """Per-instrument buffers and weekly anomaly models; :meth:`check` flags one closed 1m bar."""

    def __init__(
        self,
        config: CandleCheckConfig,
        calendar: SessionCalendar = NSE,
        hooks: PipelineHooks | None = None,
    ) -> None:
        self.config = config
        self.calendar = calendar
        self.hooks: PipelineHooks = hooks if hooks is not None else NullHooks()
        self._robust = replace(config, anomaly=False)
        self._bars: dict[int, deque[tuple[datetime, float, float, float, float, float]]] = {}
        self._models: dict[tuple[int, tuple[int, int]], IsolationForest | None] = {}
        self._max_bars = (config.anomaly_fit_sessions + _EXTRA_SESSIONS) * 400

    def seed(self, instrument_token: int, history: pd.DataFrame) -> None:
        """Fill the instrument's buffer from its stored 1m candles (columns ``time, open, ..., volume``)."""
        buffer = self._buffer(instrument_token)
        tail = history.sort_values("time", kind="stable").tail(self._max_bars)
        for row in tail.loc[:, list(_COLUMNS)].itertuples(index=False):
            buffer.append((pd.Timestamp(row[0]).to_pydatetime(), *map(float, row[1:])))

    def _buffer(self, token: int) -> deque[tuple[datetime, float, float, float, float, float]]:
        if token not in self._bars:
            self._bars[token] = deque(maxlen=self._max_bars)
        return self._bars[token]

    def check(self, bar: Bar) -> pd.DataFrame:
        """Flags of ``bar`` (a closed 1m bar) with their actions; empty for a bar already checked."""
        c = bar.candle
        buffer = self._buffer(c.instrument_token)
        if buffer and c.time <= buffer[-1][0]:
            return pd.DataFrame(columns=[*FLAG_COLUMNS, "action"])
        buffer.append((c.time, c.open, c.high, c.low, c.close, float(c.volume)))
        tail = self._frame(list(buffer)[-(self.config.history_bars + 1) :])
        flags = flag_candles(tail, self._robust, self.calendar, instrument_token=c.instrument_token)
        flags = flags[flags["time"] == pd.Timestamp(c.time).tz_convert("UTC")]
        if self.config.anomaly:
            score = self._anomaly(c.instrument_token, c.time, tail)
            if score is not None and score > self.config.anomaly_threshold:
                extra = pd.DataFrame(
                    [
                        [
                            c.instrument_token,
                            Timeframe.M1.value,
                            flags_time(c.time),
                            "anomaly",
                            round(score, 6),
                        ]
                    ],
                    columns=FLAG_COLUMNS,
                )
                flags = pd.concat([flags, extra], ignore_index=True) if len(flags) else extra
        flags = with_actions(flags.reset_index(drop=True), self.config)
        if len(flags):
            for (check, action), n in flags.groupby(["check", "action"]).size().items():
                self.hooks.on_candles_flagged(str(check), str(action), int(n))
        return flags

    def _anomaly(self, token: int, at: datetime, tail: pd.DataFrame) -> float | None:
        day: date = at.astimezone(IST).date()
        iso = day.isocalendar()
        key = (token, (iso.year, iso.week))
        if key not in self._models:
            x, days = anomaly_inputs(self._frame(list(self._buffer(token))), self.config)
            self._models[key] = fit_week_model(x, days, day, self.config)
        model = self._models[key]
        if model is None:
            return None
        x_tail, _ = anomaly_inputs(tail, self.config)
        return float(-model.score_samples(x_tail[-1:])[0])

    @staticmethod
    def _frame(rows: Sequence[tuple[datetime, float, float, float, float, float]]) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=list(_COLUMNS))
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        return frame


def flags_time(at: datetime) -> pd.Timestamp:
    return pd.Timestamp(at).tz_convert("UTC")


def checked_candle_sink(
    inner: Callable[[list[Bar]], Awaitable[int]],
    checker: LiveCandleChecker,
    flags: CandleFlagRepository,
) -> Callable[[list[Bar]], Awaitable[int]]:
    """The ``candles`` sink with the 1m bars' flags written to ``candle_flags`` first (flags are kept
    until they are stored, so a failed write is retried with the writer's next attempt)."""

    # Flags of bars already checked wait here until stored: a retried batch is not checked again.
    pending: list[pd.DataFrame] = []

    async def write(rows: list[Bar]) -> int:
        minute = sorted(
            (b for b in rows if b.candle.timeframe is Timeframe.M1),
            key=lambda b: (b.instrument_token, b.time),
        )
        # Off the event loop: tens of milliseconds per bar must not delay the feed or the other sinks.
        checked = await asyncio.to_thread(lambda: [checker.check(b) for b in minute])
        pending.extend(f for f in checked if len(f))
        if pending:
            await flags.add_frame(pd.concat(pending, ignore_index=True))
            pending.clear()
        return await inner(rows)

    return write
