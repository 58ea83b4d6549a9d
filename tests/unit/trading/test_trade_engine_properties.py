"""Properties of the trade engine over random sessions of bars and signals."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.core.trading import EngineConfig, PriceEvent, RiskLimits, Slippage, TradeEngine, barrier_signal
from tickwise.core.trading.events import TradeSignal
from tickwise.domain.time import IST

TOKENS = (11, 22)
DAYS = ((2026, 11, 2), (2026, 11, 3))
MINUTES = 60


@st.composite
def sessions(draw: st.DrawFn) -> tuple[list[TradeSignal], list[PriceEvent], EngineConfig]:
    events: list[PriceEvent] = []
    closes: dict[tuple[int, datetime], float] = {}
    for day in DAYS:
        # The session's last hour, every minute: small examples that still cross the cut-off, the
        # square-off and a change of day.
        open_ = datetime(*day, 14, 30, tzinfo=IST)
        for token in TOKENS:
            price = 100.0
            # A random walk in ticks of 0.05.
            for m in range(MINUTES):
                t = open_ + timedelta(minutes=m)
                o = max(1.0, price + draw(st.integers(-10, 10)) * 0.05)
                c = max(1.0, o + draw(st.integers(-20, 20)) * 0.05)
                h = max(o, c) + draw(st.integers(0, 20)) * 0.05
                lo = max(0.5, min(o, c) - draw(st.integers(0, 20)) * 0.05)
                events.append(PriceEvent.bar(token, t, round(o, 2), round(h, 2), round(lo, 2), round(c, 2)))
                closes[(token, t)] = round(c, 2)
                price = c
    keys = sorted(closes)
    picks = draw(st.lists(st.sampled_from(keys), max_size=25, unique=True))
    signals = [
        barrier_signal(
            instrument_token=token,
            time=t,
            available_at=t + timedelta(minutes=1),
            direction=draw(st.sampled_from((-1, 1))),
            confidence=draw(st.floats(0.5, 1.0)),
            size=draw(st.none() | st.floats(0.0, 0.3)),
            model_version="m",
            reference_close=closes[(token, t)],
            atr=draw(st.floats(0.05, 2.0)),
            k_pt=2.0,
            k_sl=1.5,
            horizon_bars=draw(st.integers(1, 20)),
            lot_size=draw(st.sampled_from((1, 1, 25))),
        )
        for token, t in picks
    ]
    config = EngineConfig(
        limits=RiskLimits(
            capital=draw(st.sampled_from((100_000.0, 1_000_000.0))),
            max_open_positions=draw(st.integers(1, 3)),
            daily_loss_limit=draw(st.none() | st.floats(0.001, 0.05)),
            max_drawdown=draw(st.none() | st.floats(0.001, 0.2)),
        ),
        slippage=Slippage(bps=draw(st.floats(0.0, 20.0))),
    )
    return signals, sorted(events, key=lambda e: (e.time, e.instrument_token)), config


def replay(signals: list[TradeSignal], events: list[PriceEvent], config: EngineConfig) -> TradeEngine:
    engine = TradeEngine(config)
    pending = sorted(signals, key=lambda s: s.available_at)
    i = 0
    for event in events:
        while i < len(pending) and pending[i].available_at <= event.time:
            engine.on_signal(pending[i])
            i += 1
        engine.on_price(event)
    engine.finish()
    return engine


@settings(max_examples=40, deadline=None)
@given(sessions())
def test_net_is_gross_minus_charges_minus_slippage_to_the_paisa(
    case: tuple[list[TradeSignal], list[PriceEvent], EngineConfig],
) -> None:
    signals, events, config = case
    engine = replay(signals, events, config)
    for t in engine.trades:
        assert t.net == t.gross - t.charges - t.slippage
        assert t.net.as_tuple().exponent == -2
    start = engine.equity[0].equity
    assert start == Decimal(repr(config.limits.capital))
    assert engine.realized_equity == start + sum(t.net for t in engine.trades)


@settings(max_examples=40, deadline=None)
@given(sessions())
def test_no_entry_after_the_cutoff_and_nothing_open_after_the_square_off(
    case: tuple[list[TradeSignal], list[PriceEvent], EngineConfig],
) -> None:
    engine = replay(*case)
    assert engine.open_positions == 0
    for t in engine.trades:
        entry, exit_ = t.entry_time.astimezone(IST), t.exit_time.astimezone(IST)
        assert entry.time() < time(15, 15)
        assert exit_.date() == entry.date()
        assert exit_.time() <= time(15, 20)
        assert t.entry_time >= t.signal_time + timedelta(minutes=1)  # never before available_at


@settings(max_examples=40, deadline=None)
@given(sessions())
def test_a_profit_target_is_never_taken_on_a_bar_that_also_touched_the_stop(
    case: tuple[list[TradeSignal], list[PriceEvent], EngineConfig],
) -> None:
    signals, events, config = case
    engine = replay(signals, events, config)
    by_key = {(s.instrument_token, s.time): s for s in signals}
    bars = {(e.instrument_token, e.end): e for e in events}
    for t in engine.trades:
        if t.exit_reason != "pt" or (t.instrument_token, t.exit_time) not in bars:
            continue  # gap exits at an open are stamped at the bar's open
        s, b = by_key[(t.instrument_token, t.signal_time)], bars[(t.instrument_token, t.exit_time)]
        gap = b.open >= s.take_profit if s.direction > 0 else b.open <= s.take_profit
        if t.exit_price != s.take_profit or gap or b.time < t.entry_time:
            continue  # a gap exit at the next bar's open, stamped at this bar's end
        touched_stop = b.low <= s.stop_loss if s.direction > 0 else b.high >= s.stop_loss
        assert not touched_stop


@settings(max_examples=40, deadline=None)
@given(sessions())
def test_positions_respect_the_limits(case: tuple[list[TradeSignal], list[PriceEvent], EngineConfig]) -> None:
    signals, events, config = case
    engine = replay(signals, events, config)
    limits = config.limits
    spans = sorted((t.entry_time, t.exit_time, t.instrument_token) for t in engine.trades)
    for i, (start, _, token) in enumerate(spans):
        concurrent = [s for s in spans[:i] if s[1] > start]
        assert len(concurrent) < limits.max_open_positions
        assert all(s[2] != token for s in concurrent)
    for t in engine.trades:
        assert t.quantity > 0
        assert t.quantity * t.entry_price <= limits.capital * limits.max_capital_per_instrument + 1e-6
