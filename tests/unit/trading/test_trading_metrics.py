"""Summary metrics of a backtest, checked by hand on a few trades."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from tickwise.core.trading.metrics import (
    confidence_deciles,
    daily_pnl,
    monthly_returns,
    summarize,
    trades_frame,
)
from tickwise.core.trading.trade import EquityPoint, Trade
from tickwise.domain.time import IST

D1, D2, D3 = date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)


def trade(day: date, net: str, *, gross: str | None = None, minutes: int = 10, conf: float = 0.6) -> Trade:
    entry = datetime(day.year, day.month, day.day, 10, 0, tzinfo=IST)
    zero = Decimal("0.00")
    g = Decimal(gross if gross is not None else net)
    charges = g - Decimal(net)
    return Trade(
        instrument_token=1,
        side=1,
        quantity=10,
        entry_time=entry,
        entry_price=100.0,
        exit_time=entry + timedelta(minutes=minutes),
        exit_price=101.0,
        exit_reason="pt" if Decimal(net) > 0 else "sl",
        gross=g,
        brokerage=charges,
        stt=zero,
        exchange=zero,
        sebi=zero,
        stamp=zero,
        gst=zero,
        slippage=zero,
        net=Decimal(net),
        signal_time=entry - timedelta(minutes=1),
        model_version="m",
        confidence=conf,
        buy_value=Decimal("1000.00"),
        sell_value=Decimal("1010.00"),
    )


def curve(trades: list[Trade], capital: float) -> list[EquityPoint]:
    points = [EquityPoint(trades[0].entry_time, Decimal(repr(capital)), 0.0)]
    equity, peak = Decimal(repr(capital)), Decimal(repr(capital))
    for t in trades:
        equity += t.net
        peak = max(peak, equity)
        points.append(EquityPoint(t.exit_time, equity, float(equity / peak - 1)))
    return points


def test_summary_of_three_days_matches_the_hand_computation() -> None:
    trades = [trade(D1, "100", gross="110"), trade(D1, "-50", gross="-40"), trade(D3, "200", gross="210")]
    m = summarize(trades, curve(trades, 10_000.0), [D1, D2, D3], 10_000.0)
    assert m["net_pnl"] == pytest.approx(250.0)
    assert m["gross_pnl"] == pytest.approx(280.0)
    assert m["return_on_capital"] == pytest.approx(0.025)
    assert m["hit_rate"] == pytest.approx(2 / 3)
    assert m["avg_win"] == pytest.approx(150.0) and m["avg_loss"] == pytest.approx(-50.0)
    assert m["profit_factor"] == pytest.approx(6.0)
    assert m["costs_share_of_gross"] == pytest.approx(30 / 280)
    assert m["trades_per_day"] == pytest.approx(1.0)
    # Daily returns 0.005, 0, 0.02: mean 0.008333, sd (ddof 1) 0.010408; downside deviation 0 -> None.
    r = [0.005, 0.0, 0.02]
    mean = sum(r) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)
    assert m["sharpe"] == pytest.approx(mean / sd * math.sqrt(252))
    assert m["sortino"] is None
    # Equity 10000 -> 10100 -> 10050 -> 10250: max drawdown 50/10100; one session (D1 ends at a new high).
    assert m["max_drawdown"] == pytest.approx(50 / 10_100)
    assert m["max_drawdown_sessions"] == 0
    # Three 10-minute trades, D1's two at the same time: 20 minutes of 3 x 375.
    assert m["exposure"] == pytest.approx(20 / 1125)
    assert m["turnover"] == pytest.approx(3 * 2010.0)
    assert m["exit_reasons"] == {"pt": 2, "sl": 1, "horizon": 0, "square_off": 0, "risk": 0}


def test_a_losing_day_gives_a_sortino_and_a_drawdown_duration() -> None:
    trades = [trade(D1, "100"), trade(D2, "-300"), trade(D3, "50")]
    m = summarize(trades, curve(trades, 10_000.0), [D1, D2, D3], 10_000.0)
    downside = math.sqrt((0.03**2) / 3)
    assert m["sortino"] == pytest.approx((-150 / 3 / 10_000) / downside * math.sqrt(252))
    assert m["max_drawdown_sessions"] == 2


def test_no_trades_gives_zeros_and_undefined_ratios_not_errors() -> None:
    m = summarize([], [], [D1], 1_000.0)
    assert m["trades"] == 0 and m["net_pnl"] == 0.0
    assert m["hit_rate"] is None and m["profit_factor"] is None and m["sharpe"] is None


def test_confidence_groups_are_equal_count_and_report_hit_and_target_rates() -> None:
    trades = [trade(D1, "10" if i % 2 else "-10", conf=0.5 + i / 100) for i in range(20)]
    groups = confidence_deciles(trades_frame(trades))
    assert [g["trades"] for g in groups] == [2.0] * 10
    assert all(g["hit_rate"] == 0.5 for g in groups)
    assert groups[0]["confidence_mean"] < groups[-1]["confidence_mean"]


def test_daily_pnl_and_monthly_returns_fill_days_without_exits_with_zero() -> None:
    frame = trades_frame([trade(D1, "100"), trade(D3, "-20")])
    daily = daily_pnl(frame, [D1, D2, D3])
    assert daily.tolist() == [100.0, 0.0, -20.0]
    months = monthly_returns(daily, 1_000.0)
    assert months.loc[2026, 11] == pytest.approx(0.08)
    assert math.isnan(months.loc[2026, 1])
