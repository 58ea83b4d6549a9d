"""Signal generator: thresholds, tie handling, regime suppression and capped fractional Kelly."""

from __future__ import annotations

import numpy as np
import pytest

from tickwise.core.signals import RegimeRule, SignalGenerator


def test_direction_follows_the_side_above_the_threshold() -> None:
    gen = SignalGenerator(threshold=0.55)
    batch = gen.generate(np.array([0.7, 0.2, 0.5, 0.6, 0.6]), np.array([0.3, 0.65, 0.5, 0.6, 0.1]))
    assert batch.direction.tolist() == [1, -1, 0, 0, 1]
    assert batch.confidence.tolist() == [0.7, 0.65, 0.5, 0.6, 0.6]


def test_size_is_fractional_kelly_capped_and_zero_without_signal() -> None:
    gen = SignalGenerator(threshold=0.55, kelly_fraction=0.25, max_position=0.1, payoff=2.0)
    direction, _, size = gen.one(0.6, 0.1)
    assert direction == 1
    assert size == pytest.approx(0.25 * (0.6 - 0.4 / 2.0))
    assert gen.one(0.99, 0.0)[2] == 0.1
    assert gen.one(0.5, 0.4)[2] == 0.0


def test_regime_filter_suppresses_signals_outside_its_bounds_and_on_nan() -> None:
    gen = SignalGenerator(threshold=0.55, regime=(RegimeRule("natr_14", low=0.05),))
    batch = gen.generate(np.full(3, 0.8), np.full(3, 0.1), {"natr_14": np.array([0.1, 0.01, np.nan])})
    assert batch.direction.tolist() == [1, 0, 0]
    assert batch.suppressed.tolist() == [False, True, True]
    assert batch.size[1:].tolist() == [0.0, 0.0]


def test_regime_filter_without_its_feature_is_an_error() -> None:
    gen = SignalGenerator(regime=(RegimeRule("hurst_100", high=0.6),))
    with pytest.raises(ValueError, match="hurst_100"):
        gen.generate(np.array([0.8]), np.array([0.1]))


def test_one_bar_equals_the_batch_computation() -> None:
    gen = SignalGenerator(threshold=0.52)
    rng = np.random.default_rng(0)
    pl, ps = rng.uniform(size=100), rng.uniform(size=100)
    batch = gen.generate(pl, ps)
    for i in range(100):
        assert gen.one(pl[i], ps[i]) == (batch.direction[i], batch.confidence[i], batch.size[i])


def test_model_generator_takes_payoff_from_the_label_spec_and_filters_on_cost_covering_volatility() -> None:
    from tickwise.core.signals import model_signal_generator, signal_ready

    gen = model_signal_generator(
        {"k_pt": 2.0, "k_sl": 1.0},
        threshold=0.55,
        kelly_fraction=0.25,
        max_position=0.1,
        round_trip_cost=0.001,
    )
    assert gen.payoff == 2.0
    batch = gen.generate(np.full(2, 0.8), np.full(2, 0.1), {"natr_14": np.array([0.049, 0.051])})
    assert batch.direction.tolist() == [0, 1]  # 2 x NATR must exceed the 0.1 % cost
    assert signal_ready(np.array([[1.0, 2.0], [np.nan, 1.0]])).tolist() == [True, False]
