"""The live side of the data-quality checks: flag each closed 1m bar as the batch run would.

:class:`LiveCandleChecker` checks the bars of a closed minute for all instruments in one vectorized
step (``core.candle_flags_minute.MinuteChecks``: trailing windows as arrays across instruments, the
anomaly models compiled and scored in one pass), seeded from the stored history at start. Each bar gets
the flags the historical step's ``flag_candles`` gives it over the whole history, row for row. The
weekly anomaly models are fitted by :meth:`LiveCandleChecker.prepare` before the session, off the hot
path.

:func:`checked_candle_sink` wraps the writer's ``candles`` sink: the flags of the 1m bars in a batch are
written to ``candle_flags`` before the candles themselves. The writer may retry a batch; a bar the
checker has already seen is not flagged (or counted) twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from tickwise.core.candle_flags import FLAG_COLUMNS, CandleCheckConfig, with_actions
from tickwise.core.candle_flags_minute import FitMany, MinuteBatch, MinuteChecks
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import NullHooks
from tickwise.ports.candle_flags import CandleFlagRepository
from tickwise.ports.hooks import PipelineHooks

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class LiveCandleChecker:
    """The live candle checks: :meth:`check_minute` flags closed 1m bars, a minute at a time."""

    def __init__(
        self,
        config: CandleCheckConfig,
        calendar: SessionCalendar = NSE,
        hooks: PipelineHooks | None = None,
        fit_many: FitMany | None = None,
    ) -> None:
        self.config = config
        self.calendar = calendar
        self.hooks: PipelineHooks = hooks if hooks is not None else NullHooks()
        self.state = MinuteChecks(config, calendar)
        # Where prepare() fits the week's anomaly models (None: in this process); see MinuteChecks.prepare.
        self.fit_many = fit_many

    def seed(self, instrument_token: int, history: pd.DataFrame) -> None:
        """Load the instrument's stored 1m candles (columns ``time, open, ..., volume``)."""
        self.state.seed(instrument_token, history)

    def prepare(self, day: date) -> int:
        """Fit the anomaly models of ``day``'s week for every seeded instrument (call before the session;
        a week nobody prepared is fitted at its first bar instead). Returns how many have a model."""
        return self.state.prepare(day, self.fit_many)

    def check(self, bar: Bar) -> pd.DataFrame:
        """Flags of one closed 1m bar with their actions; empty for a bar already checked."""
        return self.check_minute([bar])

    def check_minute(self, bars: Sequence[Bar]) -> pd.DataFrame:
        """Flags (with actions) of closed 1m bars, any number per instrument: checked minute by minute in
        time order, each minute's bars in one step; bars not after their instrument's last checked bar
        are skipped."""
        minute = [b for b in bars if b.candle.timeframe is Timeframe.M1]
        if not minute:
            return pd.DataFrame(columns=[*FLAG_COLUMNS, "action"])
        candles = [b.candle for b in minute]
        # Exact integer nanoseconds without pandas parsing a list of datetimes (microsecond resolution).
        times = np.fromiter(
            ((c.time - _EPOCH) // _MICROSECOND * 1000 for c in candles), dtype=np.int64, count=len(candles)
        )
        tokens = np.fromiter((c.instrument_token for c in candles), dtype=np.int64, count=len(candles))
        values = np.array(
            [(c.open, c.high, c.low, c.close, float(c.volume)) for c in candles], dtype=np.float64
        )
        order = np.lexsort((tokens, times))
        parts = []
        for at in np.unique(times):
            idx = order[times[order] == at]
            # One bar per instrument and minute: a repeated bar (a retried batch) keeps its first copy.
            _, first = np.unique(tokens[idx], return_index=True)
            idx = idx[np.sort(first)]
            batch = MinuteBatch(tokens[idx], times[idx], *(values[idx, k] for k in range(5)))
            flags = self.state.step(batch)
            if len(flags):
                parts.append(flags)
        flags = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FLAG_COLUMNS)
        flags = with_actions(flags, self.config)
        if len(flags):
            for (check, action), n in flags.groupby(["check", "action"]).size().items():
                self.hooks.on_candles_flagged(str(check), str(action), int(n))
        return flags


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
        # Off the event loop: a minute of 1,000 instruments is a few milliseconds, but a week's first bar
        # without a prepared model waits for its fit.
        checked = await asyncio.to_thread(checker.check_minute, minute)
        if len(checked):
            pending.append(checked)
        if pending:
            await flags.add_frame(pd.concat(pending, ignore_index=True))
            pending.clear()
        return await inner(rows)

    return write
