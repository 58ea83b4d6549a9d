"""Binning each row set's LightGBM Dataset once (``core.fitting.BinnedRows``) trains exactly the boosters
that binning afresh for every fit trained: same trees, same text model, for the two sides of a model, for
Optuna's trials on one fold, the holdout, the final fit and the meta model's out-of-fold primaries."""

from __future__ import annotations

import dataclasses

import lightgbm as lgb
import numpy as np
import pytest
from historical_synthetic import synthetic_frames

from tickwise.core.cv import PurgedWalkForward, holdout_split
from tickwise.core.dataset import TrainingSet, build_training_set
from tickwise.core.fitting import TUNED_DEFAULTS, BinnedRows, TrainConfig, evaluate, fit_side
from tickwise.core.meta_training import out_of_fold_primary
from tickwise.core.model import SIDES, LgbParams, binned_dataset, fit_booster, lgb_params
from tickwise.pipelines.historical.train import fit_model
from tickwise.pipelines.historical.tuning import tune

CFG = TrainConfig(
    folds=3, trials=3, num_boost_round=30, early_stopping_rounds=5, max_train_rows=2_500, embargo_bars=10
)
OTHER: LgbParams = {**TUNED_DEFAULTS, "num_leaves": 7, "min_data_in_leaf": 60, "learning_rate": 0.15}


def _training_set() -> TrainingSet:
    features, labels = synthetic_frames(n_bars=1500, n_instruments=3, n_noise=10, seed=11)
    # Some missing values, so the bins' NaN handling is part of what is compared.
    features.loc[features.sample(frac=0.03, random_state=1).index, "noise_0"] = np.nan
    return build_training_set(features, labels, feature_set="fs-test", timeframe="1m")


def _text(booster: lgb.Booster) -> str:
    return booster.model_to_string()


@pytest.fixture(scope="module")
def ts() -> TrainingSet:
    return _training_set()


def test_both_sides_fitted_from_one_binned_dataset_equal_fits_binned_afresh(ts: TrainingSet) -> None:
    rows, idx = np.arange(len(ts)), np.arange(len(ts.feature_names))
    binned = BinnedRows()
    for side in SIDES:
        shared, _ = fit_side(ts, side, rows, TUNED_DEFAULTS, CFG, idx, CFG.num_boost_round, binned)
        fresh, _ = fit_side(ts, side, rows, TUNED_DEFAULTS, CFG, idx, CFG.num_boost_round)
        assert _text(shared) == _text(fresh)
    assert (binned.builds, binned.reuses) == (1, 1)  # subsampled to max_train_rows: the same rows


def test_early_stopped_fits_with_other_tree_parameters_on_reused_bins_equal_fresh_fits(
    ts: TrainingSet,
) -> None:
    # The bins are made under the first parameters (min_data_in_leaf 200) and reused under others
    # (min_data_in_leaf 60): with feature_pre_filter off the bins do not depend on it.
    rows, idx = np.arange(int(len(ts) * 0.7)), np.arange(len(ts.feature_names))
    binned = BinnedRows()
    for params in (TUNED_DEFAULTS, OTHER):
        for side in SIDES:
            shared, best_shared = fit_side(ts, side, rows, params, CFG, idx, binned=binned)
            fresh, best_fresh = fit_side(ts, side, rows, params, CFG, idx)
            assert best_shared == best_fresh
            assert _text(shared) == _text(fresh)
    assert binned.builds == 2 and binned.reuses == 6  # one training and one validation Dataset


def test_the_holdout_evaluation_keeps_the_boosters_a_fresh_fit_of_each_side_gives(ts: TrainingSet) -> None:
    split = holdout_split(ts.t0, ts.t1, fraction=0.2)
    dev, test, idx = np.sort(split.dev_idx), np.sort(split.test_idx), np.arange(len(ts.feature_names))
    result = evaluate(ts, dev, test, OTHER, CFG, idx, keep_boosters=True)
    for side in SIDES:
        fresh, best = fit_side(ts, side, dev, OTHER, CFG, idx)
        assert result.best_iterations[side] == best
        assert _text(result.boosters[side]) == _text(fresh)


