"""The public consumer step: ticks in, bars to the engine or held behind a pending repair window."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from live_fakes import SilentFeed

from tickwise.core.candles import CandleBuilder
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.tick_validator import TickValidator
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE
from tickwise.domain.signal import Signal
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST
from tickwise.observability.hooks import NullHooks
from tickwise.pipelines.live.consumer import TickConsumer
from tickwise.pipelines.live.engine import LiveEngine
from tickwise.pipelines.live.feed_watch import FeedWatch
from tickwise.pipelines.live.repair import RepairQueue

DAY = date(2025, 1, 6)
TOKEN = 408065


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hh, mm, ss, tzinfo=IST)


class StepClock:
    """Market time the test sets; real monotonic time."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return time.monotonic()


def tick(price: float, ts: datetime, volume: int, mode: str = "full") -> Tick:
    return Tick(
        instrument_token=TOKEN,
        mode=mode,
        tradable=True,
        last_price=price,
        volume_traded=volume,
        exchange_timestamp=ts,
    )


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


def consumer() -> tuple[TickConsumer, RepairQueue, StepClock, dict[str, list[object]]]:
    out: dict[str, list[object]] = {}

    def no_signal(token: int, t: datetime, row: np.ndarray) -> Signal | None:
        return None

    engine = LiveEngine(
        FeatureCalculator(), no_signal, lambda table, rows: out.setdefault(table, []).extend(rows)
    )
    engine.open_instrument(TOKEN, history())
    repairs = RepairQueue(NSE)
    clock = StepClock(at(9, 15))
    c = TickConsumer(
        engine=engine,
        validator=TickValidator(NSE, 0.03, session_day=DAY),
        builder=CandleBuilder(calendar=NSE, grace_s=2.0),
        repairs=repairs,
        watch=FeedWatch(silence_s=1.5, started=time.monotonic()),
        put=lambda table, rows: out.setdefault(table, []).extend(rows),
        clock=clock,
        until=at(15, 30),
        hooks=NullHooks(),
    )
    return c, repairs, clock, out


def one_m_bars(out: dict[str, list[object]]) -> list[Bar]:
    return [b for b in out.get("candles", []) if isinstance(b, Bar) and b.candle.timeframe.minutes == 1]


def test_a_minute_closed_by_the_next_minutes_tick_goes_to_the_engine_and_its_ticks_to_the_writer() -> None:
    c, _, clock, out = consumer()
    clock.current = at(9, 16, 1)
    c.consume_batch(
        [tick(100.0, at(9, 15, 1), 10), tick(100.5, at(9, 15, 40), 30), tick(100.2, at(9, 16), 35)]
    )
    bars = one_m_bars(out)
    assert [(b.time, b.open, b.high, b.close, b.volume) for b in bars] == [
        (at(9, 15), 100.0, 100.5, 100.5, 30)
    ]
    assert len(out["ticks"]) == 3 and c.ticks_accepted == 3 and c.engine.bars == 1


def test_a_bar_closed_while_a_repair_window_is_pending_waits_behind_it() -> None:
    c, repairs, clock, out = consumer()
    repairs.mark(at(9, 15), at(9, 15), "test")
    clock.current = at(9, 16, 1)
    c.consume_batch([tick(100.0, at(9, 15, 1), 10), tick(100.2, at(9, 16), 35)])
    assert one_m_bars(out) == [] and c.engine.bars == 0
    assert [h.bar.time for h in repairs.held[TOKEN]] == [at(9, 15)]


def test_lower_mode_packets_between_subscribe_and_full_mode_are_skipped_not_rejected() -> None:
    c, _, _, _ = consumer()
    c.consume_batch([tick(100.0, at(9, 15, 1), 10, mode="quote"), tick(100.0, at(9, 15, 2), 10)])
    assert c.mode_transition_ticks == 1 and c.ticks == 1 and c.ticks_accepted == 1
    assert sum(c.validator.rejections.values()) == 0


def test_bars_still_forming_close_on_the_clock_after_the_grace() -> None:
    c, _, _, out = consumer()
    c.consume_batch([tick(100.0, at(9, 15, 1), 10)])
    c.close_due(at(9, 16, 1))
    assert one_m_bars(out) == []
    c.close_due(at(9, 16, 2))
    assert [b.time for b in one_m_bars(out)] == [at(9, 15)]
    assert c.tick_ages(time.time() + 5.0)[TOKEN] >= 5.0


def test_a_damaged_frame_seen_by_a_lagging_consumer_is_repaired_from_where_the_last_batch_ended() -> None:
    c, repairs, clock, _ = consumer()
    feed = SilentFeed()
    c.watch.attach(feed)
    clock.current = at(9, 15, 5)
    c.consume_batch([tick(100.0, at(9, 15, 1), 10)])
    assert repairs.windows == ()
    # The consumer fell three minutes behind the market; meanwhile a frame arrived damaged.
    feed.stats.handler_errors += 1
    clock.current = at(9, 18, 30)
    c.consume_batch([tick(100.1, at(9, 15, 20), 12)])
    assert repairs.windows == ((at(9, 15), at(9, 18)),)
