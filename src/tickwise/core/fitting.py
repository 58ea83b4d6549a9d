"""Fitting and measuring the two side models on purged walk-forward folds (labeling.md §9-§10): pure
computation over a ``core.dataset.TrainingSet`` (LightGBM, no I/O).

Inside every fit, early stopping uses the tail of the *training* window (purged against it), never the
evaluation fold. Sample weights are recomputed inside each training window from labels whose t1 lies in
it, then balanced between classes. ``pipelines.historical.tuning`` searches the parameters with Optuna.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace

import lightgbm as lgb
import numpy as np
import pandas as pd

from tickwise.core.cv import (
    Holdout,
    PurgedWalkForward,
    first_at_least,
    holdout_sorted,
    holdout_split,
    is_ascending,
    position_dtype,
    positions_where,
    scan_sorted,
)
from tickwise.core.dataset import FeatureMatrix, TrainingSet
from tickwise.core.fit_jobs import SCORE_WINDOW, BoosterJob, FitRunner, InlineRunner, JobRows, score_matrix
from tickwise.core.metrics import ZerodhaIntradayCosts, side_metrics, signal_pnl
from tickwise.core.model import SIDE_NAMES, SIDES, LgbParams, binned_dataset, lgb_params
from tickwise.core.sample_weights import fold_weights_of
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


class BinnedRows:
    """Binned LightGBM Datasets, one per row set, built once and reused by every fit of the same rows.

    Binning (``lgb.Dataset`` construction: the bin boundaries of every feature, then every value mapped
    to its bin) costs about as much as a fold's boosting, and the same rows are fitted many times: both
    sides of a model (same rows, other labels and weights), every Optuna trial on one cv fold (other
    tree parameters, same bins: ``feature_pre_filter`` is off and the binning parameters are fixed in
    ``BASE_PARAMS``). A fit takes the binned Dataset of its rows from here and sets its own labels and
    weights, which trains exactly the booster a fresh Dataset would (``test_binned_rows.py``).

    Keyed by the feature matrix (held, so its identity cannot be reused), the rows and the columns;
    the ``capacity`` most recently used are kept (a binned Dataset is about rows x columns bytes).
    """

    def __init__(self, capacity: int = 16) -> None:
        if capacity < 1:
            raise ValueError(f"BinnedRows capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.builds = 0
        self.reuses = 0
        self._sets: OrderedDict[tuple[object, ...], tuple[FeatureMatrix, lgb.Dataset]] = OrderedDict()

    def train_set(
        self, x: FeatureMatrix, rows: np.ndarray, cols: np.ndarray, names: list[str]
    ) -> lgb.Dataset:
        """The Dataset of ``x[rows][:, cols]`` (binned on its first fit)."""
        return self._get(
            ("train", *_key(x, rows, cols)), x, lambda: binned_dataset(x[np.ix_(rows, cols)], names)
        )

    def valid_set(
        self, x: FeatureMatrix, rows: np.ndarray, cols: np.ndarray, reference: lgb.Dataset
    ) -> lgb.Dataset:
        """The validation Dataset of ``x[rows][:, cols]``, binned with ``reference``'s bins."""
        return self._get(
            ("valid", id(reference), *_key(x, rows, cols)),
            x,
            lambda: lgb.Dataset(
                np.ascontiguousarray(x[np.ix_(rows, cols)], dtype=np.float64), reference=reference
            ),
        )

    def _get(
        self, key: tuple[object, ...], x: FeatureMatrix, build: Callable[[], lgb.Dataset]
    ) -> lgb.Dataset:
        got = self._sets.get(key)
        if got is not None and got[0] is x:
            self._sets.move_to_end(key)
            self.reuses += 1
            return got[1]
        data = build()
        self.builds += 1
        self._sets[key] = (x, data)
        while len(self._sets) > self.capacity:
            self._sets.popitem(last=False)
        return data


def _key(x: FeatureMatrix, rows: np.ndarray, cols: np.ndarray) -> tuple[object, ...]:
    digest = hashlib.blake2b(np.ascontiguousarray(rows, dtype=np.int64).tobytes(), digest_size=16)
    digest.update(b"|")
    digest.update(np.ascontiguousarray(cols, dtype=np.int64).tobytes())
    return (id(x), x.shape, len(rows), digest.digest())


