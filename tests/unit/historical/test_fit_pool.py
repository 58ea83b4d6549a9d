"""Fits trained in worker processes (``bootstrap.fit_pool``, ``compute.fit_workers``) are the fits of
one process, bit for bit: the same text models, rounds and gain importances for single fits, Optuna's
tuning, the holdout, the final fit, the out-of-fold refits and the fold models; bad sizes are refused
and a worker that dies fails the fit with a clear error instead of hanging it."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Iterator

import numpy as np
import pytest
from fit_pool_helpers import (
    assert_a_worker_fits_both_sides_binning_the_rows_once,
    assert_pooled_fits_are_the_process_fits,
    assert_pooled_tuning_is_the_process_tuning,
    assert_same_folds,
)
from historical_synthetic import synthetic_frames
from pydantic import ValidationError

from tickwise.bootstrap.fit_pool import FitPool, WorkerDied, open_fit_pool
from tickwise.config import MAX_DEFAULT_FIT_WORKERS, ComputeSettings, default_fit_workers
from tickwise.core.dataset import TrainingSet, build_training_set
from tickwise.core.fitting import TUNED_DEFAULTS, FoldResult, TrainConfig, evaluate, fit_side, side_job
from tickwise.core.meta_training import MetaTrainConfig, fit_meta_model, out_of_fold_primary
from tickwise.core.model import SIDES
from tickwise.domain.errors import ConfigError
from tickwise.pipelines.historical.oos import _fit_fold
from tickwise.pipelines.historical.train import fit_model

CFG = TrainConfig(
    folds=3, trials=3, num_boost_round=30, early_stopping_rounds=5, max_train_rows=2_500, embargo_bars=10
)


@pytest.fixture(scope="module")
def ts() -> TrainingSet:
    features, labels = synthetic_frames(n_bars=1500, n_instruments=3, n_noise=10, seed=11)
    features.loc[features.sample(frac=0.03, random_state=1).index, "noise_0"] = np.nan
    return build_training_set(features, labels, feature_set="fs-test", timeframe="1m")


@pytest.fixture(scope="module")
def pool() -> Iterator[FitPool]:
    with open_fit_pool(2) as pool:
        yield pool


def test_a_pooled_fit_trains_the_booster_the_process_trains_fixed_and_early_stopped(
    ts: TrainingSet, pool: FitPool
) -> None:
    rows = np.arange(200, len(ts))
    scored = ts.x[np.ix_(rows[:300], np.arange(len(ts.feature_names)))]
    assert_pooled_fits_are_the_process_fits(ts, pool, rows, CFG, (None, 25), scored)


def test_a_job_as_a_worker_receives_it_trains_the_same_booster_and_reuses_its_bins(ts: TrainingSet) -> None:
    from tickwise.bootstrap import fit_pool

    rows = np.arange(len(ts))
    assert_a_worker_fits_both_sides_binning_the_rows_once(ts, rows, CFG)
    job = side_job(ts, -1, rows, TUNED_DEFAULTS, CFG, np.arange(len(ts.feature_names)))
    with pytest.raises(TypeError, match="gathered rows"):
        fit_pool._train_outgoing(job)


def test_tuning_holdout_and_final_fit_through_the_pool_equal_the_single_process_run(
    ts: TrainingSet, pool: FitPool
) -> None:
    rows = np.arange(len(ts))
    params = assert_pooled_tuning_is_the_process_tuning(ts, rows, CFG, pool)
    idx = np.arange(len(ts.feature_names))
    holdout = evaluate(ts, rows[:3000], rows[3200:], params, CFG, idx, keep_boosters=True)
    pooled = evaluate(ts, rows[:3000], rows[3200:], params, CFG, idx, keep_boosters=True, runner=pool)
    assert_same_folds([pooled], [holdout])
    for side in SIDES:
        assert pooled.boosters[side].model_to_string() == holdout.boosters[side].model_to_string()
    cfg = dataclasses.replace(CFG, trials=2)
    boosters, names, params, _, _, info = fit_model(ts, cfg)
    pooled_boosters, pooled_names, pooled_params, _, _, pooled_info = fit_model(ts, cfg, trainer=pool)
    assert (pooled_names, pooled_params, pooled_info) == (names, params, info)
    for side in SIDES:
        assert pooled_boosters[side].model_to_string() == boosters[side].model_to_string()


def test_out_of_fold_refits_and_fold_models_through_the_pool_equal_the_single_process_ones(
    ts: TrainingSet, pool: FitPool
) -> None:
    rows, idx = np.arange(len(ts)), np.arange(len(ts.feature_names))
    got_rows, got = out_of_fold_primary(ts, rows, CFG, idx, folds=3, runner=pool)
    expected_rows, expected = out_of_fold_primary(ts, rows, CFG, idx, folds=3)
    np.testing.assert_array_equal(got_rows, expected_rows)
    np.testing.assert_array_equal(got, expected)
    fold_rows = np.arange(300, len(ts))
    pooled, inline = _fit_fold(ts, fold_rows, CFG, pool), _fit_fold(ts, fold_rows, CFG)
    for side in SIDES:
        assert pooled[side].model_to_string() == inline[side].model_to_string()


def test_a_meta_model_trained_in_the_pool_is_the_meta_model_trained_here(
    ts: TrainingSet, pool: FitPool
) -> None:
    meta = MetaTrainConfig(cv_folds=3, min_events=50, num_boost_round=20)
    rows = np.arange(len(ts))
    inline = fit_meta_model(ts, rows, CFG, meta)
    pooled = fit_meta_model(ts, rows, CFG, meta, runner=pool)
    assert inline.model is not None and pooled.model is not None
    assert (pooled.events, pooled.source) == (inline.events, inline.source)
    assert pooled.model.booster.model_to_string() == inline.model.booster.model_to_string()
    assert pooled.model.metrics == inline.model.metrics


def test_a_pruned_trial_cancels_its_later_folds_and_the_pool_keeps_working(
    ts: TrainingSet, pool: FitPool
) -> None:
    from tickwise.core.fitting import walk_forward

    class Pruned(Exception):
        pass

    def prune(k: int, fold: FoldResult) -> None:
        raise Pruned

    with pytest.raises(Pruned):
        walk_forward(ts, np.arange(len(ts)), CFG, TUNED_DEFAULTS, on_fold=prune, runner=pool)
    idx = np.arange(len(ts.feature_names))
    expected, _ = fit_side(ts, 1, np.arange(len(ts)), TUNED_DEFAULTS, CFG, idx, 10)
    fitted = pool.submit(side_job(ts, 1, np.arange(len(ts)), TUNED_DEFAULTS, CFG, idx, 10)).result()
    assert fitted.booster.model_to_string() == expected.model_to_string()


def test_a_one_class_fit_raises_the_model_error_from_the_worker(ts: TrainingSet, pool: FitPool) -> None:
    from tickwise.domain.errors import ModelError

    idx = np.arange(len(ts.feature_names))
    one_class = np.flatnonzero(ts.y(1) == 1)[:400]
    with pytest.raises(ModelError, match="cannot train a binary model"):
        pool.submit(side_job(ts, 1, one_class, TUNED_DEFAULTS, CFG, idx, 10)).result(timeout=120)


def test_a_worker_that_dies_fails_the_fit_with_a_clear_error_not_a_hang(ts: TrainingSet) -> None:
    idx = np.arange(len(ts.feature_names))
    slow = dataclasses.replace(CFG, max_train_rows=100_000)
    with open_fit_pool(2) as pool:
        future = pool.submit(side_job(ts, 1, np.arange(len(ts)), TUNED_DEFAULTS, slow, idx, 100_000))
        deadline = time.monotonic() + 60
        while not pool.worker_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the worker has taken the job
        for pid in pool.worker_pids():
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerDied, match="fit worker process died"):
            future.result(timeout=60)
        with pytest.raises(WorkerDied):
            pool.submit(side_job(ts, 1, np.arange(len(ts)), TUNED_DEFAULTS, CFG, idx, 5)).result(timeout=60)


def test_fit_workers_below_one_are_refused_and_a_pool_of_one_is_not_a_pool() -> None:
    for bad in (0, -2):
        with pytest.raises(ValidationError, match="fit_workers"):
            ComputeSettings(fit_workers=bad)
    assert ComputeSettings().fit_workers == min(len(os.sched_getaffinity(0)), MAX_DEFAULT_FIT_WORKERS)
    with pytest.raises(ConfigError, match="at least 2 workers"):
        FitPool(1)


def test_the_default_pool_is_the_usable_cpus_and_never_larger_than_the_fits_a_run_has_at_once() -> None:
    pinned = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(pinned)})
        assert (
            default_fit_workers() == 1
        )  # a process pinned to one CPU (taskset, a container) fits in-process
    finally:
        os.sched_setaffinity(0, pinned)
    assert 1 <= default_fit_workers() <= MAX_DEFAULT_FIT_WORKERS
