"""The meta model (labeling.md §6): fitted on out-of-fold primary probabilities inside the training
window, it learns when the primary is right on a planted edge, learns nothing on shuffled labels, sizes
bets the AFML way and round-trips bit-exactly with the model bundle."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from historical_synthetic import planted_edge_training_set

from tickwise.core.dataset import TrainingSet
from tickwise.core.fitting import TUNED_DEFAULTS, TrainConfig, fit_side
from tickwise.core.meta_model import MetaModel, meta_size
from tickwise.core.meta_training import (
    MetaTrainConfig,
    fit_meta_model,
    meta_targets,
    out_of_fold_primary,
    proposals,
)
from tickwise.core.metrics import roc_auc
from tickwise.core.model import SIDES, ModelArtifact
from tickwise.core.predictor import Predictor
from tickwise.core.signal_model import SignalModel
from tickwise.core.signals import SignalGenerator

CFG = TrainConfig(num_boost_round=40, threshold=0.5, embargo_bars=10, max_train_rows=20_000)
META = MetaTrainConfig(cv_folds=3, min_events=100, num_boost_round=60)


def _training_set(shuffle: bool, seed: int = 5) -> TrainingSet:
    return planted_edge_training_set(shuffle, seed)


def _train_and_test(ts: TrainingSet) -> tuple[np.ndarray, np.ndarray]:
    """Training events end (t1) before the cut; the test events start 10 bars after it."""
    cut = ts.t0[int(len(ts) * 0.65)]
    train = np.flatnonzero(ts.t1 < cut)
    test = np.flatnonzero(ts.t0 > cut + pd.Timedelta(minutes=10))
    return train, test


def _oos_meta_auc(ts: TrainingSet) -> tuple[float, int]:
    train, test = _train_and_test(ts)
    idx = np.arange(len(ts.feature_names))
    fit = fit_meta_model(ts, train, CFG, META)
    assert fit.model is not None, fit.note
    x_test = ts.x[test]
    probs = np.column_stack(
        [
            fit_side(ts, s, train, TUNED_DEFAULTS, CFG, idx, num_boost_round=CFG.num_boost_round)[0].predict(
                x_test
            )
            for s in SIDES
        ]
    )
    direction, p_side = proposals(probs, CFG.threshold)
    fired = np.flatnonzero(direction != 0)
    y = meta_targets(ts, test[fired], direction[fired], 0.0)
    p = fit.model.predict(x_test[fired], p_side[fired], direction[fired])
    return roc_auc(y, p), len(fired)


@pytest.mark.slow
def test_meta_model_learns_when_the_primary_is_right_on_the_planted_edge_out_of_sample() -> None:
    auc, events = _oos_meta_auc(_training_set(shuffle=False))
    assert events > 500
    assert auc > 0.6


@pytest.mark.slow
def test_meta_model_on_shuffled_labels_is_chance_out_of_sample_so_nothing_leaks() -> None:
    auc, events = _oos_meta_auc(_training_set(shuffle=True))
    assert events > 500
    assert abs(auc - 0.5) < 0.05


def test_out_of_fold_primary_predictions_come_only_from_models_trained_before_the_fold() -> None:
    ts = _training_set(shuffle=False)
    train, _ = _train_and_test(ts)
    rows, probs = out_of_fold_primary(ts, train, CFG, np.arange(len(ts.feature_names)), folds=3)
    assert len(rows) == len(probs) > 0 and set(rows.tolist()) <= set(train.tolist())
    # Walk-forward: the first time block of the window is never predicted (nothing came before it).
    assert ts.t0[rows].min() > ts.t0[train].min()
    assert np.all((probs > 0) & (probs < 1))


def test_too_few_fired_events_leave_the_window_without_a_meta_model_and_say_why() -> None:
    ts = _training_set(shuffle=False)
    train, _ = _train_and_test(ts)
    fit = fit_meta_model(ts, train[:600], CFG, dataclasses.replace(META, min_events=10_000))
    assert fit.model is None and "fewer than 10000" in fit.note


def test_meta_size_is_the_afml_bet_size_clipped_at_zero_and_discretised() -> None:
    sizes = meta_size([0.5, 0.3, 0.62, 0.9, 1.0], 0.1)
    assert sizes[0] == 0.0 and sizes[1] == 0.0  # below one half: no bet, never the other side
    assert 0.0 < sizes[2] < sizes[3] < sizes[4] == 1.0
    assert np.allclose(sizes * 10, np.round(sizes * 10))


def _artifact_with_meta() -> ModelArtifact:
    ts = _training_set(shuffle=False)
    train, _ = _train_and_test(ts)
    idx = np.arange(len(ts.feature_names))
    boosters = {s: fit_side(ts, s, train, TUNED_DEFAULTS, CFG, idx, num_boost_round=20)[0] for s in SIDES}
    fit = fit_meta_model(ts, train, CFG, META)
    assert fit.model is not None
    return ModelArtifact("m-meta", boosters, tuple(ts.feature_names), "fs-test", meta=fit.model)


def test_the_meta_model_is_saved_with_the_bundle_and_loads_bit_identical() -> None:
    artifact = _artifact_with_meta()
    files = artifact.to_files()
    assert {"meta.txt", "meta.json"} <= set(files)
    loaded = ModelArtifact.from_files(files)
    assert loaded.meta is not None and artifact.meta is not None
    x = np.random.default_rng(1).normal(size=(300, len(artifact.feature_names)))
    side = np.where(np.arange(300) % 2 == 0, 1, -1)
    before = artifact.meta.predict(x, np.full(300, 0.6), side)
    after = loaded.meta.predict(x, np.full(300, 0.6), side)
    assert np.array_equal(before.view(np.int64), after.view(np.int64))
    assert MetaModel.from_files({k: v for k, v in files.items() if not k.startswith("meta")}) is None


def test_scoring_bars_one_at_a_time_gives_the_batch_meta_probability_and_size_exactly() -> None:
    artifact = _artifact_with_meta()
    model = SignalModel(Predictor(artifact), SignalGenerator(threshold=0.5, meta_step=0.1))
    x = np.random.default_rng(2).normal(size=(200, len(artifact.feature_names)))
    together = model.score(x, {})
    assert together.meta_prob is not None and together.meta_size is not None
    fired = together.batch.direction != 0
    assert fired.sum() > 20 and np.all(np.isfinite(together.meta_prob[fired]))
    assert np.all(np.isnan(together.meta_prob[~fired]))
    for i in range(len(x)):
        one = model.score(x[i], {})
        assert one.meta_prob is not None and one.meta_size is not None
        assert np.array_equal(one.meta_prob, together.meta_prob[i : i + 1], equal_nan=True)
        assert np.array_equal(one.meta_size, together.meta_size[i : i + 1], equal_nan=True)


def test_without_a_meta_step_scoring_gives_no_meta_size() -> None:
    artifact = _artifact_with_meta()
    scored = SignalModel(Predictor(artifact), SignalGenerator(threshold=0.5)).score(
        np.zeros((3, len(artifact.feature_names))), {}
    )
    assert scored.meta_size is not None and np.all(np.isnan(scored.meta_size))