@dataclass(frozen=True)
class WindowWeights:
    """A training window's weights for one side, kept as what they are made of (issue 15): each
    window row's label (``y``, int8) and weight before the class balance (``base``, float64), and the
    class-balance factors (positive, negative rows), whose sums run over the whole window. :meth:`at`
    gives the weights of the rows a fit keeps: the very values ``training_weights(...)[pos]`` gives,
    since the balance multiplies each weight by its class's factor."""

    y: np.ndarray
    base: np.ndarray
    factors: tuple[float, float] | None = None

    def at(self, pos: np.ndarray | slice = slice(None)) -> np.ndarray:
        w: np.ndarray = self.base[pos]
        if self.factors is None:
            return w
        positive, negative = self.factors
        out: np.ndarray = np.where(self.y[pos] == 1, w * positive, w * negative)
        return out


def window_weights_of(ts: TrainingSet, side: int, rows: np.ndarray, cfg: TrainConfig) -> WindowWeights:
    """:func:`training_weights` before it is applied to every row: the window's labels, base weights and
    class-balance factors; the window's columns are read for ``rows`` only."""
    y = ts.y(side, rows)
    if cfg.recompute_weights and ts.closes:
        w = ts.window_weights(side, rows)  # window_weights of the side's kept columns (issue 15)
        w[~(np.isfinite(w) & (w > 0))] = 1e-6  # in place: np.where(isfinite & > 0, w, 1e-6)'s values
    else:
        w = ts.stored_weight(side, rows)
    factors = None
    if cfg.class_balance:
        pos, total = w[y == 1].sum(), w.sum()
        if 0 < pos < total:
            factors = (0.5 * total / pos, 0.5 * total / (total - pos))
    return WindowWeights(y, w, factors)


class KeptWeights:
    """Each training window's :class:`WindowWeights` per side, made once and reused by every fit of the
    same window and side: the cv folds of every Optuna trial (issue 14: each trial recomputed every
    fold's window weights in the main process). Keyed by the training set (held, so its identity cannot
    be reused), the side, the weight settings and the rows; the ``capacity`` most recently used kept."""

    def __init__(self, capacity: int = 16) -> None:
        if capacity < 1:
            raise ValueError(f"KeptWeights capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.builds = 0
        self.reuses = 0
        self._kept: OrderedDict[tuple[object, ...], tuple[TrainingSet, WindowWeights]] = OrderedDict()

    def of(self, ts: TrainingSet, side: int, rows: np.ndarray, cfg: TrainConfig) -> WindowWeights:
        """``window_weights_of(ts, side, rows, cfg)``, made on the first ask."""
        key = (id(ts), side, cfg.recompute_weights, cfg.class_balance, *_key(ts.x, rows, _NO_COLS))
        got = self._kept.get(key)
        if got is None:
            self.builds += 1
            got = (ts, window_weights_of(ts, side, rows, cfg))
            self._kept[key] = got
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)
        else:
            self.reuses += 1
        self._kept.move_to_end(key)
        return got[1]


_NO_COLS = np.empty(0, dtype=np.int64)


def training_weights(ts: TrainingSet, side: int, rows: np.ndarray, cfg: TrainConfig) -> np.ndarray:
    """Weights of ``rows`` for one side: recomputed in the window (ū × attribution), class-balanced."""
    return window_weights_of(ts, side, rows, cfg).at()


def window_weights(
    labels: pd.DataFrame, rows: np.ndarray, closes: Mapping[tuple[int, str], pd.Series]
) -> np.ndarray:
    """``fold_weights(labels.iloc[rows], closes, <latest t1 of rows>)`` on arrays: the same values bit
    for bit, without a frame of the window's labels (issue 15: the final fit's window is every row)."""
    token = labels["instrument_token"].to_numpy(dtype=np.int64)[rows]
    t0 = pd.DatetimeIndex(labels["time"]).as_unit("ns").asi8[rows]
    t1 = pd.DatetimeIndex(labels["t1"]).as_unit("ns").asi8[rows]
    out = np.full(len(token), np.nan, dtype=np.float64)
    known = t1 != _NAT
    if not known.any():
        return out
    train_end = int(t1[known].max())

    def grids(tf: object, tokens: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        return {
            int(tok): (
                pd.DatetimeIndex(closes[(int(tok), str(tf))].index).as_unit("ns").asi8,
                closes[(int(tok), str(tf))].to_numpy(dtype=np.float64),
            )
            for tok in pd.unique(tokens)
            if (int(tok), str(tf)) in closes
        }

    timeframes, sides = pd.unique(labels["timeframe"].to_numpy()), pd.unique(labels["side"].to_numpy())
    if len(timeframes) == 1 and len(sides) == 1:  # a training set's side: one group, no per-row masks
        return fold_weights_of(token, t0, t1, grids(timeframes[0], token), train_end)
    timeframe = labels["timeframe"].to_numpy()[rows]
    side = labels["side"].to_numpy()[rows]
    for tf in pd.unique(timeframe):
        of_tf = timeframe == tf
        for s in pd.unique(side[of_tf]):
            mine = np.flatnonzero(of_tf & (side == s))
            out[mine] = fold_weights_of(token[mine], t0[mine], t1[mine], grids(tf, token[mine]), train_end)
    return out


_NAT = np.iinfo(np.int64).min  # NaT as int64 nanoseconds


def _subsample(rows: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(rows) <= limit:
        return rows
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=limit, replace=False))


