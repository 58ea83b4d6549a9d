"""Meta-label sizing in the trade engine: a signal's meta size scales its position (sizing 'meta'),
'none' ignores it, and a meta size of 1 everywhere trades exactly as unsized."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import numpy as np
import pytest
from test_trade_engine import NO_SLIP, at, bar, run, signal

from tickwise.core.trading import EngineConfig, PriceEvent, RiskLimits, TradeEngine, TradeSignal
from tickwise.core.trading.risk import sized_fraction


def _with_meta(s: TradeSignal, meta: float | None) -> TradeSignal:
    return dataclasses.replace(s, meta_size=meta)


def _random_day(seed: int) -> tuple[list[TradeSignal], list[PriceEvent]]:
    """A session of random-walk bars with a signal every few minutes, alternating sides."""
    rng = np.random.default_rng(seed)
    price = 100.0
    events, signals = [], []
    for i in range(300):
        t = at(9, 15) + timedelta(minutes=i)
        step = rng.normal(scale=0.3)
        o, c = price, price + step
        events.append(
            bar(t, o, max(o, c) + abs(rng.normal(scale=0.2)), min(o, c) - abs(rng.normal(scale=0.2)), c)
        )
        if i % 7 == 0:
            signals.append(signal(t, 1 if i % 14 == 0 else -1, close=c, atr=0.5, size=0.1))
        price = c
    return signals, events


def _ledger(engine: TradeEngine) -> list[tuple[object, ...]]:
    return [(t.entry_time, t.side, t.quantity, t.exit_reason, t.net) for t in engine.trades]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_meta_sized_equals_unsized_when_every_meta_size_is_one(seed: int) -> None:
    signals, events = _random_day(seed)
    config = EngineConfig(slippage=NO_SLIP, limits=RiskLimits(daily_loss_limit=None, max_drawdown=None))
    unsized, _ = run(signals, events, dataclasses.replace(config, sizing="none"))
    sized, _ = run([_with_meta(s, 1.0) for s in signals], events, config)
    assert len(unsized.trades) > 5
    assert _ledger(sized) == _ledger(unsized)
    assert [p.equity for p in sized.equity] == [p.equity for p in unsized.equity]


def test_a_meta_size_of_one_half_halves_the_position() -> None:
    events = [bar(at(10, 1), 100.0, 100.5, 99.9, 100.2), bar(at(10, 2), 100.2, 102.1, 100.1, 102.0)]
    _, (full,) = run([signal(at(10, 0), size=0.1)], events)
    _, (half,) = run([_with_meta(signal(at(10, 0), size=0.1), 0.5)], events)
    assert full.quantity == 1000 and half.quantity == 500


def test_a_signal_without_a_size_scales_the_default_size() -> None:
    events = [bar(at(10, 1), 100.0, 100.5, 99.9, 100.2)]
    engine, _ = run([_with_meta(signal(at(10, 0), size=None), 0.3)], events)
    assert engine.trades[0].quantity == 300  # 0.3 x default 0.1 x Rs 10 lakh / Rs 100


def test_a_meta_size_of_zero_skips_the_trade_and_counts_why() -> None:
    events = [bar(at(10, 1), 100.0, 100.5, 99.9, 100.2)]
    engine, trades = run([_with_meta(signal(at(10, 0)), 0.0)], events)
    assert trades == [] and engine.skipped["meta_zero"] == 1


def test_sizing_none_ignores_the_meta_size() -> None:
    events = [bar(at(10, 1), 100.0, 100.5, 99.9, 100.2)]
    config = EngineConfig(slippage=NO_SLIP, sizing="none")
    engine, _ = run([_with_meta(signal(at(10, 0)), 0.0)], events, config)
    assert engine.trades[0].quantity == 1000


def test_sized_fraction_leaves_a_signal_without_meta_size_alone() -> None:
    assert sized_fraction(0.1, None, 0.2) == 0.1
    assert sized_fraction(None, None, 0.2) is None
    assert sized_fraction(None, math.nan, 0.2) is None
    assert sized_fraction(0.1, 0.5, 0.2) == pytest.approx(0.05)


def test_a_meta_size_outside_zero_one_and_an_unknown_sizing_are_errors() -> None:
    with pytest.raises(ValueError, match="meta_size"):
        _with_meta(signal(at(10, 0)), 1.5)
    with pytest.raises(ValueError, match="sizing"):
        EngineConfig(sizing="kelly")  # type: ignore[arg-type]
