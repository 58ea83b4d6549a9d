"""The consumer hands a feed close to the engine as columns: no Bar object is built before the
minute's signals are queued, and the rest of the minute (the Bar objects included) runs on settle."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from live_models import minute_consumer
from test_feed_close import DAY, StepClock, Wall, at, history, tick

from tickwise.core.candles import ClosedBars
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.bar import Bar
from tickwise.domain.signal import Signal
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.engine import LiveEngine

TOKENS = (11, 12, 13)


class _Watching(LiveEngine):
    """Notes, as each ``process_many`` returns, what it was given and whether Bars were built."""

    seen: list[tuple[str, bool | None, int]]

    def process_many(
        self, bars: Sequence[Bar], closed_at: float | None = None, *, defer: bool = False
    ) -> list[Signal | None]:
        out = super().process_many(bars, closed_at, defer=defer)
        built = bars.materialized if isinstance(bars, ClosedBars) else None
        self.seen.append((type(bars).__name__, built, self.signals))
        return out


def _signal(token: int, t: datetime, row: object) -> Signal:
    return Signal(token, Timeframe.M1, t, t + Timeframe.M1.delta, "m", 0, 0.5, "live", "fs")


async def _nothing() -> None:
    return None


def test_a_feed_close_reaches_the_engine_as_columns_and_its_bars_are_built_after_the_signals() -> None:
    rows: dict[str, list[object]] = {}
    engine = _Watching(FeatureCalculator(), _signal, lambda table, r: rows.setdefault(table, []).extend(r))
    engine.seen = []
    for token in TOKENS:
        engine.open_instrument(token, history())
    clock, wall = StepClock(at(9, 15, 30)), Wall()
    c = minute_consumer(
        engine,
        clock,
        DAY,
        at(15, 30),
        wall=wall,
        feed_close_margin_s=0.0,
        after_signals=_nothing,  # the engine defers the rest of each minute, as in a session
    )
    c.consume_batch([tick(t, 100.6, at(9, 15, 10 + t), 5) for t in TOKENS])
    clock.current = at(9, 16, 1)
    c.consume_batch([tick(TOKENS[0], 100.7, at(9, 16), 9)])  # its own bar closes; the feed moves on
    # The first instrument's bar closed on its tick (a list); the others at the feed close (columns),
    # signalled with no Bar object built.
    assert engine.seen == [("list", None, 1), ("ClosedBars", False, 3)]
    assert [r.signal.instrument_token for r in rows["signals"]] == list(TOKENS)  # type: ignore[attr-defined]
    assert "candles" not in rows or len(rows["candles"]) == 1  # the feed close's candles wait
    asyncio.run(c.settle())
    assert engine.bars == 3
    assert [b.instrument_token for b in rows["candles"] if isinstance(b, Bar)] == list(TOKENS)
    assert [b.instrument_token for b in engine.session_bars(TOKENS[2])] == [TOKENS[2]]
