"""Leakage checks on purged walk-forward CV: permuted labels carry no signal, a planted edge is found."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from historical_synthetic import synthetic_training_set

from tickwise.core.dataset import ArrayColumn
from tickwise.core.fitting import TUNED_DEFAULTS, TrainConfig, walk_forward

CFG = TrainConfig(folds=3, num_boost_round=60, early_stopping_rounds=10, max_train_rows=20_000)


def _mean_auc(ts) -> float:  # type: ignore[no-untyped-def]
    folds = walk_forward(ts, np.arange(len(ts)), CFG, dict(TUNED_DEFAULTS))
    assert len(folds) == CFG.folds
    return float(np.mean([f.metrics["auc"] for f in folds]))


def test_cv_auc_is_chance_when_labels_are_randomly_permuted() -> None:
    ts = synthetic_training_set(n_bars=4000, n_instruments=3, edge=1.0, seed=1)
    rng = np.random.default_rng(5)
    columns = dict(ts.columns)
    for side in (1, -1):
        columns[f"{side}:label"] = ArrayColumn(rng.permutation(ts.label(side, "label")))
    ts = replace(ts, columns=columns)
    auc = _mean_auc(ts)
    assert abs(auc - 0.5) <= 0.03, auc


def test_cv_auc_finds_the_planted_edge() -> None:
    ts = synthetic_training_set(n_bars=4000, n_instruments=3, edge=1.0, seed=1)
    assert _mean_auc(ts) > 0.7


def test_training_rows_never_overlap_the_test_block_in_time() -> None:
    from tickwise.core.cv import PurgedWalkForward

    ts = synthetic_training_set(n_bars=1500, n_instruments=2, seed=2)
    for train, test in PurgedWalkForward(n_splits=3, embargo=10).split(ts.t0, ts.t1):
        assert ts.t1[train].max() < ts.t0[test].min()
