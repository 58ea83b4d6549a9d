"""Fitting and measuring the two side models on purged walk-forward folds (labeling.md §9-§10): pure
computation over a ``core.dataset.TrainingSet`` (LightGBM, no I/O).

Inside every fit, early stopping uses the tail of the *training* window (purged against it), never the
evaluation fold. Sample weights are recomputed inside each training window from labels whose t1 lies in
it, then balanced between classes. ``pipelines.historical.tuning`` searches the parameters with Optuna.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np

from tickwise.core.cv import PurgedWalkForward
from tickwise.core.dataset import TrainingSet
from tickwise.core.metrics import ZerodhaIntradayCosts, side_metrics, signal_pnl
from tickwise.core.model import SIDE_NAMES, SIDES, LgbParams, fit_booster, lgb_params
from tickwise.core.sample_weights import fold_weights
from tickwise.core.signals import SignalGenerator

TUNED_DEFAULTS: LgbParams = {
    "learning_rate": 0.08,
    "num_leaves": 15,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
}


@dataclass(frozen=True)
class TrainConfig:
    folds: int = 4
    trials: int = 8
    num_boost_round: int = 200
    early_stopping_rounds: int = 20
    seed: int = 7
    embargo_bars: int = 10
    max_train_rows: int = 30_000
    holdout_fraction: float = 0.2
    valid_fraction: float = 0.15
    class_balance: bool = True
    recompute_weights: bool = True
    threshold: float = 0.55
    importance_min_share: float = 0.002
    min_features: int = 5
    optuna_storage: str = ""
    study_name: str = "tickwise"
    costs: ZerodhaIntradayCosts = field(default_factory=ZerodhaIntradayCosts)


@dataclass
class FoldResult:
    fold: int
    metrics: dict[str, float]
    importance: np.ndarray  # gain per feature, summed over sides
    best_iterations: dict[int, int]
    boosters: dict[int, lgb.Booster] = field(default_factory=dict)


def training_weights(ts: TrainingSet, side: int, rows: np.ndarray, cfg: TrainConfig) -> np.ndarray:
    """Weights of ``rows`` for one side: recomputed in the window (ū × attribution), class-balanced."""
    y = ts.y(side)[rows]
    if cfg.recompute_weights and ts.closes:
        labels = ts.labels[side].iloc[rows]
        train_end = labels["t1"].max()
        w = fold_weights(labels, ts.closes, train_end).to_numpy(dtype=np.float64)
        w = np.where(np.isfinite(w) & (w > 0), w, 1e-6)
    else:
        w = ts.stored_weight(side)[rows]
    if cfg.class_balance:
        pos, total = w[y == 1].sum(), w.sum()
        if 0 < pos < total:
            w = np.where(y == 1, w * (0.5 * total / pos), w * (0.5 * total / (total - pos)))
    out: np.ndarray = w
    return out


def _subsample(rows: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(rows) <= limit:
        return rows
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=limit, replace=False))


def fit_side(
    ts: TrainingSet,
    side: int,
    rows: np.ndarray,
    params: LgbParams,
    cfg: TrainConfig,
    feature_idx: np.ndarray,
    num_boost_round: int | None = None,
) -> tuple[lgb.Booster, int]:
    """Fit one side on ``rows`` (time-sorted). With ``num_boost_round`` None, early-stop on the purged
    tail of the window; otherwise train exactly that many rounds on all rows."""
    rows = np.sort(rows)
    names = [ts.feature_names[i] for i in feature_idx]
    weights = training_weights(ts, side, rows, cfg)
    y = ts.y(side)
    full_params = lgb_params(params, cfg.seed)
    if num_boost_round is not None:
        sub = _subsample(np.arange(len(rows)), cfg.max_train_rows, cfg.seed)
        r = rows[sub]
        booster = fit_booster(
            ts.x[np.ix_(r, feature_idx)],
            y[r],
            params=full_params,
            num_boost_round=num_boost_round,
            feature_names=names,
            weight=weights[sub],
        )
        return booster, num_boost_round
    t0 = ts.t0.asi8[rows]
    t1 = ts.t1.asi8[rows]
    cut = np.sort(t0)[int(len(rows) * (1 - cfg.valid_fraction))]
    fit_pos = np.flatnonzero(t1 < cut)  # purged against the validation tail
    val_pos = np.flatnonzero(t0 >= cut)
    if len(fit_pos) < 100 or len(val_pos) < 50 or len(np.unique(y[rows[val_pos]])) < 2:
        return fit_side(
            ts, side, rows, params, cfg, feature_idx, num_boost_round=cfg.num_boost_round // 2 or 1
        )
    fit_pos = _subsample(fit_pos, cfg.max_train_rows, cfg.seed)
    val_pos = _subsample(val_pos, max(cfg.max_train_rows // 4, 1), cfg.seed)
    fr, vr = rows[fit_pos], rows[val_pos]
    booster = fit_booster(
        ts.x[np.ix_(fr, feature_idx)],
        y[fr],
        params=full_params,
        num_boost_round=cfg.num_boost_round,
        feature_names=names,
        weight=weights[fit_pos],
        valid=(ts.x[np.ix_(vr, feature_idx)], y[vr], weights[val_pos]),
        early_stopping_rounds=cfg.early_stopping_rounds,
    )
    best = booster.best_iteration or booster.current_iteration()
    return booster, int(best)


def evaluate(
    ts: TrainingSet,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    params: LgbParams,
    cfg: TrainConfig,
    feature_idx: np.ndarray,
    fold: int = 0,
    keep_boosters: bool = False,
) -> FoldResult:
    """Fit both sides on ``train_rows`` and measure them out of sample on ``test_rows``."""
    metrics: dict[str, float] = {}
    probs: dict[int, np.ndarray] = {}
    importance = np.zeros(len(feature_idx))
    best_iterations: dict[int, int] = {}
    boosters: dict[int, lgb.Booster] = {}
    x_test = ts.x[np.ix_(test_rows, feature_idx)]
    for side in SIDES:
        booster, best = fit_side(ts, side, train_rows, params, cfg, feature_idx)
        best_iterations[side] = best
        p = np.asarray(booster.predict(np.ascontiguousarray(x_test), num_iteration=best), dtype=np.float64)
        probs[side] = p
        y = ts.y(side)[test_rows]
        for key, value in side_metrics(y, p, cfg.threshold).items():
            metrics[f"{SIDE_NAMES[side]}_{key}"] = value
        importance += booster.feature_importance(importance_type="gain", iteration=best)
        if keep_boosters:
            boosters[side] = booster
    metrics["logloss"] = (metrics["long_logloss"] + metrics["short_logloss"]) / 2
    metrics["auc"] = float(np.nanmean([metrics["long_auc"], metrics["short_auc"]]))
    batch = SignalGenerator(threshold=cfg.threshold).generate(probs[1], probs[-1])
    for key, value in signal_pnl(batch.direction, ts.outcomes(test_rows), cfg.costs).items():
        metrics[key] = value
    metrics["train_rows"] = float(len(train_rows))
    metrics["test_rows"] = float(len(test_rows))
    return FoldResult(fold, metrics, importance, best_iterations, boosters)


def walk_forward(
    ts: TrainingSet,
    rows: np.ndarray,
    cfg: TrainConfig,
    params: LgbParams,
    feature_idx: np.ndarray | None = None,
    on_fold: Callable[[int, FoldResult], None] | None = None,
) -> list[FoldResult]:
    """Purged walk-forward CV over ``rows``; ``on_fold`` may raise (e.g. Optuna pruning) to stop early."""
    if feature_idx is None:
        feature_idx = np.arange(len(ts.feature_names))
    cv = PurgedWalkForward(n_splits=cfg.folds, embargo=cfg.embargo_bars, min_train_events=200)
    results = []
    for k, (train, test) in enumerate(cv.split(ts.t0[rows], ts.t1[rows])):
        result = evaluate(ts, rows[train], rows[test], params, cfg, feature_idx, fold=k)
        results.append(result)
        if on_fold is not None:
            on_fold(k, result)
    return results


def select_features(
    feature_names: list[str], importance: np.ndarray, min_share: float, min_features: int
) -> np.ndarray:
    """Indices of features whose share of total gain is at least ``min_share`` (at least
    ``min_features`` of the most important are kept), in the original order."""
    total = float(importance.sum())
    if total <= 0:
        return np.arange(len(feature_names))
    share = importance / total
    keep = set(np.flatnonzero(share >= min_share).tolist())
    keep |= set(np.argsort(-importance, kind="stable")[:min_features].tolist())
    return np.array(sorted(keep), dtype=np.int64)
