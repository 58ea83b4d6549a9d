"""PaperTrader: live signals and ticks -> the trade engine, without ever holding up the live path."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

import numpy as np
import pytest

from fakes import InMemoryPaperRepository
from tickwise.core.trading import EngineConfig, PriceEvent, Slippage, TradeEngine, barrier_signal
from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.signal import Signal
from tickwise.domain.tick import Depth, DepthLevel, Tick
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.engine import FeatureRow, PendingSignal
from tickwise.pipelines.live.paper import PaperBarriers, PaperTrader, tick_event

DAY = date(2026, 12, 3)
T0 = datetime.combine(DAY, time(10, 0), tzinfo=IST)  # the signal bar
MIN = timedelta(minutes=1)
TOKEN = 408065
NAMES = ("rsi_14", "atr_14")
BARRIERS = PaperBarriers(k_pt=2.0, k_sl=1.5, horizon=10, atr_column="atr_14")


def config() -> EngineConfig:
    return EngineConfig(slippage=Slippage(bps=2.0, use_spread=True))


def make_trader(repo: InMemoryPaperRepository | None = None, **kw: object) -> PaperTrader:
    return PaperTrader(
        engine=TradeEngine(config()),
        repository=repo or InMemoryPaperRepository(),
        run_id="paper-test",
        feature_names=NAMES,
        barriers=BARRIERS,
        **kw,  # type: ignore[arg-type]
    )


class Rows:
    """The writer's ``put``: records what the live engine handed over."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, list[object]]] = []

    def __call__(self, table: str, rows: Sequence[object]) -> None:
        self.rows.append((table, list(rows)))


def bar_done(put: object, t: datetime, close: float, atr: float, direction: int | None = 1) -> None:
    """What LiveEngine.process puts for one bar: candle, feature row, then (if any) the signal."""
    assert callable(put)
    candle = Candle(TOKEN, Timeframe.M1, t, close, close + 0.1, close - 0.1, close, 100, source="live")
    put("candles", [Bar(candle)])
    put("features", [FeatureRow(TOKEN, t, np.array([55.0, atr]))])
    if direction is not None:
        signal = Signal(TOKEN, Timeframe.M1, t, t + MIN, "m-1", direction, 0.7, "live", "fs", size=0.1)
        put("signals", [PendingSignal(signal, 0.0)])


def tick(t: datetime, price: float) -> Tick:
    depth = Depth(
        buy=(DepthLevel(10, round(price - 0.05, 2), 1),), sell=(DepthLevel(10, round(price + 0.05, 2), 1),)
    )
    return Tick(TOKEN, "full", True, price, exchange_timestamp=t, depth=depth)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_signal_enters_at_the_tick_that_closes_its_bar_and_trades_as_the_engine_would() -> None:
    repo = InMemoryPaperRepository()
    trader = make_trader(repo)
    writer = Rows()
    put = trader.tap(writer)
    trader.start()
    ticks = [tick(T0 + MIN, 100.2), tick(T0 + MIN + timedelta(seconds=20), 101.0)]
    ticks.append(tick(T0 + 2 * MIN + timedelta(seconds=30), 102.6))  # through the target (100 + 2 x 1)
    bar_done(put, T0, close=100.0, atr=1.0)
    trader.observe_ticks(ticks)
    await settle()
    summary = await trader.close()

    # The same signal and ticks fed straight to an engine (what a backtest on these ticks does).
    engine = TradeEngine(config())
    engine.on_signal(
        barrier_signal(
            instrument_token=TOKEN,
            time=T0,
            available_at=T0 + MIN,
            direction=1,
            confidence=0.7,
            size=0.1,
            model_version="m-1",
            reference_close=100.0,
            atr=1.0,
            k_pt=2.0,
            k_sl=1.5,
            horizon_bars=10,
        )
    )
    for t in ticks:
        event = tick_event(t)
        assert event is not None
        engine.on_price(event)
    engine.finish()

    assert [(t.entry_time, t.exit_reason, t.net) for t in trader.engine.trades] == [
        (T0 + MIN, "pt", engine.trades[0].net)
    ]
    assert trader.engine.trades == engine.trades
    assert summary.trades == 1 and summary.net_pnl == str(engine.trades[0].net)
    assert summary.metrics["hit_rate"] == 1.0 and summary.metrics["exit_reasons"]["pt"] == 1
    assert engine.trades[0].slippage > 0  # half the spread, from the ticks' depth
    stored = await repo.trades("paper-test")
    assert stored["net"].tolist() == [engine.trades[0].net]
    positions = await repo.positions("paper-test")
    assert positions["entry_time"].tolist() == [T0 + MIN]
    # The live path's rows went on unchanged, in order.
    assert [table for table, _ in writer.rows] == ["candles", "features", "signals"]


async def test_ticks_wait_until_the_bar_before_their_minute_is_decided() -> None:
    trader = make_trader()
    put = trader.tap(Rows())
    trader.start()
    # The feed delivered 10:01's tick, but bar 10:00 is still held behind a repair window.
    trader.observe_ticks([tick(T0 + MIN, 100.2)])
    await settle()
    assert trader.summary.ticks == 0 and trader.engine.open_positions == 0
    bar_done(put, T0, close=100.0, atr=1.0)  # the repair released the bar: its signal comes now
    trader.observe_ticks([tick(T0 + MIN + timedelta(seconds=5), 100.3)])
    await settle()
    assert trader.summary.ticks == 2
    assert [(p.entry_time, p.entry_price) for p in trader.engine.positions()] == [(T0 + MIN, 100.2)]
    await trader.close()


