"""Training orchestration on synthetic data: tuning, feature selection, holdout, final fit."""

from __future__ import annotations

import numpy as np
from historical_synthetic import synthetic_training_set

from tickwise.core.fitting import TrainConfig, select_features
from tickwise.core.model import ModelArtifact
from tickwise.core.predictor import Predictor
from tickwise.core.training import model_version
from tickwise.pipelines.historical.train import fit_model


def test_fit_model_keeps_the_informative_feature_and_beats_chance_on_the_holdout() -> None:
    ts = synthetic_training_set(n_bars=3000, n_instruments=2, n_noise=6, seed=4)
    cfg = TrainConfig(folds=2, trials=2, num_boost_round=40, early_stopping_rounds=10, max_train_rows=10_000)
    boosters, names, params, folds, holdout, info = fit_model(ts, cfg)
    assert set(boosters) == {1, -1}
    assert "signal" in names
    assert len(folds) == 2 and info["trials"] == 2
    assert holdout.metrics["auc"] > 0.7
    artifact = ModelArtifact("m-test", boosters, tuple(names), "fs-test", params=params)
    x = ts.x[:, [ts.feature_names.index(n) for n in names]]
    p = Predictor(artifact).predict_matrix(x[:100])
    assert p.shape == (100, 2) and np.all((p > 0) & (p < 1))


def test_feature_selection_keeps_a_minimum_and_drops_zero_gain_features() -> None:
    keep = select_features(["a", "b", "c", "d"], np.array([10.0, 0.0, 5.0, 0.0]), 0.01, 1)
    assert keep.tolist() == [0, 2]
    assert select_features(["a", "b"], np.zeros(2), 0.01, 1).tolist() == [0, 1]


def test_model_version_is_deterministic_and_changes_with_the_inputs() -> None:
    from datetime import datetime

    from tickwise.domain.time import IST

    to = datetime(2026, 11, 23, 15, 29, tzinfo=IST)
    a = model_version(to, {"rows": 10})
    assert a == model_version(to, {"rows": 10}) and a.startswith("m20261123-152900-")
    assert a != model_version(to, {"rows": 11})
