"""How far ``lightgbm.dask`` training matches single-machine training, measured on the same folds.

For every purged walk-forward fold of a training set and both sides, one booster is trained in this
process (``core.model.fit_booster``) and one on a Dask cluster (``adapters.dask.lgbm.fit_distributed``,
one partition per instrument), with the same parameters, rows, weights and number of rounds (no early
stopping, no subsample: the comparison isolates the distributed fit). Both predict the fold's test rows;
the figures are the out-of-sample AUCs and their difference, and the largest probability difference.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import numpy as np

from tickwise.adapters.dask.lgbm import Partition, fit_distributed
from tickwise.core.cv import PurgedWalkForward
from tickwise.core.dataset import TrainingSet
from tickwise.core.fitting import TUNED_DEFAULTS, TrainConfig, training_weights
from tickwise.core.metrics import roc_auc
from tickwise.core.model import SIDE_NAMES, SIDES, fit_booster, lgb_params

__all__ = ["compare_distributed_training"]


def _partition(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Partition:
    return Partition(x, y, w)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc(y, p))


def compare_distributed_training(
    ts: TrainingSet, cfg: TrainConfig, client: object, *, rounds: int = 100
) -> dict[str, Any]:
    """Single-machine and Dask boosters on the same folds (module doc); figures per fold and side."""
    params = lgb_params(TUNED_DEFAULTS, cfg.seed)
    unbalanced = replace(cfg, class_balance=False)  # fit_distributed balances over all partitions
    cv = PurgedWalkForward(n_splits=cfg.folds, embargo=cfg.embargo_bars, min_train_events=200)
    rows = np.arange(len(ts))
    folds: list[dict[str, Any]] = []
    for k, (train, test) in enumerate(cv.split(ts.t0, ts.t1)):
        x_test = np.ascontiguousarray(ts.x[test])
        for side in SIDES:
            y = ts.y(side)
            single = fit_booster(
                ts.x[train],
                y[train],
                params=params,
                num_boost_round=rounds,
                feature_names=ts.feature_names,
                weight=training_weights(ts, side, rows[train], cfg),
            )
            raw = training_weights(ts, side, rows[train], unbalanced)
            tokens = ts.token[train]
            loads = [
                functools.partial(
                    _partition, ts.x[train][tokens == t], y[train][tokens == t], raw[tokens == t]
                )
                for t in np.unique(tokens)
            ]
            dist = fit_distributed(
                client, loads, params=params, num_boost_round=rounds, feature_names=ts.feature_names
            )
            p_single = np.asarray(single.predict(x_test), dtype=np.float64)
            p_dist = np.asarray(dist.predict(x_test), dtype=np.float64)
            auc_single, auc_dist = _auc(y[test], p_single), _auc(y[test], p_dist)
            folds.append(
                {
                    "fold": k,
                    "side": SIDE_NAMES[side],
                    "train_rows": len(train),
                    "test_rows": len(test),
                    "partitions": len(loads),
                    "auc_single": round(auc_single, 5),
                    "auc_dask": round(auc_dist, 5),
                    "auc_diff": round(auc_dist - auc_single, 5),
                    "max_abs_prob_diff": round(float(np.max(np.abs(p_dist - p_single))), 5),
                }
            )
    diffs = np.array([f["auc_diff"] for f in folds], dtype=np.float64)
    return {
        "folds": folds,
        "mean_auc_single": round(float(np.nanmean([f["auc_single"] for f in folds])), 5),
        "mean_auc_dask": round(float(np.nanmean([f["auc_dask"] for f in folds])), 5),
        "mean_abs_auc_diff": round(float(np.nanmean(np.abs(diffs))), 5),
        "max_abs_auc_diff": round(float(np.nanmax(np.abs(diffs))), 5),
    }
