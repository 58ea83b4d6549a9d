"""The trade engine on hand-built bars and ticks: entries, barrier exits, session rules, risk limits."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from tickwise.core.trading import (
    EngineConfig,
    PriceEvent,
    RiskLimits,
    Slippage,
    Trade,
    TradeEngine,
    barrier_signal,
)
from tickwise.core.trading.events import TradeSignal
from tickwise.domain.time import IST

DAY = (2026, 11, 2)
TOKEN, OTHER = 408065, 738561
NO_SLIP = Slippage(bps=0.0)


def at(hh: int, mm: int, ss: int = 0, day: tuple[int, int, int] = DAY) -> datetime:
    return datetime(*day, hh, mm, ss, tzinfo=IST)


def signal(
    t: datetime,
    direction: int = 1,
    *,
    token: int = TOKEN,
    close: float = 100.0,
    atr: float = 1.0,
    size: float | None = 0.1,
    lot_size: int = 1,
    confidence: float = 0.6,
) -> TradeSignal:
    return barrier_signal(
        instrument_token=token,
        time=t,
        available_at=t + timedelta(minutes=1),
        direction=direction,
        confidence=confidence,
        size=size,
        model_version="m1",
        reference_close=close,
        atr=atr,
        k_pt=2.0,
        k_sl=1.5,
        horizon_bars=10,
        lot_size=lot_size,
    )


def bar(t: datetime, o: float, h: float, lo: float, c: float, token: int = TOKEN) -> PriceEvent:
    return PriceEvent.bar(token, t, o, h, lo, c)


def flat(start: datetime, n: int, price: float = 100.0, token: int = TOKEN) -> list[PriceEvent]:
    return [bar(start + timedelta(minutes=i), price, price, price, price, token) for i in range(n)]


def run(
    signals: list[TradeSignal], events: list[PriceEvent], config: EngineConfig | None = None
) -> tuple[TradeEngine, list[Trade]]:
    engine = TradeEngine(config or EngineConfig(slippage=NO_SLIP))
    for s in signals:
        engine.on_signal(s)
    for e in sorted(events, key=lambda e: (e.time, e.instrument_token)):
        engine.on_price(e)
    engine.finish()
    return engine, engine.trades


def test_a_long_enters_at_the_next_bar_open_and_takes_profit_at_the_level_net_of_the_contract_note() -> None:
    events = [bar(at(10, 1), 100.2, 100.5, 100.0, 100.3), bar(at(10, 2), 100.3, 102.1, 100.2, 101.9)]
    _, trades = run([signal(at(10, 0))], events)
    (t,) = trades
    # 10 % of Rs 10 lakh at 100.2 -> 998 shares; PT = 100 + 2 x 1 = 102, touched inside the 10:02 bar.
    assert (t.entry_time, t.entry_price, t.quantity) == (at(10, 1), 100.2, 998)
    assert (t.exit_time, t.exit_price, t.exit_reason) == (at(10, 3), 102.0, "pt")
    # Hand-computed: gross 998 x 1.8 = 1796.40; buy 99999.60, sell 101796.00: brokerage 20 + 20,
    # STT 25.449 -> 25.45, NSE 201795.60 x 0.0000297 = 5.993 -> 5.99, SEBI 0.20, stamp 2.99999 -> 3.00,
    # GST 18 % x 46.19 = 8.3142 -> 8.31; charges 82.95; net 1713.45.
    assert t.gross == Decimal("1796.40")
    assert (t.brokerage, t.stt, t.exchange, t.sebi, t.stamp, t.gst) == tuple(
        Decimal(x) for x in ("40.00", "25.45", "5.99", "0.20", "3.00", "8.31")
    )
    assert t.net == Decimal("1713.45")


def test_a_bar_that_touches_both_levels_exits_at_the_stop_loss() -> None:
    events = [bar(at(10, 1), 100.0, 100.1, 99.9, 100.0), bar(at(10, 2), 100.0, 102.5, 98.0, 101.0)]
    _, (t,) = run([signal(at(10, 0))], events)
    assert (t.exit_reason, t.exit_price) == ("sl", 98.5)


def test_a_gap_through_the_stop_exits_at_the_open_not_at_the_level() -> None:
    events = [bar(at(10, 1), 100.0, 100.1, 99.9, 100.0), bar(at(10, 2), 97.0, 97.5, 96.5, 97.2)]
    _, (t,) = run([signal(at(10, 0))], events)
    assert (t.exit_reason, t.exit_price, t.exit_time) == ("sl", 97.0, at(10, 2))


def test_a_short_takes_profit_below_and_stops_above() -> None:
    win = [bar(at(10, 1), 100.0, 100.2, 99.9, 100.0), bar(at(10, 2), 99.5, 99.6, 97.9, 98.2)]
    _, (t,) = run([signal(at(10, 0), -1)], win)
    assert (t.side, t.exit_reason, t.exit_price) == (-1, "pt", 98.0)
    assert t.gross > 0
    loss = [bar(at(10, 1), 100.0, 100.2, 99.9, 100.0), bar(at(10, 2), 100.5, 101.6, 100.4, 101.0)]
    _, (t,) = run([signal(at(10, 0), -1)], loss)
    assert (t.exit_reason, t.exit_price) == ("sl", 101.5)
    assert t.gross < 0


def test_nothing_touched_exits_at_the_close_of_bar_t0_plus_horizon() -> None:
    _, (t,) = run([signal(at(10, 0))], flat(at(10, 1), 30))
    assert (t.exit_reason, t.exit_time, t.exit_price) == ("horizon", at(10, 11), 100.0)


def test_no_entry_at_or_after_the_cutoff() -> None:
    engine, trades = run([signal(at(15, 14))], flat(at(15, 10), 10))
    assert trades == []
    assert engine.skipped["cutoff"] == 1


def test_open_positions_are_squared_off_at_1520() -> None:
    _, (t,) = run([signal(at(15, 12))], flat(at(15, 10), 15))
    assert (t.entry_time, t.exit_reason, t.exit_time) == (at(15, 13), "square_off", at(15, 20))


def test_a_position_left_at_the_end_of_a_day_never_survives_into_the_next() -> None:
    events = flat(at(15, 12), 3) + flat(at(9, 15, day=(2026, 11, 3)), 2, price=105.0)
    _, (t,) = run([signal(at(15, 12))], events)
    assert (t.exit_reason, t.exit_time, t.exit_price) == ("square_off", at(15, 15), 100.0)


def test_signals_beyond_the_position_limit_are_skipped() -> None:
    config = EngineConfig(limits=RiskLimits(max_open_positions=1), slippage=NO_SLIP)
    events = flat(at(10, 1), 5) + flat(at(10, 1), 5, token=OTHER)
    engine, trades = run([signal(at(10, 0)), signal(at(10, 0), token=OTHER)], events, config)
    assert len(trades) == 1
    assert engine.skipped["max_positions"] == 1


def test_one_position_per_instrument_at_a_time() -> None:
    engine, trades = run([signal(at(10, 0)), signal(at(10, 2))], flat(at(10, 1), 20))
    assert len(trades) == 1
    assert engine.skipped["position_open"] == 1


def test_capital_per_instrument_caps_the_quantity_and_lot_size_rounds_it_down() -> None:
    config = EngineConfig(limits=RiskLimits(max_capital_per_instrument=0.05), slippage=NO_SLIP)
    _, (t,) = run([signal(at(10, 0), size=0.5, lot_size=75)], flat(at(10, 1), 12), config)
    # Rs 50,000 cap at Rs 100 -> 500 shares -> 6 lots of 75 = 450.
    assert t.quantity == 450


def test_a_daily_loss_breach_closes_open_positions_as_risk_and_stops_entries_until_the_next_day() -> None:
    limits = RiskLimits(capital=100_000.0, max_capital_per_instrument=1.0, daily_loss_limit=0.01)
    config = EngineConfig(limits=limits, slippage=NO_SLIP)
    # Both instruments enter at 10:01 with Rs 50,000 each; at 10:02 OTHER falls 3 % (a Rs 1,500 mark-to-
    # market loss while TOKEN's stop is not hit): the limit (Rs 1,000) halts trading.
    events = [
        bar(at(10, 1), 100.0, 100.0, 100.0, 100.0),
        bar(at(10, 1), 100.0, 100.0, 100.0, 100.0, OTHER),
        bar(at(10, 2), 100.0, 100.0, 99.0, 99.0),
        bar(at(10, 2), 100.0, 100.0, 97.0, 97.0, OTHER),
        *flat(at(10, 3), 10, 99.0),
        *flat(at(9, 15, day=(2026, 11, 3)), 5),
    ]
    sigs = [
        signal(at(10, 0), size=0.5),
        signal(at(10, 0), size=0.5, token=OTHER, atr=4.0),  # a wide stop (94) that 97 does not touch
        signal(at(10, 5)),
        signal(at(9, 15, day=(2026, 11, 3))),
    ]
    engine, trades = run(sigs, events, config)
    reasons = sorted((t.instrument_token, t.exit_reason) for t in trades)
    assert (TOKEN, "risk") in reasons
    assert engine.skipped["risk_halt"] == 1
    assert any(t.entry_time.date() == datetime(2026, 11, 3).date() for t in trades)


def test_bars_and_ticks_with_the_same_prices_give_the_same_trade_to_the_paisa() -> None:
    bars = [bar(at(10, 1), 100.2, 100.5, 100.0, 100.3), bar(at(10, 2), 100.3, 102.1, 100.2, 101.9)]
    ticks = [
        PriceEvent.tick(TOKEN, at(10, 1, 0), 100.2),
        PriceEvent.tick(TOKEN, at(10, 1, 40), 100.5),
        PriceEvent.tick(TOKEN, at(10, 2, 30), 102.0),
    ]
    _, (from_bars,) = run([signal(at(10, 0))], bars)
    _, (from_ticks,) = run([signal(at(10, 0))], ticks)
    same = ("quantity", "entry_time", "entry_price", "exit_price", "exit_reason", "gross", "net")
    assert [getattr(from_bars, f) for f in same] == [getattr(from_ticks, f) for f in same]


def test_slippage_is_half_the_spread_when_ticks_carry_depth_and_bps_otherwise() -> None:
    config = EngineConfig(slippage=Slippage(bps=10.0))
    ticks = [
        PriceEvent.tick(TOKEN, at(10, 1), 100.0, bid=99.9, ask=100.1),  # 0.10 per share
        PriceEvent.tick(TOKEN, at(10, 5), 102.0),  # 10 bps of 102 = 0.102 per share
    ]
    _, (t,) = run([signal(at(10, 0), size=0.1)], ticks, config)
    assert t.quantity == 1000
    assert t.slippage == Decimal("202.00")
    assert t.net == t.gross - t.charges - t.slippage


def test_direction_must_be_a_side_and_levels_must_make_sense() -> None:
    import pytest

    with pytest.raises(ValueError, match="direction"):
        signal(at(10, 0), 0)
    with pytest.raises(ValueError, match="ATR"):
        signal(at(10, 0), atr=float("nan"))


def test_a_slot_freed_inside_a_bar_is_not_reused_at_another_instruments_open_of_that_bar() -> None:
    config = EngineConfig(limits=RiskLimits(max_open_positions=1), slippage=NO_SLIP)
    events = [
        bar(at(10, 1), 100.0, 100.1, 99.9, 100.0),
        bar(at(10, 2), 100.0, 102.5, 99.9, 102.0),  # TOKEN takes profit somewhere inside 10:02..10:03
        bar(at(10, 2), 50.0, 50.1, 49.9, 50.0, OTHER),  # OTHER's signal would enter at 10:02:00
        *flat(at(10, 3), 15, 50.0, OTHER),
    ]
    engine, trades = run([signal(at(10, 0)), signal(at(10, 1), token=OTHER, close=50.0)], events, config)
    assert [t.instrument_token for t in trades] == [TOKEN]
    assert engine.skipped["max_positions"] == 1
