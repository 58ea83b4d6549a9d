"""Closing a minute as early as the feed allows: once ticks stamped in a later minute arrive, plus an
in-flight margin; late ticks it causes are counted and repaired."""

from __future__ import annotations

import math
import time
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tickwise.core.candles import CandleBuilder
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.tick_validator import TickValidator
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE
from tickwise.domain.signal import Signal
from tickwise.domain.tick import Depth, DepthLevel, Tick
from tickwise.domain.time import IST
from tickwise.observability.hooks import RecordingHooks
from tickwise.pipelines.live.consumer import TickConsumer
from tickwise.pipelines.live.engine import LiveEngine
from tickwise.pipelines.live.feed_watch import FeedWatch
from tickwise.pipelines.live.repair import RepairQueue

DAY = date(2025, 1, 6)
LIQUID, ILLIQUID = 408065, 738561


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hh, mm, ss, tzinfo=IST)


def tick(token: int, price: float, ts: datetime, volume: int, depth: Depth | None = None) -> Tick:
    return Tick(token, "full", True, price, volume_traded=volume, exchange_timestamp=ts, depth=depth)


class StepClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return time.monotonic()


class Wall:
    """Real seconds the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def history() -> pd.DataFrame:
    n = 60
    times = pd.DatetimeIndex([at(9, 15) - timedelta(days=3) + i * timedelta(minutes=1) for i in range(n)])
    close = 100.0 + np.arange(n) * 0.01
    return pd.DataFrame(
        {
            "time": times.tz_convert("UTC"),
            "open": close,
            "high": close + 0.1,
            "low": close - 0.1,
            "close": close,
            "volume": np.full(n, 1000.0),
            "oi": None,
            "obi_5": np.nan,
        }
    )


def make(margin: float | None) -> tuple[TickConsumer, RepairQueue, StepClock, Wall, RecordingHooks]:
    out: dict[str, list[object]] = {}

    def no_signal(token: int, t: datetime, row: np.ndarray) -> Signal | None:
        return None

    engine = LiveEngine(FeatureCalculator(), no_signal, lambda table, rows: None)
    for token in (LIQUID, ILLIQUID):
        engine.open_instrument(token, history())
    repairs, clock, wall, hooks = RepairQueue(NSE), StepClock(at(9, 15)), Wall(), RecordingHooks()
    c = TickConsumer(
        engine=engine,
        validator=TickValidator(NSE, 0.03, session_day=DAY),
        builder=CandleBuilder(calendar=NSE, grace_s=2.0),
        repairs=repairs,
        watch=FeedWatch(silence_s=1.5, started=time.monotonic()),
        put=lambda table, rows: out.setdefault(table, []).extend(rows),
        clock=clock,
        until=at(15, 30),
        hooks=hooks,
        wall=wall,
        feed_close_margin_s=margin,
    )
    return c, repairs, clock, wall, hooks


def test_a_quiet_instruments_minute_closes_once_the_feed_moved_on_and_the_margin_passed() -> None:
    c, _, clock, wall, _ = make(margin=0.3)
    clock.current = at(9, 15, 30)
    c.consume_batch([tick(ILLIQUID, 50.0, at(9, 15, 10), 5), tick(LIQUID, 100.0, at(9, 15, 20), 10)])
    clock.current = at(9, 16)
    c.consume_batch([tick(LIQUID, 100.1, at(9, 16), 12)])  # the feed reached 09:16
    assert c.engine.bars == 1  # only the liquid one, closed by its own tick
    wall.t += 0.2
    c.close_due(clock.current)
    assert c.engine.bars == 1  # still inside the in-flight margin
    wall.t += 0.1
    c.close_due(clock.current)
    assert c.engine.bars == 2  # the quiet instrument's 09:15 bar, long before the 2 s grace


def test_without_a_margin_configured_only_the_clock_grace_closes_a_quiet_instrument() -> None:
    c, _, _, wall, _ = make(margin=None)
    c.consume_batch([tick(ILLIQUID, 50.0, at(9, 15, 10), 5), tick(LIQUID, 100.0, at(9, 15, 20), 10)])
    c.consume_batch([tick(LIQUID, 100.1, at(9, 16), 12)])
    wall.t += 60
    c.close_due(at(9, 16, 1))
    assert c.engine.bars == 1
    c.close_due(at(9, 16, 2))
    assert c.engine.bars == 2


def test_a_tick_arriving_after_the_feed_closed_its_minute_is_counted_and_its_minute_repaired() -> None:
    c, repairs, clock, _, hooks = make(margin=0.0)
    clock.current = at(9, 16, 1)
    c.consume_batch([tick(ILLIQUID, 50.0, at(9, 15, 10), 5), tick(LIQUID, 100.0, at(9, 15, 20), 10)])
    c.consume_batch([tick(LIQUID, 100.1, at(9, 16), 12)])
    assert c.engine.bars == 2
    c.consume_batch([tick(ILLIQUID, 50.1, at(9, 15, 59), 7)])  # was in flight
    assert c.late_after_feed_close == 1 and c.builder.late_after_feed_close == 1
    assert ("late_after_feed_close",) in hooks.of("on_tick_rejected")
    assert repairs.windows and repairs.windows[0][0] <= at(9, 15)


def test_a_tick_stamped_far_ahead_of_the_market_clock_does_not_close_everyones_minute() -> None:
    c, _, clock, _, _ = make(margin=0.0)
    clock.current = at(9, 15, 30)
    c.consume_batch([tick(ILLIQUID, 50.0, at(9, 15, 10), 5), tick(LIQUID, 100.0, at(9, 15, 20), 10)])
    c.consume_batch([tick(LIQUID, 100.0, at(9, 20), 11)])
    assert c.engine.bars == 1  # LIQUID's own bar only; ILLIQUID's 09:15 stays open


def test_a_negative_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="feed_close_margin_s"):
        make(margin=-1.0)


def book(bid: int, ask: int) -> Depth:
    return Depth((DepthLevel(bid, 99.0, 1),), (DepthLevel(ask, 101.0, 1),))


def test_builder_close_through_closes_only_bars_that_end_by_the_boundary() -> None:
    b = CandleBuilder(calendar=NSE)
    b.on_tick(tick(LIQUID, 100.0, at(9, 15, 5), 1))
    b.on_tick(tick(ILLIQUID, 50.0, at(9, 16, 5), 1))
    closed = b.close_through(at(9, 16))
    assert [(x.instrument_token, x.time) for x in closed] == [(LIQUID, at(9, 15))]
    assert b.open_bar_time(ILLIQUID) == at(9, 16)


def test_obi_at_close_is_the_newest_book_that_has_one() -> None:
    b = CandleBuilder(calendar=NSE)
    b.on_tick(tick(LIQUID, 100.0, at(9, 15, 1), 1, book(3, 1)))
    b.on_tick(tick(LIQUID, 100.0, at(9, 15, 2), 2, book(0, 0)))  # empty book: NaN, keeps the previous
    (bar,) = b.close_through(at(9, 16))
    assert bar.obi_5 == 0.5
    b.on_tick(tick(LIQUID, 100.0, at(9, 16, 1), 3))
    assert math.isnan(b.flush()[0].obi_5)


def test_bars_from_close_through_equal_bars_from_the_next_tick() -> None:
    ticks = [tick(LIQUID, 100.0 + i * 0.05, at(9, 15, i), 10 * i, book(i + 1, 2)) for i in range(1, 50)]
    early, late = CandleBuilder(calendar=NSE), CandleBuilder(calendar=NSE)
    for t in ticks:
        early.on_tick(t)
        late.on_tick(t)
    by_feed: list[Bar] = early.close_through(at(9, 16))
    by_tick = late.on_tick(tick(LIQUID, 101.0, at(9, 16, 1), 600))
    assert by_feed == by_tick


Outcome = tuple[list[tuple[Bar, ...]], list[tuple[Any, ...]], dict[int, list[Bar]]]


def _closed_through_each_path(bars: list[Bar], *, window: bool) -> Outcome:
    """What a close leaves behind when its bars go through ``on_closed_many`` vs ``on_closed`` each."""
    outcomes: list[Outcome] = []
    for many in (True, False):
        c, repairs, clock, wall, hooks = make(0.3)
        clock.current = at(9, 18, 30)
        if window:
            repairs.mark(at(9, 16), at(9, 16), "test")
        if many:
            c.on_closed_many(bars, wall())
        else:
            for bar in bars:
                c.on_closed(bar, wall())
        c._process_closed(wall())
        held = {k: [h.bar for h in v] for k, v in repairs.held.items()}
        outcomes.append(
            (
                [c.engine.session_bars(t) for t in (LIQUID, ILLIQUID)],
                hooks.of("on_candle_closed"),
                held,
            )
        )
    # repr, not ==: the engine's session bars are rebuilt from columns, and a bar without a book (obi_5
    # NaN) never equals another; float reprs are exact, so equal reprs are equal fields.
    assert repr(outcomes[0]) == repr(outcomes[1])
    return outcomes[0]


def _bar(token: int, minute: int, price: float) -> Bar:
    b = CandleBuilder(calendar=NSE, grace_s=2.0)
    b.on_tick(tick(token, price, at(9, minute, 5), 10))
    (bar,) = b.close_through(at(9, minute + 1))
    return bar


def test_a_minutes_bars_closed_together_reach_the_engine_as_if_closed_one_by_one() -> None:
    bars = [_bar(LIQUID, 16, 100.5), _bar(ILLIQUID, 16, 100.6)]
    processed, lags, held = _closed_through_each_path(bars, window=False)
    assert [len(s) for s in processed] == [1, 1]
    assert lags == [("1m", 90.0), ("1m", 90.0)]
    assert held == {}


def test_bars_of_several_minutes_closed_together_reach_the_engine_as_if_closed_one_by_one() -> None:
    bars = [_bar(LIQUID, 16, 100.5), _bar(ILLIQUID, 17, 100.6)]
    processed, lags, _ = _closed_through_each_path(bars, window=False)
    assert [len(s) for s in processed] == [1, 1]
    assert lags == [("1m", 90.0), ("1m", 30.0)]


def test_a_minutes_bars_behind_a_repair_window_are_all_held_as_if_closed_one_by_one() -> None:
    bars = [_bar(LIQUID, 16, 100.5), _bar(ILLIQUID, 16, 100.6)]
    processed, _, held = _closed_through_each_path(bars, window=True)
    assert [len(s) for s in processed] == [0, 0]
    assert sorted(held) == [LIQUID, ILLIQUID]