async def test_a_tick_without_a_bar_before_it_is_released_after_the_hold() -> None:
    trader = make_trader(hold=timedelta(minutes=2))
    trader.start()
    trader.observe_ticks([tick(T0 + MIN, 100.2)])
    await settle()
    assert trader.summary.ticks == 0
    trader.observe_ticks([tick(T0 + 3 * MIN, 100.4)])
    await settle()
    assert trader.summary.ticks == 1 and trader.summary.released_undecided == 1
    await trader.close()
    assert trader.summary.ticks == 2


async def test_a_full_queue_drops_and_counts_instead_of_blocking_the_live_path() -> None:
    trader = make_trader(queue_size=2)
    writer = Rows()
    put = trader.tap(writer)
    for k in range(3):  # the trader's task is not running: nothing drains the queue
        trader.observe_ticks([tick(T0 + timedelta(seconds=k), 100.0)])
    bar_done(put, T0, close=100.0, atr=1.0)
    summary = await trader.close()
    assert summary.dropped == {"ticks": 1, "bar": 1, "signal": 1}
    assert len(writer.rows) == 3  # every row still reached the writer


async def test_a_failed_write_is_counted_and_retried_without_duplicates() -> None:
    repo = InMemoryPaperRepository()
    repo.fail_next = 1
    trader = make_trader(repo)
    put = trader.tap(Rows())
    trader.start()
    bar_done(put, T0, close=100.0, atr=1.0)
    trader.observe_ticks([tick(T0 + MIN, 100.2)])  # opens: the write of the position fails
    await settle()
    assert trader.summary.write_failures == 1
    trader.observe_ticks([tick(T0 + 2 * MIN, 98.0)])  # through the stop: position and trade written
    await settle()
    summary = await trader.close()
    assert summary.unwritten == 0
    assert len(await repo.positions("paper-test")) == 1
    trades = await repo.trades("paper-test")
    assert trades["exit_reason"].tolist() == ["sl"]


async def test_a_signal_replayed_after_a_rewind_is_traded_once() -> None:
    trader = make_trader()
    put = trader.tap(Rows())
    bar_done(put, T0, close=100.0, atr=1.0)
    bar_done(put, T0, close=100.0, atr=1.0)  # the repair rewound the instrument and replayed the bar
    bar_done(put, T0 + MIN, close=100.0, atr=1.0, direction=0)  # flat: nothing to trade
    summary = await trader.close()
    assert summary.signals == 1 and summary.duplicate_signals == 1


async def test_a_signal_without_its_bars_atr_is_skipped_and_counted() -> None:
    trader = make_trader()
    put = trader.tap(Rows())
    bar_done(put, T0, close=100.0, atr=float("nan"))  # ATR still warming up
    summary = await trader.close()
    assert summary.skipped == {"no_atr": 1}


async def test_a_row_the_trader_cannot_read_is_counted_and_still_written() -> None:
    trader = make_trader()
    writer = Rows()
    put = trader.tap(writer)
    put("features", [FeatureRow(TOKEN, T0, np.array([]))])  # no atr column in the row
    assert trader.summary.errors == 1
    assert writer.rows[0][0] == "features"
    await trader.close()


def test_a_tick_becomes_a_price_event_at_its_exchange_time_with_best_bid_and_ask() -> None:
    event = tick_event(tick(T0, 100.0))
    assert event == PriceEvent.tick(TOKEN, T0, 100.0, bid=99.95, ask=100.05)
    assert tick_event(Tick(TOKEN, "full", True, 100.0)) is None  # no instant at all


@pytest.mark.parametrize("column", ["atr_21", "missing"])
async def test_a_model_whose_atr_is_not_a_feature_skips_every_signal(column: str) -> None:
    trader = PaperTrader(
        engine=TradeEngine(config()),
        repository=InMemoryPaperRepository(),
        run_id="paper-test",
        feature_names=NAMES,
        barriers=PaperBarriers(atr_column=column),
    )
    bar_done(trader.tap(Rows()), T0, close=100.0, atr=1.0)
    summary = await trader.close()
    assert summary.skipped == {"no_atr": 1}


async def test_only_the_champions_signals_are_paper_traded() -> None:
    trader = make_trader(model_version="champion-1")
    put = trader.tap(Rows())
    bar_done(put, T0, close=100.0, atr=1.0)  # a challenger's signal ("m-1") of the same bar
    summary = await trader.close()
    assert summary.signals == 0 and summary.duplicate_signals == 0


async def test_an_instrument_waiting_for_its_bar_does_not_hold_up_the_others() -> None:
    trader = make_trader()
    trader.start()
    other = Tick(TOKEN + 1, "full", True, 50.0, exchange_timestamp=T0 + MIN + timedelta(seconds=1))
    trader.observe_ticks([tick(T0 + MIN, 100.2), other])  # bar 10:00 of TOKEN is not decided yet
    await settle()
    assert trader.summary.ticks == 0
    trader.tap(Rows())("features", [FeatureRow(TOKEN + 1, T0, np.array([55.0, 1.0]))])
    await settle()
    assert trader.summary.ticks == 1  # the other instrument's tick went; TOKEN's still waits
    summary = await trader.close()
    assert summary.ticks == 2 and summary.released_undecided == 0