def subsample_positions(n: int, limit: int, seed: int) -> np.ndarray:
    """``_subsample(np.arange(n), limit, seed)`` without the arange: ``rng.choice(n, k)`` draws the same
    positions as ``rng.choice(np.arange(n), k)`` (numpy picks from a population of ``n`` either way and
    gives ``a[picked]``), so a fit keeps the same rows without a position of every window row."""
    if n <= limit:
        return np.arange(n, dtype=position_dtype(n))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=limit, replace=False))


def ascending_rows(rows: np.ndarray) -> np.ndarray:
    """``np.sort(rows)``'s values: ``rows`` itself when it is already ascending (no copy of a window)."""
    rows = np.asarray(rows)
    return rows if is_ascending(rows) else np.sort(rows)


def side_job(
    ts: TrainingSet,
    side: int,
    rows: np.ndarray,
    params: LgbParams,
    cfg: TrainConfig,
    feature_idx: np.ndarray,
    num_boost_round: int | None = None,
    kept: KeptWeights | None = None,
) -> BoosterJob:
    """The fit of one side on ``rows`` (time-sorted) as a job (``kept``: window weights made once for
    every fit of the same rows, e.g. Optuna's trials on one cv fold). With ``num_boost_round`` None, early-stop
    on the purged tail of the window; otherwise train exactly that many rounds on all rows (at most
    ``cfg.max_train_rows`` of them: a seeded subsample).

    Issue 15: only the window's labels and weights (:class:`WindowWeights`) are made per window row;
    the subsample is drawn from counts and positions, and a t0-sorted window's validation tail is cut
    by time bounds (its times read a chunk at a time), so the job is the one the whole-array code made,
    bit for bit."""
    rows = ascending_rows(rows)
    names = [ts.feature_names[i] for i in feature_idx]
    weights = window_weights_of(ts, side, rows, cfg) if kept is None else kept.of(ts, side, rows, cfg)
    full_params = lgb_params(params, cfg.seed)
    if num_boost_round is not None:
        sub = subsample_positions(len(rows), cfg.max_train_rows, cfg.seed)
        r = rows[sub]
        return BoosterJob(
            JobRows(ts.x, r, feature_idx),
            weights.y[sub],
            weights.at(sub),
            names,
            full_params,
            num_boost_round,
        )
    fit_pos, val_pos = _validation_tail(ts, rows, cfg.valid_fraction)
    if len(fit_pos) < 100 or len(val_pos) < 50 or len(np.unique(weights.y[val_pos])) < 2:
        del weights
        return side_job(ts, side, rows, params, cfg, feature_idx, cfg.num_boost_round // 2 or 1, kept)
    fit_pos = _subsample(fit_pos, cfg.max_train_rows, cfg.seed)
    val_pos = _subsample(val_pos, max(cfg.max_train_rows // 4, 1), cfg.seed)
    fr, vr = rows[fit_pos], rows[val_pos]
    return BoosterJob(
        JobRows(ts.x, fr, feature_idx),
        weights.y[fit_pos],
        weights.at(fit_pos),
        names,
        full_params,
        cfg.num_boost_round,
        valid=(JobRows(ts.x, vr, feature_idx), weights.y[val_pos], weights.at(val_pos)),
        early_stopping_rounds=cfg.early_stopping_rounds,
    )


def _validation_tail(
    ts: TrainingSet, rows: np.ndarray, valid_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``rows`` (ascending) of the early-stopping fit and its validation tail: the tail is
    the rows from the ``1 - valid_fraction`` quantile of t0 on, the fit the rows whose t1 ends before it
    (purged). On a t0-sorted training set the quantile is one read and the tail a range (issue 15)."""
    k = int(len(rows) * (1 - valid_fraction))
    if ts.t0_sorted:
        events = ts.events(rows)
        cut = int(events.t0(slice(k, k + 1))[0])
        lo = first_at_least(events, cut)  # t1 < cut implies t0 < cut: every fit row lies before lo
        return positions_where(events, lo, cut), np.arange(lo, len(rows), dtype=position_dtype(len(rows)))
    t0 = ts.read("t0", rows)  # int64 ns of these rows only, not a DatetimeIndex of every row
    t1 = ts.read("t1", rows)
    cut = np.sort(t0)[k]
    return np.flatnonzero(t1 < cut), np.flatnonzero(t0 >= cut)


def fit_side(
    ts: TrainingSet,
    side: int,
    rows: np.ndarray,
    params: LgbParams,
    cfg: TrainConfig,
    feature_idx: np.ndarray,
    num_boost_round: int | None = None,
    binned: BinnedRows | None = None,
) -> tuple[lgb.Booster, int]:
    """Fit one side in this process (:func:`side_job`); returns the booster and the rounds its
    predictions use. With ``binned``, the Datasets of these rows are binned once and shared with every
    other fit given the same ``binned``."""
    job = side_job(ts, side, rows, params, cfg, feature_idx, num_boost_round)
    fitted = InlineRunner(binned).fit(job)
    return fitted.booster, fitted.rounds


def predict_rows(
    booster: lgb.Booster,
    ts: TrainingSet,
    rows: np.ndarray,
    cols: np.ndarray,
    num_iteration: int | None = None,
    window: int = SCORE_WINDOW,
) -> np.ndarray:
    """``booster``'s probabilities of training-set rows ``rows`` (columns ``cols``), gathered and scored
    ``window`` rows at a time (:func:`core.fit_jobs.score_matrix`: equal to one call's, bit for bit)."""
    return score_matrix(booster, lambda i, j: ts.x[np.ix_(rows[i:j], cols)], len(rows), num_iteration, window)


class PendingFold:
    """A fold's two side fits, submitted to a runner; :meth:`finish` measures them once trained."""

    def __init__(
        self,
        ts: TrainingSet,
        train_rows: np.ndarray,
        test_rows: np.ndarray,
        params: LgbParams,
        cfg: TrainConfig,
        feature_idx: np.ndarray,
        fold: int,
        keep_boosters: bool,
        runner: FitRunner,
        kept: KeptWeights | None = None,
    ) -> None:
        self._ts, self._test_rows, self._cfg = ts, test_rows, cfg
        self._feature_idx, self._fold, self._keep = feature_idx, fold, keep_boosters
        self._train_rows = len(train_rows)
        # Worker processes score the test rows where each booster is (its text does not travel back
        # to be scored here); in this process the rows are scored at finish, as before.
        score = None if isinstance(runner, InlineRunner) else JobRows(ts.x, test_rows, feature_idx)
        self.futures = {
            side: runner.submit(
                replace(side_job(ts, side, train_rows, params, cfg, feature_idx, kept=kept), score=score)
            )
            for side in SIDES
        }

    def cancel(self) -> None:
        for future in self.futures.values():
            future.cancel()

    def finish(self) -> FoldResult:
        ts, test_rows, cfg = self._ts, self._test_rows, self._cfg
        metrics: dict[str, float] = {}
        probs: dict[int, np.ndarray] = {}
        importance = np.zeros(len(self._feature_idx))
        best_iterations: dict[int, int] = {}
        boosters: dict[int, lgb.Booster] = {}
        for side in SIDES:
            fitted = self.futures[side].result()
            best = fitted.rounds
            best_iterations[side] = best
            p = fitted.scores
            if p is None:
                p = predict_rows(fitted.booster, ts, test_rows, self._feature_idx, best)
            probs[side] = p
            y = ts.y(side, test_rows)
            for key, value in side_metrics(y, p, cfg.threshold).items():
                metrics[f"{SIDE_NAMES[side]}_{key}"] = value
            importance += fitted.gain
            if self._keep:
                boosters[side] = fitted.booster
        metrics["logloss"] = (metrics["long_logloss"] + metrics["short_logloss"]) / 2
        metrics["auc"] = float(np.nanmean([metrics["long_auc"], metrics["short_auc"]]))
        batch = SignalGenerator(threshold=cfg.threshold).generate(probs[1], probs[-1])
        for key, value in signal_pnl(batch.direction, ts.outcomes(test_rows), cfg.costs).items():
            metrics[key] = value
        metrics["train_rows"] = float(self._train_rows)
        metrics["test_rows"] = float(len(test_rows))
        return FoldResult(self._fold, metrics, importance, best_iterations, boosters)


def evaluate(
    ts: TrainingSet,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    params: LgbParams,
    cfg: TrainConfig,
    feature_idx: np.ndarray,
    fold: int = 0,
    keep_boosters: bool = False,
    binned: BinnedRows | None = None,
    runner: FitRunner | None = None,
) -> FoldResult:
    """Fit both sides on ``train_rows`` and measure them out of sample on ``test_rows``; both sides
    share one binned Dataset of the rows (``binned``: shared further, e.g. across Optuna trials).
    ``runner``: where the two fits train (default: here, one after the other, with ``binned``)."""
    runner = runner or InlineRunner(binned)
    return PendingFold(
        ts, train_rows, test_rows, params, cfg, feature_idx, fold, keep_boosters, runner
    ).finish()


def final_rounds(holdout: FoldResult, cfg: TrainConfig) -> dict[int, int]:
    """Rounds per side of a model trained on all rows: the holdout's early-stopped count (at least 10)."""
    return {side: max(10, int(holdout.best_iterations.get(side, cfg.num_boost_round))) for side in SIDES}


def walk_forward(
    ts: TrainingSet,
    rows: np.ndarray,
    cfg: TrainConfig,
    params: LgbParams,
    feature_idx: np.ndarray | None = None,
    on_fold: Callable[[int, FoldResult], None] | None = None,
    binned: BinnedRows | None = None,
    runner: FitRunner | None = None,
    kept: KeptWeights | None = None,
) -> list[FoldResult]:
    """Purged walk-forward CV over ``rows``; ``on_fold`` may raise (e.g. Optuna pruning) to stop early.
    ``binned`` shares each fold's binned Datasets with later calls (Optuna's trials). ``runner``: where
    the folds' fits train; every fold's fits are submitted at once (they do not depend on each other),
    the results are taken in fold order, and the fits not yet started are cancelled when ``on_fold``
    raises. In this process (the default) a fold is fitted only when its turn comes, as before.
    ``kept`` shares each fold's window weights with later calls (Optuna's trials), as ``binned`` its bins."""
    if feature_idx is None:
        feature_idx = np.arange(len(ts.feature_names))
    runner = runner or InlineRunner(binned)
    cv = PurgedWalkForward(n_splits=cfg.folds, embargo=cfg.embargo_bars, min_train_events=200)
    folds = enumerate(fold_splits(cv, ts, rows))

    def start(k: int, train: np.ndarray, test: np.ndarray | slice) -> PendingFold:
        return PendingFold(ts, rows[train], rows[test], params, cfg, feature_idx, k, False, runner, kept)

    # In this process a fold is planned when its turn comes (a pruned trial plans no later fold, and
    # only one fold's training positions exist at a time); worker processes get every fold at once.
    inline = isinstance(runner, InlineRunner)
    pending = [] if inline else [start(k, *split) for k, split in folds]
    planned = ((k, start(k, *split)) for k, split in folds) if inline else enumerate(pending)
    results = []
    try:
        for k, fold in planned:
            result = fold.finish()
            results.append(result)
            if on_fold is not None:
                on_fold(k, result)
    except BaseException:
        for fold in pending:
            fold.cancel()
        raise
    return results


def fold_splits(
    cv: PurgedWalkForward, ts: TrainingSet, rows: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray | slice]]:
    """``cv.split(ts.t0[rows], ts.t1[rows])``'s folds as positions in ``rows``. On a t0-sorted window
    (a built training set's ascending rows) they are cut as time bounds and counts
    (:meth:`PurgedWalkForward.split_sorted`, issue 15): each test block a range, each fold's training
    positions made when it is reached, the times read a chunk at a time. The blocks are checked and cut
    now (a ``ValueError`` here, as the whole split raised); the folds come one at a time."""
    events = ts.events(rows)
    if scan_sorted(events):
        return cv.split_sorted(events)
    return iter(list(cv.split(ts.t0[rows], ts.t1[rows])))


def holdout_rows(ts: TrainingSet, fraction: float) -> Holdout:
    """``holdout_split(ts.t0, ts.t1, fraction)``: on a t0-sorted training set by time bounds and counts,
    its times read a chunk at a time (:func:`core.cv.holdout_sorted`; the same positions, issue 15)."""
    if scan_sorted(ts.events()):
        return holdout_sorted(ts.events(), fraction)
    return holdout_split(ts.t0, ts.t1, fraction=fraction)


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
