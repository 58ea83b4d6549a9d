"""A walk-forward fold's meta model learns from the out-of-sample probabilities the earlier fold models
gave the events of its window (no primary refitted), falls back to out-of-fold refits while there are
too few, and still learns nothing from shuffled labels: no leak."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from historical_synthetic import planted_edge_training_set

from tickwise.core.dataset import TrainingSet
from tickwise.core.fitting import TUNED_DEFAULTS, TrainConfig, fit_side
from tickwise.core.meta_training import (
    EARLIER_FOLDS,
    REFITS,
    MetaTrainConfig,
    earlier_out_of_sample,
    fit_meta_model,
    meta_targets,
    out_of_fold_primary,
    proposals,
)
from tickwise.core.metrics import roc_auc
from tickwise.core.model import SIDES

CFG = TrainConfig(num_boost_round=30, threshold=0.5, embargo_bars=10, max_train_rows=20_000)
META = MetaTrainConfig(cv_folds=3, min_events=100, num_boost_round=40)


def _training_set(shuffle: bool, seed: int = 5) -> TrainingSet:
    return planted_edge_training_set(shuffle, seed)


def _window(ts: TrainingSet, share: float, after: pd.Timestamp | None = None) -> np.ndarray:
    """Events whose label ends before the ``share`` point of the timeline (and start after ``after``)."""
    cut = ts.t0[int(len(ts) * share)]
    keep = ts.t1 < cut
    if after is not None:
        keep &= ts.t0 > after
    return np.flatnonzero(keep)


def _primary(ts: TrainingSet, rows: np.ndarray, score: np.ndarray) -> np.ndarray:
    idx = np.arange(len(ts.feature_names))
    fits = [fit_side(ts, s, rows, TUNED_DEFAULTS, CFG, idx, CFG.num_boost_round)[0] for s in SIDES]
    return np.column_stack([b.predict(ts.x[score], num_threads=1) for b in fits])


def _walk_forward_meta_auc(ts: TrainingSet) -> tuple[float, str, int]:
    """Fold A trains on the first 40 %, scores 40-65 %; fold B trains on the first 65 % and takes A's
    scores of its window as its meta model's primary probabilities; B is measured on the last 35 %."""
    embargo = pd.Timedelta(minutes=CFG.embargo_bars)
    rows_a = _window(ts, 0.4)
    scored_a = np.flatnonzero(ts.t0 > ts.t1[rows_a].max() + embargo)
    scored_a = scored_a[ts.t0[scored_a] < ts.t0[int(len(ts) * 0.65)]]
    rows_b = _window(ts, 0.65)
    earlier = earlier_out_of_sample(rows_b, [(scored_a, _primary(ts, rows_a, scored_a))])
    fit = fit_meta_model(ts, rows_b, CFG, META, earlier=earlier)
    assert fit.model is not None, fit.note
    test = np.flatnonzero(ts.t0 > ts.t1[rows_b].max() + embargo)
    probs = _primary(ts, rows_b, test)
    direction, p_side = proposals(probs, CFG.threshold)
    fired = np.flatnonzero(direction != 0)
    y = meta_targets(ts, test[fired], direction[fired], 0.0)
    p = fit.model.predict(ts.x[test[fired]], p_side[fired], direction[fired])
    return roc_auc(y, p), fit.source, len(fired)


def test_earlier_out_of_sample_keeps_only_the_windows_events_in_time_order() -> None:
    scored = [
        (np.array([7, 3, 9]), np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])),
        (np.array([12]), np.ones((1, 2))),
    ]
    rows, probs = earlier_out_of_sample(np.arange(10), scored)
    np.testing.assert_array_equal(rows, [3, 7, 9])
    np.testing.assert_array_equal(probs, [[0.3, 0.4], [0.1, 0.2], [0.5, 0.6]])
    empty_rows, empty_probs = earlier_out_of_sample(np.arange(10), [])
    assert empty_rows.shape == (0,) and empty_probs.shape == (0, 2)


def test_the_meta_model_of_a_later_fold_learns_from_the_earlier_folds_scores_and_finds_the_edge() -> None:
    auc, source, events = _walk_forward_meta_auc(_training_set(shuffle=False))
    assert source == EARLIER_FOLDS and events > 300
    assert auc > 0.6


@pytest.mark.slow
def test_on_shuffled_labels_the_earlier_folds_meta_model_is_chance_out_of_sample() -> None:
    auc, source, events = _walk_forward_meta_auc(_training_set(shuffle=True))
    assert source == EARLIER_FOLDS and events > 300
    assert abs(auc - 0.5) < 0.06


def test_too_few_earlier_scores_fall_back_to_out_of_fold_refits_of_the_window() -> None:
    ts = _training_set(shuffle=False)
    rows = _window(ts, 0.6)
    few = earlier_out_of_sample(rows, [(rows[-50:], np.full((50, 2), [0.9, 0.1]))])
    fit = fit_meta_model(ts, rows, CFG, META, earlier=few)
    refits = fit_meta_model(ts, rows, CFG, META)
    assert fit.source == refits.source == REFITS
    assert fit.model is not None and refits.model is not None
    assert fit.model.metrics == refits.model.metrics


def test_out_of_fold_primaries_train_with_the_rounds_given_per_side() -> None:
    ts = _training_set(shuffle=False)
    rows, idx = _window(ts, 0.6), np.arange(len(ts.feature_names))
    cfg = dataclasses.replace(CFG, num_boost_round=60)
    default = out_of_fold_primary(ts, rows, cfg, idx, folds=3)
    same = out_of_fold_primary(ts, rows, cfg, idx, folds=3, rounds={1: 60, -1: 60})
    fewer = out_of_fold_primary(ts, rows, cfg, idx, folds=3, rounds={1: 5, -1: 60})
    np.testing.assert_array_equal(default[1], same[1])
    assert not np.array_equal(default[1][:, 0], fewer[1][:, 0])
    np.testing.assert_array_equal(default[1][:, 1], fewer[1][:, 1])
