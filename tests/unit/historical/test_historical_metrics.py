"""OOS metrics and the Zerodha intraday cost model."""

from __future__ import annotations

import numpy as np
import pytest

from tickwise.core.metrics import TradeOutcomes, ZerodhaIntradayCosts, log_loss, roc_auc, signal_pnl


def test_round_trip_cost_of_one_lakh_long_at_unchanged_price() -> None:
    cost = ZerodhaIntradayCosts(notional=100_000).round_trip(
        np.array([1]), np.array([100.0]), np.array([100.0])
    )
    # brokerage 2 x 20, STT 25, NSE 5.94, SEBI 0.2, stamp 3, GST 18 % of 46.14
    expected = (40 + 25 + 5.94 + 0.2 + 3 + 0.18 * (40 + 5.94 + 0.2)) / 100_000
    assert cost[0] == pytest.approx(expected)


def test_brokerage_is_a_percentage_below_the_cap() -> None:
    small = ZerodhaIntradayCosts(notional=10_000).round_trip(
        np.array([-1]), np.array([50.0]), np.array([50.0])
    )
    expected = (2 * 3 + 2.5 + 0.594 + 0.02 + 0.3 + 0.18 * (6 + 0.594 + 0.02)) / 10_000
    assert small[0] == pytest.approx(expected)


def test_auc_matches_pairwise_definition_with_ties() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.4])
    pairs = [(a, b) for a in s[y == 1] for b in s[y == 0]]
    expected = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs])
    assert roc_auc(y, s) == pytest.approx(expected)
    assert np.isnan(roc_auc(np.ones(3), s[:3]))


def test_log_loss_of_a_coin_is_log_two() -> None:
    assert log_loss(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(np.log(2))


def test_signal_pnl_takes_each_direction_from_its_side_labels() -> None:
    outcomes = TradeOutcomes(
        entry_price=np.full(3, 100.0),
        long_ret=np.array([0.01, -0.005, 0.0]),
        long_exit=np.array([101.0, 99.5, 100.0]),
        long_win=np.array([True, False, False]),
        short_ret=np.array([-0.01, 0.005, 0.0]),
        short_exit=np.array([101.0, 99.5, 100.0]),
        short_win=np.array([False, True, False]),
    )
    result = signal_pnl(np.array([1, -1, 0]), outcomes, ZerodhaIntradayCosts())
    assert result["trades"] == 2
    assert result["precision_long"] == 1.0 and result["precision_short"] == 1.0
    assert result["gross_ret_mean"] == pytest.approx(0.0075)
    assert 0 < result["cost_mean"] < 0.001
    assert result["net_ret_mean"] == pytest.approx(0.0075 - result["cost_mean"])
