"""A bar re-scored after the paper trader acted on it: the reproduction of the paper/backtest parity flake.

Under load, late ticks (the feed-close rule) make a bar be repaired from REST after its signal was
taken; the repair rewinds the instrument and scores the bar again. ``signals`` is an upsert, so it ends
with the LAST version (here a meta size of 0.2 on a repaired close and ATR), while the paper engine
traded the FIRST (meta size 1.0). A backtest rebuilding the trade from the stored signal and the stored
(repaired) candle then sizes it differently: the flake's "17 shares in paper, 3 in the backtest".

The fix (docs/backtest.md, "Paper trading"): the version acted on is history. The trader records each
signal exactly as fed to its engine (``paper_signals``) and a ``--signals paper`` backtest replays
those records, so both trade the same signals by construction; the revision is counted, never traded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd

from fakes import InMemoryPaperRepository
from tickwise.core.trading import EngineConfig, PriceEvent, RiskLimits, Slippage, Trade, TradeEngine
from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.signal import Signal
from tickwise.domain.tick import Depth, DepthLevel, Tick
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.backtest.inputs import BarrierSpec, recorded_signals, trade_signals
from tickwise.pipelines.backtest.run import replay
from tickwise.pipelines.live.engine import FeatureRow, PendingSignal
from tickwise.pipelines.live.paper import PaperBarriers, PaperTrader, signal_frame, tick_event

DAY = date(2026, 12, 3)
T0 = datetime.combine(DAY, time(10, 0), tzinfo=IST)  # the signal bar
MIN = timedelta(minutes=1)
TOKEN = 408065
NAMES = ("rsi_14", "atr_14")
BARRIERS = PaperBarriers(k_pt=2.0, k_sl=1.5, horizon=10, atr_column="atr_14")
SPEC = BarrierSpec(k_pt=2.0, k_sl=1.5, horizon=10, atr_period=14)


def config() -> EngineConfig:
    # A 20 % position of Rs 10,000 at ~Rs 100 is ~20 shares: a meta size changes the quantity visibly.
    return EngineConfig(limits=RiskLimits(capital=10_000.0), slippage=Slippage(bps=2.0, use_spread=True))


def make_trader(repo: InMemoryPaperRepository) -> PaperTrader:
    return PaperTrader(
        engine=TradeEngine(config()),
        repository=repo,
        run_id="paper-revisions",
        feature_names=NAMES,
        barriers=BARRIERS,
    )


class Stored:
    """The writer's ``put``, keeping the ``signals`` table's upsert semantics (the last version wins)."""

    def __init__(self) -> None:
        self.signals: dict[tuple[int, datetime, str], Signal] = {}

    def __call__(self, table: str, rows: Sequence[object]) -> None:
        if table == "signals":
            for row in rows:
                assert isinstance(row, PendingSignal)
                s = row.signal
                self.signals[(s.instrument_token, s.time, s.model_version)] = s


def scored(put: object, t: datetime, *, close: float, atr: float, direction: int, meta: float | None) -> None:
    """What LiveEngine.process puts for one bar (the first time, or again when a rewind replays it)."""
    assert callable(put)
    candle = Candle(TOKEN, Timeframe.M1, t, close, close + 0.1, close - 0.1, close, 100, source="live")
    put("candles", [Bar(candle)])
    put("features", [FeatureRow(TOKEN, t, np.array([55.0, atr]))])
    signal = Signal(
        TOKEN, Timeframe.M1, t, t + MIN, "m-1", direction, 0.7, "live", "fs", size=0.2, meta_size=meta
    )
    put("signals", [PendingSignal(signal, 0.0)])


def tick(t: datetime, price: float) -> Tick:
    depth = Depth(
        buy=(DepthLevel(10, round(price - 0.05, 2), 1),), sell=(DepthLevel(10, round(price + 0.05, 2), 1),)
    )
    return Tick(TOKEN, "full", True, price, exchange_timestamp=t, depth=depth)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def events(ticks: Sequence[Tick]) -> list[PriceEvent]:
    out = [tick_event(t) for t in ticks]
    assert all(e is not None for e in out)
    return [e for e in out if e is not None]


def stored_signal_trades(
    stored: Stored, levels: dict[datetime, tuple[float, float]], ticks: Sequence[Tick]
) -> list[Trade]:
    """The old parity backtest: stored (upserted) signals, barriers rebuilt from the stored candles."""
    rows = [s for s in stored.signals.values() if s.direction != 0]  # what a backtest trades
    frame = pd.DataFrame(
        {
            "instrument_token": [s.instrument_token for s in rows],
            "time": [s.time for s in rows],
            "available_at": [s.available_at for s in rows],
            "direction": [s.direction for s in rows],
            "confidence": [s.confidence for s in rows],
            "size": [s.size for s in rows],
            "meta_size": [np.nan if s.meta_size is None else s.meta_size for s in rows],
            "model_version": [s.model_version for s in rows],
        }
    )
    level_frame = pd.DataFrame(
        {"close": [levels[s.time][0] for s in rows], "atr": [levels[s.time][1] for s in rows]}
    )
    made, _ = trade_signals(frame, level_frame, SPEC, MIN, 1)
    engine = TradeEngine(config())
    replay(engine, made, events(ticks))
    return engine.trades


async def run_session_with_a_revision() -> tuple[PaperTrader, InMemoryPaperRepository, Stored, list[Tick]]:
    repo = InMemoryPaperRepository()
    trader = make_trader(repo)
    stored = Stored()
    put = trader.tap(stored)
    trader.start()
    # 10:00 closes on the feed (the margin passed): scored with meta size 1.0; the 10:01 tick enters.
    scored(put, T0, close=100.0, atr=1.0, direction=1, meta=1.0)
    ticks = [tick(T0 + MIN, 100.2), tick(T0 + MIN + timedelta(seconds=20), 100.4)]
    trader.observe_ticks(ticks)
    await settle()
    assert trader.engine.open_positions == 1
    # A late 10:00 tick: the repair rewinds the instrument and scores 10:00 again on the REST bar, whose
    # close and ATR differ, and the meta model now says 0.2; then 10:01 (held behind the window) follows.
    scored(put, T0, close=100.3, atr=0.8, direction=1, meta=0.2)
    scored(put, T0 + MIN, close=100.4, atr=0.8, direction=0, meta=None)
    later = [tick(T0 + 2 * MIN + timedelta(seconds=5), 102.3)]  # through the taken target (102.0)
    trader.observe_ticks(later)
    await settle()
    await trader.close()
    return trader, repo, stored, ticks + later


async def test_a_bar_rescored_after_it_was_traded_makes_a_backtest_of_the_stored_signals_differ() -> None:
    trader, _, stored, ticks = await run_session_with_a_revision()

    # What the paper session did: the first version, 20 % x 1.0 of Rs 10,000 at ~100.2.
    assert [(t.quantity, t.exit_reason) for t in trader.engine.trades] == [(19, "pt")]
    # What the upserted signals table replays: the revision (meta 0.2) on the repaired bar's levels.
    levels = {T0: (100.3, 0.8)}
    backtest = stored_signal_trades(stored, levels, ticks)
    assert [t.quantity for t in backtest] == [3]
    assert backtest != trader.engine.trades  # the flake, deterministic: paper != backtest of `signals`


async def test_a_backtest_of_the_signals_the_paper_session_recorded_equals_it_to_the_paisa() -> None:
    trader, repo, stored, ticks = await run_session_with_a_revision()

    assert trader.summary.revised_signals == 1 and trader.summary.duplicate_signals == 0
    assert trader.summary.signals == 1 and trader.summary.unwritten == 0
    # The signals table keeps the revision (the model's answer on the corrected bar: the contract's
    # upsert), the paper record keeps what was acted on.
    assert stored.signals[(TOKEN, T0, "m-1")].meta_size == 0.2
    recorded = await repo.paper_signals("paper-revisions")
    assert recorded["meta_size"].tolist() == [1.0]

    engine = TradeEngine(config())
    replay(engine, recorded_signals(recorded), events(ticks))
    assert engine.trades == trader.engine.trades
    assert sum(t.net for t in engine.trades) == sum(t.net for t in trader.engine.trades)


async def test_a_bar_decided_flat_that_a_repair_turns_into_a_signal_is_not_traded_late() -> None:
    repo = InMemoryPaperRepository()
    trader = make_trader(repo)
    put = trader.tap(Stored())
    trader.start()
    scored(put, T0, close=100.0, atr=1.0, direction=0, meta=None)
    trader.observe_ticks([tick(T0 + MIN, 100.2), tick(T0 + 2 * MIN, 100.3)])
    await settle()
    # The rewind's version is long: acting on it now would enter minutes after its available_at, where
    # a backtest of it enters at 10:01; the decision made at 10:01 (flat) stands.
    scored(put, T0, close=100.0, atr=1.0, direction=1, meta=None)
    trader.observe_ticks([tick(T0 + 3 * MIN, 100.4)])
    await settle()
    summary = await trader.close()

    assert summary.signals == 0 and summary.revised_signals == 1 and summary.trades == 0
    assert (await repo.paper_signals("paper-revisions")).empty


async def test_a_bar_replayed_to_the_same_signal_is_a_duplicate_not_a_revision() -> None:
    repo = InMemoryPaperRepository()
    trader = make_trader(repo)
    put = trader.tap(Stored())
    trader.start()
    scored(put, T0, close=100.0, atr=1.0, direction=1, meta=0.5)
    scored(put, T0, close=100.0, atr=1.0, direction=1, meta=0.5)
    await settle()
    summary = await trader.close()

    assert summary.signals == 1 and summary.duplicate_signals == 1 and summary.revised_signals == 0
    assert len(await repo.paper_signals("paper-revisions")) == 1


def test_recorded_signals_rebuild_exactly_the_trade_signals_the_paper_engine_was_fed() -> None:
    from tickwise.core.trading import barrier_signal

    fed = [
        barrier_signal(
            instrument_token=TOKEN,
            time=T0 + i * MIN,
            available_at=T0 + (i + 1) * MIN,
            direction=1 if i % 2 else -1,
            confidence=0.61 + i / 7,
            size=None if i == 2 else 0.1 / 3,
            model_version="m-1",
            reference_close=100.0 + i / 3,
            atr=0.7 + i / 11,
            k_pt=2.0,
            k_sl=1.5,
            horizon_bars=10,
            lot_size=1 + i,
            meta_size=None if i == 1 else 1 / 3,
        )
        for i in range(3)
    ]
    frame = signal_frame(fed)
    assert frame["size"].tolist()[2] is None  # NULL, never NaN, in paper_signals

    assert recorded_signals(frame) == fed
    assert recorded_signals(signal_frame([])) == []


async def test_the_live_engines_rewind_revises_a_traded_bar_and_the_recorded_version_still_replays_equal() -> (
    None
):
    """The same flake through the real LiveEngine: a bar processed, traded, then corrected by a rewind."""
    from tickwise.core.features.calculator import FeatureCalculator
    from tickwise.pipelines.live.engine import LiveEngine

    calculator = FeatureCalculator()
    atr_at = calculator.names.index("atr_14")

    def model(token: int, t: datetime, row: np.ndarray) -> Signal:
        # A deterministic stand-in for the meta model: its size is a function of the bar's features, so
        # a corrected bar (a wider range, a higher ATR) gets another size, as a real model would.
        meta = 1.0 / (1.0 + 4.0 * float(row[atr_at]))
        return Signal(token, Timeframe.M1, t, t + MIN, "m-1", 1, 0.7, "live", "fs", size=0.2, meta_size=meta)

    open_ = datetime.combine(DAY, time(9, 15), tzinfo=IST)
    history = pd.DataFrame(
        {
            "time": pd.DatetimeIndex([open_ + i * MIN for i in range(30)]).tz_convert("UTC"),
            "open": 100.0,
            "high": 100.1,
            "low": 99.9,
            "close": 100.0,
            "volume": 1000,
            "oi": pd.array([pd.NA] * 30, dtype="Int64"),
            "obi_5": np.nan,
        }
    )
    t = open_ + 30 * MIN

    def one(close: float, spread: float, at: datetime = t) -> Bar:
        return Bar(
            Candle(TOKEN, Timeframe.M1, at, 100.0, close + spread, 100.0 - spread, close, 900, None, "live")
        )

    repo = InMemoryPaperRepository()
    trader = PaperTrader(
        engine=TradeEngine(config()),
        repository=repo,
        run_id="paper-revisions",
        feature_names=calculator.names,
        barriers=BARRIERS,
    )
    stored = Stored()
    candles: dict[datetime, Bar] = {}

    def writer(table: str, rows: Sequence[object]) -> None:
        stored(table, rows)
        for row in rows:
            if table == "candles" and isinstance(row, Bar) and row.candle.timeframe is Timeframe.M1:
                candles[row.time] = row  # the candles table: an upsert too

    engine = LiveEngine(calculator, model, trader.tap(writer))
    engine.open_instrument(TOKEN, history)
    trader.start()
    engine.process(one(100.0, 0.1), closed_at=0.0)  # the feed's bar
    ticks = [tick(t + MIN, 100.05), tick(t + MIN + timedelta(seconds=30), 100.1)]
    trader.observe_ticks(ticks)
    await settle()
    assert trader.engine.open_positions == 1
    # REST's bar held ticks the feed missed: a wider range. The rewind scores 10:45 again.
    engine.rewind(TOKEN, [one(100.4, 1.5), one(100.2, 0.2, t + MIN)], closed_at=0.0)
    later = [tick(t + 2 * MIN + timedelta(seconds=5), 97.0)]  # through any stop loss: the trade closes
    trader.observe_ticks(later)
    await settle()
    await trader.close()

    assert trader.summary.revised_signals == 1 and trader.summary.duplicate_signals == 0
    assert len(trader.engine.trades) == 1
    recorded = await repo.paper_signals("paper-revisions")
    replayed = TradeEngine(config())
    replay(replayed, recorded_signals(recorded), events(ticks + later))
    assert replayed.trades == trader.engine.trades
    # The upserted signal is the revision: another meta size, hence another quantity.
    revised = stored.signals[(TOKEN, t, "m-1")]
    assert revised.meta_size is not None and revised.meta_size != recorded["meta_size"].iloc[0]
    assert candles[t].close == 100.4
