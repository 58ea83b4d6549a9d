"""The booster-trainer port's in-process implementation is exactly the single-machine training that
came before it: the same boosters, bit for bit, for the fold models and the final fit."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from tickwise.core.fitting import TUNED_DEFAULTS, TrainConfig, fit_side
from tickwise.core.model import SIDES
from tickwise.core.side_fit import FitSource, InProcessTrainer, SideFit, fit_rows
from tickwise.pipelines.historical.oos import _fit_fold

sys.path.insert(0, str(Path(__file__).parent))
from historical_synthetic import synthetic_training_set


def test_the_in_process_trainer_trains_the_booster_fit_side_trains_bit_for_bit() -> None:
    ts = synthetic_training_set(n_bars=600, n_instruments=3)
    cfg = TrainConfig(max_train_rows=900, seed=11)  # 1,800 rows: the subsample is part of the contract
    rows = np.arange(len(ts))[::-1]  # unsorted on purpose: both sort
    idx = np.array([0, 2, 3], dtype=np.int64)
    for side in SIDES:
        request = SideFit(ts, side, rows, TUNED_DEFAULTS, cfg, idx, 30)
        expected, _ = fit_side(ts, side, rows, TUNED_DEFAULTS, cfg, idx, num_boost_round=30)
        assert InProcessTrainer().fit(request).model_to_string() == expected.model_to_string()
    assert InProcessTrainer().provenance == {}


def test_fold_models_through_the_default_trainer_equal_the_direct_single_machine_fit() -> None:
    ts = synthetic_training_set(n_bars=500, n_instruments=2)
    cfg = TrainConfig(num_boost_round=25)
    rows = np.arange(200, len(ts))
    idx = np.arange(len(ts.feature_names))
    boosters = _fit_fold(ts, rows, cfg)
    explicit = _fit_fold(ts, rows, cfg, InProcessTrainer(), FitSource())
    for side in SIDES:
        direct, _ = fit_side(ts, side, rows, TUNED_DEFAULTS, cfg, idx, num_boost_round=25)
        assert boosters[side].model_to_string() == direct.model_to_string()
        assert explicit[side].model_to_string() == direct.model_to_string()


def test_fit_rows_sorts_the_rows_and_keeps_a_seeded_subsample_of_max_train_rows() -> None:
    ts = synthetic_training_set(n_bars=300, n_instruments=2)
    request = SideFit(
        ts, 1, np.arange(len(ts))[::-1], TUNED_DEFAULTS, TrainConfig(max_train_rows=100), np.arange(2), 5
    )
    rows, keep = fit_rows(request)
    assert np.array_equal(rows, np.arange(len(ts)))
    assert keep.sum() == 100
    again = fit_rows(request)[1]
    assert np.array_equal(keep, again)
    other_seed = fit_rows(replace(request, cfg=TrainConfig(max_train_rows=100, seed=8)))[1]
    assert not np.array_equal(keep, other_seed)
    assert fit_rows(replace(request, cfg=TrainConfig(max_train_rows=10_000)))[1].all()