def test_optuna_trials_sharing_each_folds_bins_measure_what_fresh_fits_measure(ts: TrainingSet) -> None:
    rows = np.arange(len(ts))
    params, folds, _ = tune(ts, rows, CFG)
    idx = np.arange(len(ts.feature_names))
    cv = PurgedWalkForward(n_splits=CFG.folds, embargo=CFG.embargo_bars, min_train_events=200)
    splits = list(cv.split(ts.t0[rows], ts.t1[rows]))
    assert len(folds) == len(splits) > 0
    for fold, (train, _test) in zip(folds, splits, strict=True):
        importance = np.zeros(len(idx))
        for side in SIDES:
            fresh, best = fit_side(ts, side, rows[train], params, CFG, idx)
            assert fold.best_iterations[side] == best
            importance += fresh.feature_importance(importance_type="gain", iteration=best)
        np.testing.assert_array_equal(fold.importance, importance)


def test_the_final_fit_of_both_sides_equals_fresh_fits_with_the_holdout_rounds(ts: TrainingSet) -> None:
    cfg = dataclasses.replace(CFG, trials=2)
    boosters, names, params, _, holdout, _ = fit_model(ts, cfg)
    selected = np.array([ts.feature_names.index(n) for n in names])
    for side in SIDES:
        rounds = max(10, int(holdout.best_iterations[side]))
        fresh, _ = fit_side(ts, side, np.arange(len(ts)), params, cfg, selected, num_boost_round=rounds)
        assert _text(boosters[side]) == _text(fresh)


def test_out_of_fold_primaries_fitted_on_shared_bins_predict_what_fresh_fits_predict(ts: TrainingSet) -> None:
    rows, idx = np.arange(len(ts)), np.arange(len(ts.feature_names))
    got_rows, got = out_of_fold_primary(ts, rows, CFG, idx, folds=3)
    cv = PurgedWalkForward(n_splits=3, embargo=CFG.embargo_bars, min_train_events=100)
    expected_rows, expected = [], []
    for train, test in cv.split(ts.t0[rows], ts.t1[rows]):
        x_test = ts.x[np.ix_(rows[test], idx)]
        fits = [fit_side(ts, s, rows[train], TUNED_DEFAULTS, CFG, idx, CFG.num_boost_round)[0] for s in SIDES]
        expected_rows.append(rows[test])
        expected.append(np.column_stack([b.predict(x_test, num_threads=1) for b in fits]))
    np.testing.assert_array_equal(got_rows, np.concatenate(expected_rows))
    np.testing.assert_array_equal(got, np.vstack(expected))


def test_a_reused_dataset_drops_the_weights_of_its_previous_fit_when_the_next_has_none() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(800, 4))
    y = (x[:, 0] + rng.normal(size=800) > 0).astype(np.float64)
    params = lgb_params(TUNED_DEFAULTS, 7)
    names = [f"f{j}" for j in range(4)]
    data = binned_dataset(x, names)
    fit_booster(
        data, y, params=params, num_boost_round=5, feature_names=names, weight=rng.uniform(0.1, 3, 800)
    )
    reused = fit_booster(data, y, params=params, num_boost_round=5, feature_names=names, weight=None)
    fresh = fit_booster(x, y, params=params, num_boost_round=5, feature_names=names, weight=None)
    assert _text(reused) == _text(fresh)


def test_lightgbm_refuses_to_reuse_bins_under_another_binning_parameter() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 3))
    y = (x[:, 0] > 0).astype(np.float64)
    names = ["a", "b", "c"]
    data = binned_dataset(x, names)
    fit_booster(data, y, params=lgb_params(TUNED_DEFAULTS, 7), num_boost_round=3, feature_names=names)
    with pytest.raises(lgb.basic.LightGBMError):
        fit_booster(
            data,
            y,
            params={**lgb_params(TUNED_DEFAULTS, 7), "max_bin": 15},
            num_boost_round=3,
            feature_names=names,
        )


def test_the_cache_keeps_only_its_capacity_and_rebuilds_an_evicted_row_set(ts: TrainingSet) -> None:
    binned = BinnedRows(capacity=1)
    idx = np.arange(len(ts.feature_names))
    first = binned.train_set(ts.x, np.arange(100), idx, ts.feature_names)
    binned.train_set(ts.x, np.arange(200), idx, ts.feature_names)
    again = binned.train_set(ts.x, np.arange(100), idx, ts.feature_names)
    assert again is not first and binned.builds == 3 and binned.reuses == 0
    with pytest.raises(ValueError, match="capacity"):
        BinnedRows(capacity=0)
