"""The promotion rule: significance tests of a challenger against the champion on the same window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tickwise.core.metrics import TradeOutcomes, roc_auc, signal_pnl
from tickwise.core.promotion import (
    ComparisonResult,
    PromotionRule,
    daily_sum,
    decide,
    delong_test,
    paired_bootstrap,
    trade_net_returns,
)


def _scores(n: int, edge: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, 1 / (1 + np.exp(-(edge * (2 * y - 1) + rng.normal(size=n))))


def test_delong_reports_the_two_aucs_and_a_small_p_value_for_a_clearly_better_challenger() -> None:
    y, good = _scores(2000, 1.0, 1)
    _, weak = _scores(2000, 0.0, 2)
    result = delong_test(y, good, weak)
    assert result.challenger == pytest.approx(roc_auc(y, good))
    assert result.champion == pytest.approx(roc_auc(y, weak))
    assert result.p_value < 1e-6
    assert delong_test(y, weak, good).p_value > 0.99


def test_delong_p_values_of_the_two_directions_add_up_to_one() -> None:
    y, a = _scores(500, 0.3, 3)
    b = a + np.random.default_rng(4).normal(scale=0.3, size=500)
    assert delong_test(y, a, b).p_value + delong_test(y, b, a).p_value == pytest.approx(1.0)


def test_delong_gives_no_evidence_for_identical_models_or_a_single_class() -> None:
    y, a = _scores(300, 0.5, 5)
    assert delong_test(y, a, a).p_value == 1.0
    assert delong_test(np.ones(10), np.arange(10.0), np.arange(10.0)).p_value == 1.0


def test_delong_rejects_misaligned_inputs() -> None:
    with pytest.raises(ValueError, match="same length"):
        delong_test([0, 1, 0], [0.1, 0.2], [0.1, 0.2])


def test_paired_bootstrap_finds_a_consistent_daily_edge_and_not_its_mirror() -> None:
    rng = np.random.default_rng(0)
    champion = rng.normal(0, 0.01, 40)
    challenger = champion + 0.004 + rng.normal(0, 0.002, 40)
    assert paired_bootstrap(challenger, champion).p_value < 0.01
    assert paired_bootstrap(champion, challenger).p_value >= 0.5
    assert paired_bootstrap(champion, champion).p_value >= 0.5


def test_paired_bootstrap_does_not_call_noise_significant_more_often_than_alpha() -> None:
    rng = np.random.default_rng(11)
    wins = sum(
        paired_bootstrap(rng.normal(0, 0.01, 30), rng.normal(0, 0.01, 30), samples=500, seed=k).p_value < 0.05
        for k in range(200)
    )
    assert wins <= 20  # 5 % of 200 is 10; allow for the bootstrap's small-sample liberalness


def test_a_challenger_is_promoted_only_on_enough_sessions_and_a_small_p_value() -> None:
    rule = PromotionRule(alpha=0.05, min_days=5)
    strong = ComparisonResult("bootstrap", 0.01, 0.0, 0.001, 10, 10)
    weak = ComparisonResult("bootstrap", 0.01, 0.0, 0.2, 10, 10)
    assert decide(rule, None, days=0).promote
    assert decide(rule, strong, days=10).promote
    too_short = decide(rule, strong, days=3)
    assert not too_short.promote and "3 out-of-sample session(s)" in too_short.reason
    rejected = decide(rule, weak, days=10)
    assert not rejected.promote and "p = 0.2000" in rejected.reason


def test_invalid_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        PromotionRule(alpha=1.5)
    with pytest.raises(ValueError, match="bootstrap"):
        PromotionRule(test="t-test")  # type: ignore[arg-type]


def test_trade_net_returns_sum_to_the_net_return_of_signal_pnl() -> None:
    rng = np.random.default_rng(2)
    n = 50
    entry = rng.uniform(100, 200, n)
    long_ret = rng.normal(0, 0.01, n)
    short_ret = rng.normal(0, 0.01, n)
    outcomes = TradeOutcomes(
        entry_price=entry,
        long_ret=long_ret,
        long_exit=entry * (1 + long_ret),
        long_win=long_ret > 0,
        short_ret=short_ret,
        short_exit=entry * (1 - short_ret),
        short_win=short_ret > 0,
    )
    direction = rng.integers(-1, 2, n)
    net = trade_net_returns(direction, outcomes)
    assert net[direction == 0].tolist() == [0.0] * int((direction == 0).sum())
    assert net.sum() == pytest.approx(signal_pnl(direction, outcomes)["net_ret_total"])


def test_daily_sums_group_by_the_ist_session_date() -> None:
    times = pd.DatetimeIndex(
        ["2026-03-02 03:45", "2026-03-02 09:59", "2026-03-03 03:45"], tz="UTC"
    )  # 09:15 and 15:29 IST on the 2nd, 09:15 IST on the 3rd
    got = daily_sum(times, [1.0, 2.0, 4.0])
    assert got.tolist() == [3.0, 4.0]
    assert [d.strftime("%Y-%m-%d") for d in got.index] == ["2026-03-02", "2026-03-03"]
