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

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from tickwise.core.cv import PurgedWalkForward, is_ascending
from tickwise.core.dataset import TrainingSet
from tickwise.core.fit_jobs import BoosterJob, FitFuture, FitRunner, InlineRunner, JobRows
from tickwise.core.fitting import (
    TUNED_DEFAULTS,
    BinnedRows,
    TrainConfig,
    ascending_rows,
    fold_splits,
    side_job,
)
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


REFITS = "refits"  # out-of-fold refits of the primary inside the window (out_of_fold_primary)
EARLIER_FOLDS = "earlier folds"  # the out-of-sample scores of the walk-forward fold models before it


@dataclass(frozen=True)
class MetaFit:
    """The fitted meta model (None when the window had too few fired events) and why."""

    model: MetaModel | None
    events: int  # fired out-of-fold events the meta model was (or would have been) fitted on
    note: str = ""
    source: str = REFITS  # where its primary probabilities came from: REFITS or EARLIER_FOLDS


def out_of_fold_primary(
    ts: TrainingSet,
    rows: np.ndarray,
    cfg: TrainConfig,
    feature_idx: np.ndarray,
    folds: int,
    params: LgbParams = TUNED_DEFAULTS,
    rounds: Mapping[int, int] | None = None,
    runner: FitRunner | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold (long, short) primary probabilities of the events ``rows``: purged walk-forward folds
    inside ``rows``, each fold's primary fitted only on events whose labels end before the fold starts.

    The fold primaries train like the model they stand in for (``params``, ``cfg.max_train_rows``, and
    its rounds: ``rounds[side]`` where the primary was trained with an early-stopped round count per
    side, else ``cfg.num_boost_round``). Returns the rows that got a prediction (sorted) and their
    ``(n, 2)`` probabilities. ``runner``: where the refits train (default: here)."""
    rows = ascending_rows(np.asarray(rows))
    cv = PurgedWalkForward(n_splits=folds, embargo=cfg.embargo_bars, min_train_events=100)
    got: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    splits: Iterator[tuple[np.ndarray, np.ndarray | slice]]
    try:  # by time bounds and counts on t0-sorted rows, one fold's positions at a time (issue 15)
        splits = fold_splits(cv, ts, rows)
    except ValueError:  # too few distinct times to cut the folds: no out-of-fold predictions
        splits = iter(())
    # Every fold's two fits are submitted before any is taken: they do not depend on each other, so a
    # runner with worker processes trains them at once (in this process: one after the other).
    inline = runner is None
    pending: list[tuple[np.ndarray, list[FitFuture]]] = []
    for train, test in splits:
        train_rows, test_rows = rows[train], rows[test]
        y_train = [ts.y(s, train_rows) for s in SIDES]
        if any(len(np.unique(y)) < 2 for y in y_train):
            continue  # a side with one class cannot be fitted on this fold
        # in this process both sides fit the same rows: binned once
        fold_runner = InlineRunner(BinnedRows(capacity=1)) if inline else runner
        assert fold_runner is not None
        # Worker processes score the fold's test rows where each booster is (rows of a spilled load:
        # the same bytes as here), so they are not scored in this process; here they are, as before.
        score = None if inline else JobRows(ts.x, test_rows, feature_idx)
        futures = [
            fold_runner.submit(
                replace(
                    side_job(
                        ts,
                        side,
                        train_rows,
                        params,
                        cfg,
                        feature_idx,
                        cfg.num_boost_round if rounds is None else rounds[side],
                    ),
                    score=score,
                )
            )
            for side in SIDES
        ]
        pending.append((test_rows, futures))
    try:
        for test_rows, futures in pending:
            x_test: np.ndarray | None = None  # gathered only for a side the worker did not score
            p = np.empty((len(test_rows), len(SIDES)), dtype=np.float64)
            for j, future in enumerate(futures):
                fitted = future.result()
                if fitted.scores is not None:
                    p[:, j] = fitted.scores
                    continue
                if x_test is None:
                    x_test = np.ascontiguousarray(ts.x[np.ix_(test_rows, feature_idx)])
                p[:, j] = fitted.booster.predict(x_test, num_iteration=fitted.rounds, num_threads=1)
            got.append(test_rows)
            probs.append(p)
    except BaseException:
        for _, futures in pending:
            for future in futures:
                future.cancel()
        raise
    if not got:
        return np.empty(0, dtype=np.int64), np.empty((0, len(SIDES)), dtype=np.float64)
    order_rows = np.concatenate(got)
    if is_ascending(order_rows):  # the test blocks of sorted rows come in order: nothing to reorder
        return order_rows, np.vstack(probs)
    order = np.argsort(order_rows, kind="stable")
    return order_rows[order], np.vstack(probs)[order]


def earlier_out_of_sample(
    rows: np.ndarray, scored: Sequence[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Of the events that earlier walk-forward fold models scored out of sample (``scored``: each fold's
    event rows and their ``(n, 2)`` probabilities), those among the training window's ``rows``: the rows
    (sorted) and their probabilities. Each was predicted by a model trained only on labels that ended
    before the event (plus the embargo): genuinely out-of-sample primary probabilities."""
    if not scored:
        return np.empty(0, dtype=np.int64), np.empty((0, len(SIDES)), dtype=np.float64)
    got = np.concatenate([np.asarray(r, dtype=np.int64) for r, _ in scored])
    probs = np.vstack([p for _, p in scored])
    keep = np.flatnonzero(np.isin(got, rows))
    order = keep[np.argsort(got[keep], kind="stable")]
    return got[order], probs[order]


def proposals(probs: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The primary's proposed side per row (−1/0/+1, the signal rule without the regime filter) and the
    probability of that side."""
    direction = SignalGenerator(threshold=threshold).generate(probs[:, 0], probs[:, 1]).direction
    p_side = np.where(direction == 1, probs[:, 0], probs[:, 1])
    return direction.astype(np.int64), p_side


def _fired(probs: np.ndarray, threshold: float) -> int:
    return int((proposals(probs, threshold)[0] != 0).sum()) if len(probs) else 0


def meta_targets(ts: TrainingSet, rows: np.ndarray, side: np.ndarray, cost_threshold: float) -> np.ndarray:
    """Meta-labels of ``rows`` for their proposed ``side`` (each +1 or −1)."""
    ret = np.where(side == 1, ts.label(1, "ret", rows), ts.label(-1, "ret", rows))
    return meta_labels(ret, cost_threshold).astype(np.int8)


def fit_meta_model(
    ts: TrainingSet,
    rows: np.ndarray,
    cfg: TrainConfig,
    meta: MetaTrainConfig,
    feature_idx: np.ndarray | None = None,
    params: LgbParams = TUNED_DEFAULTS,
    rounds: Mapping[int, int] | None = None,
    earlier: tuple[np.ndarray, np.ndarray] | None = None,
    runner: FitRunner | None = None,
) -> MetaFit:
    """Fit the meta model on the training window ``rows`` of a primary model with features
    ``feature_idx`` (default: all of ``ts``), LightGBM ``params``, rounds per side ``rounds`` (default
    ``cfg.num_boost_round``) and proposal threshold ``cfg.threshold``.

    ``earlier``: out-of-sample primary probabilities of events of the window already made by earlier
    walk-forward fold models (:func:`earlier_out_of_sample`). When they give at least
    ``meta.min_events`` fired events, the meta model learns from them and no primary is refitted;
    otherwise (the first fold models) from the out-of-fold refits of :func:`out_of_fold_primary`, which
    ``runner`` trains (default: in this process)."""
    idx = np.arange(len(ts.feature_names)) if feature_idx is None else np.asarray(feature_idx)
    names = tuple(ts.feature_names[i] for i in idx)
    source = REFITS
    oof_rows, probs = np.empty(0, dtype=np.int64), np.empty((0, len(SIDES)))
    if earlier is not None and _fired(earlier[1], cfg.threshold) >= meta.min_events:
        (oof_rows, probs), source = earlier, EARLIER_FOLDS
    if source == REFITS:
        oof_rows, probs = out_of_fold_primary(ts, rows, cfg, idx, meta.cv_folds, params, rounds, runner)
    direction, p_side = proposals(probs, cfg.threshold) if len(oof_rows) else (np.empty(0), np.empty(0))
    fired = np.flatnonzero(direction != 0)
    events = len(fired)
    if events < meta.min_events:
        note = f"{events} fired out-of-fold events, fewer than {meta.min_events}"
        return MetaFit(None, events, note, source)
    event_rows, side = oof_rows[fired], direction[fired]
    y = meta_targets(ts, event_rows, side, meta.cost_threshold)
    if len(np.unique(y)) < 2:
        return MetaFit(None, events, f"every one of the {events} meta-labels is {int(y[0])}", source)
    x = meta_inputs(ts.x[np.ix_(event_rows, idx)], p_side[fired], side)
    tuned = {**meta.params, "min_data_in_leaf": max(20, events // 50)}
    meta_names, meta_params = [*names, *META_INPUTS], lgb_params(tuned, cfg.seed)
    if runner is None:
        booster = fit_booster(
            x, y, params=meta_params, num_boost_round=meta.num_boost_round, feature_names=meta_names
        )
    else:  # the same fit as a job (unit weights are no weights: core.model._set_targets)
        whole = JobRows(x, np.arange(x.shape[0]), np.arange(x.shape[1]))
        job = BoosterJob(whole, y, np.ones(len(y)), meta_names, meta_params, meta.num_boost_round)
        booster = runner.submit(job).result().booster
    fitted = np.asarray(booster.predict(x, num_threads=1), dtype=np.float64)
    metrics = {
        "meta_train_events": float(events),
        "meta_train_positive_rate": float(y.mean()),
        "meta_train_in_sample_auc": roc_auc(y, fitted),
    }
    return MetaFit(MetaModel(booster=booster, feature_names=names, metrics=metrics), events, source=source)
