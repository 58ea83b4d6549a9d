"""Fitting the meta model inside one training window, without leaking the primary's fit (AFML ch. 3, 7).

The meta model learns when the primary model is right, so it must see the primary probabilities the
primary would have given on bars it was *not* trained on. Inside the training window the primary is
therefore refitted on purged walk-forward folds (``core.cv.PurgedWalkForward``, embargo in bars), and
each fold's test events get that fold's prediction: the **out-of-fold** primary probabilities. Events of
the first block have no earlier data to be predicted from and take no part. The primary "fires" on an
event when the signal rule (threshold, larger side) gives a direction; the meta target of a fired event
is its meta-label on that side (``ret > cost_threshold``, labeling.md §6).

Training-only: it reads labels. Scoring needs only ``core.meta_model``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tickwise.core.cv import PurgedWalkForward
from tickwise.core.dataset import TrainingSet
from tickwise.core.fitting import TUNED_DEFAULTS, BinnedRows, TrainConfig, fit_side
from tickwise.core.labels.meta import meta_labels
from tickwise.core.meta_model import META_INPUTS, MetaModel, meta_inputs
from tickwise.core.metrics import roc_auc
from tickwise.core.model import SIDES, LgbParams, fit_booster, lgb_params
from tickwise.core.signals import SignalGenerator

META_PARAMS: LgbParams = {
    "learning_rate": 0.05,
    "num_leaves": 7,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
}


@dataclass(frozen=True, slots=True)
class MetaTrainConfig:
    """``signals.meta``: the out-of-fold folds, the minimum fired events, the meta booster's rounds."""

    cv_folds: int = 3
    min_events: int = 200
    num_boost_round: int = 100
    cost_threshold: float = 0.0
    params: LgbParams = field(default_factory=lambda: dict(META_PARAMS))

    def __post_init__(self) -> None:
        if self.cv_folds < 1:
            raise ValueError(f"meta cv_folds must be >= 1, got {self.cv_folds}")
        if self.min_events < 2:
            raise ValueError(f"meta min_events must be >= 2, got {self.min_events}")
        if self.num_boost_round < 1:
            raise ValueError(f"meta num_boost_round must be >= 1, got {self.num_boost_round}")


@dataclass(frozen=True)
class MetaFit:
    """The fitted meta model (None when the window had too few fired events) and why."""

    model: MetaModel | None
    events: int  # fired out-of-fold events the meta model was (or would have been) fitted on
    note: str = ""


def out_of_fold_primary(
    ts: TrainingSet,
    rows: np.ndarray,
    cfg: TrainConfig,
    feature_idx: np.ndarray,
    folds: int,
    params: LgbParams = TUNED_DEFAULTS,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold (long, short) primary probabilities of the events ``rows``: purged walk-forward folds
    inside ``rows``, each fold's primary fitted only on events whose labels end before the fold starts.

    The fold primaries train like the model they stand in for (``params``, ``cfg.num_boost_round`` rounds,
    ``cfg.max_train_rows``). Returns the rows that got a prediction (sorted) and their ``(n, 2)``
    probabilities."""
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    cv = PurgedWalkForward(n_splits=folds, embargo=cfg.embargo_bars, min_train_events=100)
    got: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    try:
        splits = list(cv.split(ts.t0[rows], ts.t1[rows]))
    except ValueError:  # too few distinct times to cut the folds: no out-of-fold predictions
        splits = []
    for train, test in splits:
        train_rows, test_rows = rows[train], rows[test]
        y_train = [ts.y(s)[train_rows] for s in SIDES]
        if any(len(np.unique(y)) < 2 for y in y_train):
            continue  # a side with one class cannot be fitted on this fold
        x_test = np.ascontiguousarray(ts.x[np.ix_(test_rows, feature_idx)])
        p = np.empty((len(test_rows), len(SIDES)), dtype=np.float64)
        binned = BinnedRows(capacity=1)  # both sides fit the same rows: binned once
        for j, side in enumerate(SIDES):
            booster, rounds = fit_side(
                ts, side, train_rows, params, cfg, feature_idx, cfg.num_boost_round, binned
            )
            p[:, j] = booster.predict(x_test, num_iteration=rounds, num_threads=1)
        got.append(test_rows)
        probs.append(p)
    if not got:
        return np.empty(0, dtype=np.int64), np.empty((0, len(SIDES)), dtype=np.float64)
    order_rows = np.concatenate(got)
    order = np.argsort(order_rows, kind="stable")
    return order_rows[order], np.vstack(probs)[order]


def proposals(probs: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The primary's proposed side per row (−1/0/+1, the signal rule without the regime filter) and the
    probability of that side."""
    direction = SignalGenerator(threshold=threshold).generate(probs[:, 0], probs[:, 1]).direction
    p_side = np.where(direction == 1, probs[:, 0], probs[:, 1])
    return direction.astype(np.int64), p_side


def meta_targets(ts: TrainingSet, rows: np.ndarray, side: np.ndarray, cost_threshold: float) -> np.ndarray:
    """Meta-labels of ``rows`` for their proposed ``side`` (each +1 or −1)."""
    ret = np.where(
        side == 1,
        ts.labels[1]["ret"].to_numpy(dtype=np.float64)[rows],
        ts.labels[-1]["ret"].to_numpy(dtype=np.float64)[rows],
    )
    return meta_labels(ret, cost_threshold).astype(np.int8)


def fit_meta_model(
    ts: TrainingSet,
    rows: np.ndarray,
    cfg: TrainConfig,
    meta: MetaTrainConfig,
    feature_idx: np.ndarray | None = None,
    params: LgbParams = TUNED_DEFAULTS,
) -> MetaFit:
    """Fit the meta model on the training window ``rows`` of a primary model with features
    ``feature_idx`` (default: all of ``ts``), LightGBM ``params`` and proposal threshold ``cfg.threshold``."""
    idx = np.arange(len(ts.feature_names)) if feature_idx is None else np.asarray(feature_idx)
    names = tuple(ts.feature_names[i] for i in idx)
    oof_rows, probs = out_of_fold_primary(ts, rows, cfg, idx, meta.cv_folds, params)
    direction, p_side = proposals(probs, cfg.threshold) if len(oof_rows) else (np.empty(0), np.empty(0))
    fired = np.flatnonzero(direction != 0)
    events = len(fired)
    if events < meta.min_events:
        return MetaFit(None, events, f"{events} fired out-of-fold events, fewer than {meta.min_events}")
    event_rows, side = oof_rows[fired], direction[fired]
    y = meta_targets(ts, event_rows, side, meta.cost_threshold)
    if len(np.unique(y)) < 2:
        return MetaFit(None, events, f"every one of the {events} meta-labels is {int(y[0])}")
    x = meta_inputs(ts.x[np.ix_(event_rows, idx)], p_side[fired], side)
    tuned = {**meta.params, "min_data_in_leaf": max(20, events // 50)}
    booster = fit_booster(
        x,
        y,
        params=lgb_params(tuned, cfg.seed),
        num_boost_round=meta.num_boost_round,
        feature_names=[*names, *META_INPUTS],
    )
    fitted = np.asarray(booster.predict(x, num_threads=1), dtype=np.float64)
    metrics = {
        "meta_train_events": float(events),
        "meta_train_positive_rate": float(y.mean()),
        "meta_train_in_sample_auc": roc_auc(y, fitted),
    }
    return MetaFit(MetaModel(booster=booster, feature_names=names, metrics=metrics), events)
