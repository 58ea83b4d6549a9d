"""Checks that fits through the fit pool (``bootstrap.fit_pool``) are the fits of this process, bit for
bit, shared by the pool's tests on rows in memory and on spilled rows (sent by reference)."""

from __future__ import annotations

import pickle

import numpy as np

from tickwise.bootstrap import fit_pool
from tickwise.bootstrap.fit_pool import FitPool
from tickwise.core.dataset import TrainingSet
from tickwise.core.fitting import TUNED_DEFAULTS, FoldResult, LgbParams, TrainConfig, fit_side, side_job
from tickwise.core.model import SIDES
from tickwise.pipelines.historical.tuning import tune


def assert_same_folds(got: list[FoldResult], expected: list[FoldResult]) -> None:
    """The same folds: best iterations, gain importances and metrics (NaN equal to NaN), exactly."""
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected, strict=True):
        assert a.best_iterations == b.best_iterations
        np.testing.assert_array_equal(a.importance, b.importance)
        assert a.metrics.keys() == b.metrics.keys()
        for key in a.metrics:
            assert a.metrics[key] == b.metrics[key] or (np.isnan(a.metrics[key]) and np.isnan(b.metrics[key]))


def assert_pooled_fits_are_the_process_fits(
    ts: TrainingSet,
    pool: FitPool,
    rows: np.ndarray,
    cfg: TrainConfig,
    rounds: tuple[int | None, ...],
    scored: np.ndarray | None = None,
) -> None:
    """Each side's fit of ``rows`` in the pool, for each of ``rounds`` (``None``: early-stopped), is the
    fit of this process: the text model, the rounds, the gains and (of ``scored`` rows' first
    columns, when given) the scores."""
    idx = np.arange(len(ts.feature_names))
    for side in SIDES:
        for fixed in rounds:
            expected, used = fit_side(ts, side, rows, TUNED_DEFAULTS, cfg, idx, fixed)
            fitted = pool.submit(side_job(ts, side, rows, TUNED_DEFAULTS, cfg, idx, fixed)).result(
                timeout=120
            )
            assert fitted.booster.model_to_string() == expected.model_to_string()
            assert fitted.rounds == used
            np.testing.assert_array_equal(
                fitted.gain, expected.feature_importance(importance_type="gain", iteration=used)
            )
            if scored is not None:
                np.testing.assert_array_equal(
                    fitted.booster.predict(scored, num_iteration=used),
                    expected.predict(scored, num_iteration=used),
                )


def assert_a_worker_fits_both_sides_binning_the_rows_once(
    ts: TrainingSet, rows: np.ndarray, cfg: TrainConfig
) -> None:
    """Both sides' jobs, pickled as the pool sends them and trained as a worker trains them, are the
    fits of this process, and the worker binned the rows once (a training and a validation Dataset)."""
    idx = np.arange(len(ts.feature_names))
    fit_pool._BINS.clear()
    for side in SIDES:
        job = side_job(ts, side, rows, TUNED_DEFAULTS, cfg, idx)
        sent = pickle.loads(pickle.dumps(fit_pool._Outgoing(job)))
        assert isinstance(sent, fit_pool._Sent) and sent.valid is not None
        fitted = fit_pool._train_outgoing(sent)
        expected, used = fit_side(ts, side, rows, TUNED_DEFAULTS, cfg, idx)
        assert fitted.booster.model_to_string() == expected.model_to_string()
        assert fitted.rounds == used
    assert len(fit_pool._BINS) == 2


def assert_pooled_tuning_is_the_process_tuning(
    ts: TrainingSet, rows: np.ndarray, cfg: TrainConfig, pool: FitPool
) -> LgbParams:
    """Optuna's tuning with its folds fitted in the pool is the tuning of this process (parameters,
    pruned trials, folds); the tuned parameters."""
    params, folds, pruned = tune(ts, rows, cfg)
    pooled_params, pooled_folds, pooled_pruned = tune(ts, rows, cfg, runner=pool)
    assert (pooled_params, pooled_pruned) == (params, pruned)
    assert_same_folds(pooled_folds, folds)
    return params
