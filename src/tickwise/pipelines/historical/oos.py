"""Out-of-sample history: walk-forward fold models write the historical signals.

``tickwise historical`` never lets a model score the bars it was trained on. Every signal timeframe
(``trading.signal_timeframes``) gets its own schedule and fold models, over its own features and labels
(the embargo is ``embargo_bars`` bars of that timeframe); then the ensemble (``ensemble.py``) is trained
walk-forward on the fold models' out-of-sample probabilities. The schedule
(:mod:`tickwise.core.walk_forward`) refits one fold model every ``refit_every_sessions`` sessions; each
scores only the bars strictly after its training labels' last ``t1`` plus the embargo, up to where the
next fold model takes over. Every fold model is a ``models`` row with status ``fold`` (its training
window in ``trained_from``/``trained_to``, the embargo in ``params.embargo_seconds``, its score window in
``params``), an artifact, an MLflow run and a ``trained`` event; every signal it writes names it and has
``sample = 'oos'``.

Fold models are deliberately cheap: fixed LightGBM parameters (``tuning.TUNED_DEFAULTS``), a fixed number
of rounds, at most ``max_train_rows`` rows per side, all candidate features. Optuna tunes only the
champion candidate trained on the whole history (``train.py``). A fold's version is a hash of what it
was trained on, so a re-run reuses it and the signal upserts change nothing.

Regimes: with ``options.regime`` set, each fold also fits its regime layer (``core.regime``: Gaussian HMM)
on the bars of its own training window only, saved in its artifact; the layer's filtered columns are
added to every bar (one causal recursion per instrument and session) and are model inputs for the fold's
training events and for the bars it scores (:func:`with_bar_regime`).

Data: each timeframe's bars, labels and training set are loaded once (``train.TrainingLoads``: the
champion candidate's load of the same timeframe and window is reused, not re-read); a fold's score
window is built as a frame from the bars' arrays only for its own rows.

Pipelined (issue 14): fold k+1 is begun (its regime layer fitted, its two sides submitted to the
trainer) as soon as fold k's meta model is trained, so with ``compute.fit_workers`` worker processes
its sides train while this process collects fold k, scores its window and writes its model, signals
and meta-labels. A fit depends only on its rows and parameters, so the models are the same in any order.
The regime layers depend only on the bars and the schedule: with worker processes each fold's layer
(its HMM fit and its columns of every bar) is started :data:`LAYERS_AHEAD` folds before the fold is
begun, in a worker, and this process only collects it (:class:`_FoldLayers`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta

import lightgbm as lgb
import numpy as np
import pandas as pd

from tickwise.core.dataset import Bars, KeptLabels, TrainingSet
from tickwise.core.ensemble import MEMBER_COLUMNS
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.fit_jobs import TaskFuture, start_task
from tickwise.core.fitting import TUNED_DEFAULTS, BinnedRows, TrainConfig
from tickwise.core.labels import primary_meta_labels
from tickwise.core.meta_training import (
    MetaFit,
    MetaTrainConfig,
    earlier_out_of_sample,
    fit_meta_model,
    meta_targets,
    proposals,
)
from tickwise.core.metrics import roc_auc, signal_pnl
from tickwise.core.model import SIDES, ModelArtifact
from tickwise.core.predictor import Predictor
from tickwise.core.regime import RegimeLayer, RegimeSpec, layer_of
from tickwise.core.side_fit import FitSource, InProcessTrainer, SideFit, runner_of, start_sides
from tickwise.core.signals import SignalGenerator, signal_ready
from tickwise.core.timeframe_features import calculator_for
from tickwise.core.training import json_safe, model_version
from tickwise.core.walk_forward import WalkForwardSpec, WalkForwardStep, assign_steps, walk_forward_schedule
from tickwise.domain.errors import ModelError
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.context import HistoricalPorts
from tickwise.pipelines.historical.predict import signals_frame
from tickwise.pipelines.historical.regimes import (
    BarsLayerFit,
    FittedLayer,
    regime_columns_of,
    regime_comparison,
    with_bar_regime,
    with_fitted_layer,
)
from tickwise.pipelines.historical.train import TrainingLoads, labels_frame
from tickwise.pipelines.models import load_model, signal_generator
from tickwise.ports.booster_trainer import BoosterTrainer
from tickwise.ports.experiment_tracker import ExperimentTracker
from tickwise.ports.repositories import ModelRecord

Progress = Callable[[str, float, float], None]


def _noop(stage: str, done: float, total: float) -> None:
    pass


@dataclass
class FoldOutcome:
    model_version: str
    step: int
    trained_from: datetime
    trained_to: datetime
    score_from: datetime
    score_to: datetime | None
    reused: bool
    rows: int = 0
    metrics: dict[str, object] = field(default_factory=dict)


@dataclass
class OosOutcome:
    """The primary signal timeframe's out-of-sample history (the fields), the other timeframes' in
    ``timeframes`` and the ensemble's in ``ensemble``."""

    folds: list[FoldOutcome] = field(default_factory=list)
    rows: int = 0
    longs: int = 0
    shorts: int = 0
    embargo: timedelta = timedelta(0)
    metrics: dict[str, float] = field(default_factory=dict)  # pooled over every scored, labelled bar
    # Pooled label-outcome P&L by regime state, and without vs with signals.regime_filter (regimes.py).
    regimes: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0
    meta_labels: int = 0  # labels.meta set from the fold models' signals
    note: str = ""
    timeframe: str = "1m"
    timeframes: dict[str, OosOutcome] = field(default_factory=dict)  # the other signal timeframes
    ensemble: OosOutcome | None = None

    def versions(self) -> set[str]:
        """Every fold model of this history: each timeframe's and the ensemble's."""
        out = {f.model_version for f in self.folds}
        for other in (*self.timeframes.values(), *([self.ensemble] if self.ensemble else [])):
            out |= other.versions()
        return out


@dataclass(frozen=True, slots=True)
class OosOptions:
    """The walk-forward schedule and the fixed fold training (built from ``walk_forward:`` in bootstrap).

    ``schedule.embargo`` is ``model_training.embargo_bars`` bars of the signal timeframe as wall-clock
    time; ``fold`` carries the fixed rounds, row cap, seed and signal threshold of the fold models.
    """

    schedule: WalkForwardSpec = field(default_factory=WalkForwardSpec)
    fold: TrainConfig = field(default_factory=TrainConfig)

    @property
    def embargo(self) -> timedelta:
        value: timedelta = self.schedule.embargo.to_pytimedelta()
        return value


# Folds whose regime layers are started before the fold is begun: enough for a layer to be through
# the pool's queue (behind the boosters' jobs submitted before it) and fitted by the time its fold
# begins, few enough that a partly reused history fits few layers it does not need.
LAYERS_AHEAD = 2


class _FoldLayers:
    """Each fresh fold's regime layer (:class:`BarsLayerFit`), started by the trainer's workers up to
    :data:`LAYERS_AHEAD` folds ahead when it runs tasks; in one process each is fitted when taken,
    where and when the fold is begun, as before."""

    def __init__(self, trainer: object, bars: Bars, steps: list[WalkForwardStep], spec: RegimeSpec) -> None:
        self._trainer, self._bars, self._steps, self._spec = trainer, bars, steps, spec
        self._started: dict[int, TaskFuture[FittedLayer]] = {}
        self._next = 0  # the first fold whose layer is not started yet

    def take(self, k: int) -> FittedLayer:
        """Fold ``k``'s layer, once its fit is done; the next folds' layers are started meanwhile."""
        while self._next <= min(k + LAYERS_AHEAD, len(self._steps) - 1):
            step = self._steps[self._next]
            task = BarsLayerFit(
                self._bars, step.trained_from.to_pydatetime(), step.trained_to.to_pydatetime(), self._spec
            )
            self._started[self._next] = start_task(self._trainer, task)
            self._next += 1
        return self._started.pop(k).result()

    def close(self) -> None:
        """Drop the layers started for folds that were stored already (or never begun)."""
        for future in self._started.values():
            future.cancel()
        self._started.clear()


def _fit_fold(
    ts: TrainingSet,
    rows: np.ndarray,
    cfg: TrainConfig,
    trainer: BoosterTrainer[SideFit] | None = None,
    source: FitSource | None = None,
) -> dict[int, lgb.Booster]:
    """Both sides of a fold model: fixed parameters and rounds on all candidate features, trained by
    ``trainer`` (in this process by default; model_training.distributed: on the compute cluster)."""
    return _start_fold(ts, rows, cfg, trainer, source)()


def _start_fold(
    ts: TrainingSet,
    rows: np.ndarray,
    cfg: TrainConfig,
    trainer: BoosterTrainer[SideFit] | None = None,
    source: FitSource | None = None,
) -> Callable[[], dict[int, lgb.Booster]]:
    """:func:`_fit_fold` submitted (a trainer with worker processes starts both sides now); the call
    returned collects the boosters."""
    idx = np.arange(len(ts.feature_names))
    fitter = trainer or InProcessTrainer()
    where = source or FitSource()
    binned = BinnedRows(capacity=1)  # both sides fit the same rows: binned once (in process)
    requests = [
        SideFit(ts, side, rows, TUNED_DEFAULTS, cfg, idx, cfg.num_boost_round, where, binned)
        for side in SIDES
    ]
    return start_sides(fitter, requests)


def _predict_events(ts: TrainingSet, rows: np.ndarray, predictor: Predictor) -> np.ndarray:
    """(long, short) probabilities of the training-set events ``rows``."""
    cols = np.array([ts.feature_names.index(n) for n in predictor.feature_names], dtype=np.int64)
    return predictor.predict_matrix(ts.x[np.ix_(rows, cols)])


def _window_metrics(
    ts: TrainingSet, rows: np.ndarray, probs: np.ndarray, cfg: TrainConfig
) -> dict[str, float]:
    """AUC per side and the label-outcome P&L of the fold's signals on its labelled score-window bars
    (``probs``: the fold model's probabilities of ``rows``)."""
    if len(rows) == 0:
        return {"oos_events": 0.0}
    out = {
        "oos_events": float(len(rows)),
        "oos_long_auc": roc_auc(ts.y(1)[rows], probs[:, 0]),
        "oos_short_auc": roc_auc(ts.y(-1)[rows], probs[:, 1]),
    }
    out["oos_auc"] = float(np.nanmean([out["oos_long_auc"], out["oos_short_auc"]]))
    direction = SignalGenerator(threshold=cfg.threshold).generate(probs[:, 0], probs[:, 1]).direction
    out.update({f"oos_{k}": v for k, v in signal_pnl(direction, ts.outcomes(rows), cfg.costs).items()})
    return out


def _meta_scores(
    ts: TrainingSet,
    rows: np.ndarray,
    probs: np.ndarray,
    artifact: ModelArtifact,
    cfg: TrainConfig,
    cost: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Meta-labels and meta probabilities of the events ``rows`` where the fold's primary proposes a side
    (empty without a meta model): what the out-of-sample meta AUC is measured on."""
    if artifact.meta is None or len(rows) == 0:
        return np.empty(0, dtype=np.int8), np.empty(0)
    direction, p_side = proposals(probs, cfg.threshold)
    fired = np.flatnonzero(direction != 0)
    cols = np.array([ts.feature_names.index(n) for n in artifact.meta.feature_names], dtype=np.int64)
    x = ts.x[np.ix_(rows[fired], cols)]
    y = meta_targets(ts, rows[fired], direction[fired], cost)
    return y, artifact.meta.predict(x, p_side[fired], direction[fired])


def _pooled_meta_auc(meta_scored: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """The meta model's AUC over every out-of-sample event its fold's primary fired on."""
    if not meta_scored:
        return {}
    y = np.concatenate([y for y, _ in meta_scored])
    p = np.concatenate([p for _, p in meta_scored])
    if len(y) == 0:
        return {}
    return {"oos_meta_events": float(len(y)), "oos_meta_auc": roc_auc(y, p)}


def _pooled_auc(ts: TrainingSet, scored: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """AUC over every labelled bar of the out-of-sample history (each scored by its own fold model)."""
    if not scored:
        return {}
    rows = np.concatenate([r for r, _ in scored])
    probs = np.vstack([p for _, p in scored])
    long_auc, short_auc = roc_auc(ts.y(1)[rows], probs[:, 0]), roc_auc(ts.y(-1)[rows], probs[:, 1])
    return {
        "oos_events": float(len(rows)),
        "oos_long_auc": long_auc,
        "oos_short_auc": short_auc,
        "oos_auc": float(np.nanmean([long_auc, short_auc])),
    }


def member_scores(bars: pd.DataFrame, predictor: Predictor, timeframe: Timeframe) -> pd.DataFrame:
    """The (long, short) probabilities of ``bars`` whose model features are all finite (the bars that get
    a signal), as the ensemble reads its members (``core.ensemble.MEMBER_COLUMNS``)."""
    x = bars.loc[:, list(predictor.feature_names)].to_numpy(dtype=np.float64)
    ready = signal_ready(x)
    probs = predictor.predict_matrix(x[ready]) if ready.any() else np.empty((0, 2))
    times = pd.DatetimeIndex(bars["time"])[ready]
    return pd.DataFrame(
        {
            "instrument_token": bars["instrument_token"].to_numpy(dtype=np.int64)[ready],
            "time": times,
            "available_at": times + timeframe.delta,
            "model_version": predictor.version,
            "p_long": probs[:, 0],
            "p_short": probs[:, 1],
        },
        columns=list(MEMBER_COLUMNS),
    )


@dataclass
class MemberHistory:
    """One signal timeframe's out-of-sample probabilities (every scored bar) and its newest fold model."""

    timeframe: Timeframe
    scores: pd.DataFrame
    latest: str | None


async def write_oos_history(
    ctx: HistoricalPorts,
    oos: OosOptions,
    *,
    progress: Progress = _noop,
    tracker_factory: Callable[[], ExperimentTracker] | None = None,
    on_trained: Callable[[ModelRecord], Awaitable[None]] | None = None,
    trainer: BoosterTrainer[SideFit] | None = None,
    loads: TrainingLoads | None = None,
) -> OosOutcome:
    """Train (or reuse) every fold model of every signal timeframe's schedule, write their out-of-sample
    signals, then the ensemble's (when configured and there is more than one timeframe). ``trainer``
    fits the fold boosters (default: in this process); ``loads`` holds what the run already loaded."""
    made: list[ExperimentTracker] = []

    def tracker() -> ExperimentTracker | None:
        """The tracker, made on first use: MLflow's import is slow and a re-run trains nothing."""
        if tracker_factory is not None and not made:
            made.append(tracker_factory())
        return made[0] if made else None

    timeframes = ctx.options.all_signal_timeframes
    primary: OosOutcome | None = None
    members: list[MemberHistory] = []
    for timeframe in timeframes:
        outcome, history = await _timeframe_history(
            ctx,
            oos,
            timeframe,
            progress,
            tracker,
            on_trained,
            trainer or InProcessTrainer(),
            loads or TrainingLoads(),
        )
        members.append(history)
        if primary is None:
            primary = outcome
        else:
            primary.timeframes[str(timeframe)] = outcome
    assert primary is not None  # all_signal_timeframes always holds the primary
    spec = ctx.options.ensemble
    if spec is not None and len(timeframes) > 1:
        from tickwise.pipelines.historical.ensemble import write_ensemble_history

        primary.ensemble = await write_ensemble_history(
            ctx, spec, oos, members, progress=progress, tracker=tracker, on_trained=on_trained
        )
    return primary


def _timeframe_schedule(oos: OosOptions, timeframe: Timeframe, primary: Timeframe) -> WalkForwardSpec:
    """The primary timeframe's schedule as configured; another timeframe's embargo is the same number
    of bars of that timeframe."""
    if timeframe is primary:
        return oos.schedule
    return replace(oos.schedule, embargo=pd.Timedelta(timeframe.delta * oos.fold.embargo_bars))


async def _timeframe_history(
    ctx: HistoricalPorts,
    oos: OosOptions,
    timeframe: Timeframe,
    progress: Progress,
    tracker: Callable[[], ExperimentTracker | None],
    on_trained: Callable[[ModelRecord], Awaitable[None]] | None,
    trainer: BoosterTrainer[SideFit],
    loads: TrainingLoads,
) -> tuple[OosOutcome, MemberHistory]:
    began = time.perf_counter()
    calculator = calculator_for(timeframe)
    spec, cfg = _timeframe_schedule(oos, timeframe, ctx.options.signal_timeframe), oos.fold
    stage = "fold models" if timeframe is ctx.options.signal_timeframe else f"fold models {timeframe}"
    label_spec = ctx.options.label_spec
    outcome = OosOutcome(embargo=spec.embargo.to_pytimedelta(), timeframe=str(timeframe))
    history = MemberHistory(timeframe, pd.DataFrame(columns=list(MEMBER_COLUMNS)), None)
    progress("load", 0, 1)
    try:
        data = await loads.get(ctx, calculator, timeframe, None, None, keep=False)
    except ModelError:
        if timeframe is ctx.options.signal_timeframe:
            raise
        # Another timeframe without features or labels yet (e.g. the history is shorter than its
        # warm-up): no fold models for it, said in the note; the primary timeframe still runs.
        outcome.note = f"no {timeframe} features and labels to train on yet"
        outcome.seconds = time.perf_counter() - began
        return outcome, history
    ts = data.training_set(data.last_candle.to_pydatetime())
    bars, labels = data.bars, data.labels  # per instrument: a fold takes its score window's rows
    del data  # the bars, labels and training set live on; the loader's references go
    bar_times = bars.time_index()
    steps = walk_forward_schedule(bar_times, ts.t0, ts.t1, spec)
    progress("load", 1, 1)
    if not steps:
        outcome.note = (
            f"no out-of-sample history yet: the first fold model needs {spec.min_train_sessions} sessions "
            f"and {spec.min_train_events} labelled events before the bars it scores"
        )
        outcome.seconds = time.perf_counter() - began
        return outcome, history
    owner = assign_steps(bar_times, steps)
    t0 = ts.t0  # the events' times, built once (every fold's training set keeps the same rows)
    event_owner = assign_steps(t0, steps)
    scored: list[tuple[np.ndarray, np.ndarray]] = []
    meta_scored: list[tuple[np.ndarray, np.ndarray]] = []
    meta_cfg = ctx.options.meta if ctx.options.signals.meta_step is not None else None
    member_parts: list[pd.DataFrame] = []
    scored_regimes: list[np.ndarray] = []
    window_probs: dict[str, np.ndarray] = {}  # a fresh fold's score-window predictions, made once

    regime_spec = ctx.options.regime
    layers = None if regime_spec is None else _FoldLayers(trainer, bars, steps, regime_spec)

    async def begin(k: int) -> _FoldStart:
        def fitted() -> FittedLayer:
            return FittedLayer(None, None) if layers is None else layers.take(k)

        return await _begin_fold(
            ctx, ts, steps[k], cfg, label_spec.to_dict(), calculator, regime_spec, fitted, meta_cfg, trainer
        )

    # Fold models are pipelined (issue 14): fold k+1's regime layer is fitted and its two sides are
    # submitted once fold k's meta model is trained, so they train while this process scores fold k
    # and writes its model, signals and meta-labels. Fold k+1's meta model still waits for fold k's
    # scores (it learns from the earlier folds'). Every fit is what it was, so are the models.
    upcoming: _FoldStart | None = await begin(0)
    for k, step in enumerate(steps):
        progress(stage, k, len(steps))
        assert upcoming is not None and upcoming.step is step
        started, upcoming = upcoming, None
        meta_fit = _fold_meta(started, cfg, meta_cfg, trainer, scored)
        if k + 1 < len(steps):
            upcoming = await begin(k + 1)
        artifact, predictor, fold, fold_ts, regime = await _finish_fold(
            ctx,
            started,
            t0,
            meta_fit,
            cfg,
            label_spec.to_dict(),
            calculator,
            outcome.embargo,
            tracker,
            on_trained,
            window_probs,
            bars,
            trainer,
        )
        test_rows = np.flatnonzero(event_owner == k)
        if len(test_rows):
            probs = window_probs.pop(artifact.version, None)
            if probs is None or len(probs) != len(test_rows):
                probs = _predict_events(fold_ts, test_rows, predictor)
            scored.append((test_rows, probs))
            meta_scored.append(
                _meta_scores(fold_ts, test_rows, probs, artifact, cfg, label_spec.cost_threshold)
            )
            scored_regimes.append(regime_columns_of(fold_ts, test_rows))
        mine = np.flatnonzero(owner == k)
        window = bars.frame(mine, timeframe=str(timeframe))  # the fold's score window only
        history.latest = artifact.version
        if regime is not None:  # computed over whole sessions: the fold's first bars are not a fresh start
            window = pd.concat([window, regime.iloc[mine]], axis=1)
        if not window.empty:
            generator = signal_generator(ctx.options.signals, artifact)
            frame = signals_frame(window, predictor, generator, timeframe)
            if len(ctx.options.all_signal_timeframes) > 1 and ctx.options.ensemble is not None:
                member_parts.append(member_scores(window, predictor, timeframe))
            frame["sample"] = "oos"
            fold.rows = await ctx.signals.add_frame(frame)
            outcome.meta_labels += await _write_meta_labels(
                ctx, frame, labels, step, label_spec.cost_threshold, timeframe
            )
            outcome.rows += fold.rows
            outcome.longs += int((frame["direction"] == 1).sum())
            outcome.shorts += int((frame["direction"] == -1).sum())
        outcome.folds.append(fold)
    if layers is not None:
        layers.close()
    progress(stage, len(steps), len(steps))
    outcome.metrics = _pooled_auc(ts, scored) | _pooled_meta_auc(meta_scored)
    if member_parts:
        history.scores = pd.concat(member_parts, ignore_index=True)
    if scored:
        outcome.regimes = regime_comparison(
            ts,
            np.concatenate([r for r, _ in scored]),
            np.vstack([p for _, p in scored]),
            np.vstack(scored_regimes),
            threshold=cfg.threshold,
            suppress_states=ctx.options.signals.suppress_states,
            max_change_prob=ctx.options.signals.max_change_prob,
            costs=cfg.costs,
        )
    outcome.seconds = time.perf_counter() - began
    return outcome, history


def _score_window_mask(step: WalkForwardStep) -> Callable[[np.ndarray], np.ndarray]:
    """``step.scores`` of times given as int64 ns since the epoch (NaT, the minimum int64, is outside
    every window, as NaT is outside ``step.scores``)."""
    lo = step.score_from.value
    hi = None if step.score_to is None else step.score_to.value

    def mask(ns: np.ndarray) -> np.ndarray:
        inside: np.ndarray = ns >= lo
        if hi is not None:
            inside &= ns < hi
        return inside

    return mask


async def _write_meta_labels(
    ctx: HistoricalPorts,
    signals: pd.DataFrame,
    labels: Mapping[int, KeptLabels],
    step: WalkForwardStep,
    cost: float,
    timeframe: Timeframe,
) -> int:
    """``labels.meta`` of the fold's score window from its own out-of-sample signals (labeling.md §6):
    where the fold's primary proposed a side, 1 when that side's label return clears ``cost``.
    ``labels``: each instrument's stored labels; only the window's rows are joined into one frame."""
    window = labels_frame(labels, str(timeframe), select_times=_score_window_mask(step))
    meta = primary_meta_labels(signals, window, cost)
    tokens = sorted({int(t) for t in signals["instrument_token"].unique()})
    score_to = None if step.score_to is None else step.score_to.to_pydatetime()
    return await ctx.labels.replace_meta(timeframe, tokens, step.score_from.to_pydatetime(), score_to, meta)


@dataclass
class _FoldStart:
    """A fold model begun (:func:`_begin_fold`): its version and outcome, the stored model when one
    exists, else its regime layer, its training set with the layer's columns and its two sides
    submitted (``collect`` takes their boosters)."""

    step: WalkForwardStep
    fold: FoldOutcome
    ts: TrainingSet
    existing: ModelRecord | None = None
    layer: RegimeLayer | None = None
    regime: pd.DataFrame | None = None
    collect: Callable[[], dict[int, lgb.Booster]] | None = None


async def _begin_fold(
    ctx: HistoricalPorts,
    ts: TrainingSet,
    step: WalkForwardStep,
    cfg: TrainConfig,
    label_spec: dict[str, object],
    calculator: FeatureCalculator,
    regime_spec: RegimeSpec | None,
    fitted_layer: Callable[[], FittedLayer],
    meta_cfg: MetaTrainConfig | None,
    trainer: BoosterTrainer[SideFit],
) -> _FoldStart:
    """The fold model's version; when it is not stored yet, its regime layer (``fitted_layer``: the
    layer fitted on the fold's training window and its columns of every bar) and its two sides
    submitted to ``trainer`` (with worker processes they start training now)."""
    rows = step.train_idx
    trained_from = step.trained_from.to_pydatetime()
    trained_to = step.trained_to.to_pydatetime()
    fingerprint: dict[str, object] = {
        "kind": "fold",
        "from": trained_from.isoformat(),
        "to": trained_to.isoformat(),
        "rows": len(rows),
        "tokens": sorted(set(ts.token[rows].tolist())),
        # the labels themselves: re-labelled or corrected history trains a different model
        "labels": hashlib.sha256(np.stack([ts.y(1)[rows], ts.y(-1)[rows]]).tobytes()).hexdigest()[:16],
        "feature_set": calculator.feature_set,
        "features": ts.feature_names,
        "label_spec": label_spec,
        "params": TUNED_DEFAULTS,
        "config": {k: v for k, v in asdict(cfg).items() if k != "costs"},
    }
    if meta_cfg is not None:  # a fold with a meta model is another model (kept out when off: same versions)
        # its primary probabilities: the earlier folds' out-of-sample ones (core.meta_training)
        fingerprint["meta"] = asdict(meta_cfg) | {"primary": "earlier folds, else refits"}
    if ts.timeframe != str(Timeframe.M1):  # 1m folds keep the versions they had before timeframes
        fingerprint["timeframe"] = ts.timeframe
    if regime_spec is not None:  # absent when off: fold versions without regimes stay as they were
        fingerprint["regime"] = regime_spec.to_dict()
    if trainer.provenance:  # a distributed fold model is another model (absent in process: same versions)
        fingerprint["trainer"] = dict(trainer.provenance)
    version = "f" + model_version(trained_to, fingerprint)[1:]
    score_to = None if step.score_to is None else step.score_to.to_pydatetime()
    fold = FoldOutcome(
        version, step.step, trained_from, trained_to, step.score_from.to_pydatetime(), score_to, reused=True
    )
    existing = await ctx.models.get(version)
    if existing is not None and await ctx.store.exists(version):
        return _FoldStart(step, fold, ts, existing=existing)
    fold.reused = False
    fitted = fitted_layer()
    layer = fitted.layer
    fold_ts, regime = with_fitted_layer(ts, fitted)
    # The rows were loaded whole (no start/end); a trainer that reloads them needs the regime layer.
    source = FitSource(regime=None if layer is None else layer.to_dict())
    collect = _start_fold(fold_ts, rows, cfg, trainer, source)
    return _FoldStart(step, fold, fold_ts, layer=layer, regime=regime, collect=collect)


def _fold_meta(
    started: _FoldStart,
    cfg: TrainConfig,
    meta_cfg: MetaTrainConfig | None,
    trainer: BoosterTrainer[SideFit],
    earlier: list[tuple[np.ndarray, np.ndarray]],
) -> MetaFit | None:
    """A fresh fold's meta model, which learns from the earlier folds' out-of-sample scores
    (``earlier``), not from this fold's boosters: with worker processes it trains beside its sides."""
    if meta_cfg is None or started.existing is not None:
        return None
    rows = started.step.train_idx
    return fit_meta_model(
        started.ts,
        rows,
        cfg,
        meta_cfg,
        earlier=earlier_out_of_sample(rows, earlier),
        runner=runner_of(trainer),
    )


async def _finish_fold(
    ctx: HistoricalPorts,
    started: _FoldStart,
    t0: pd.DatetimeIndex,
    meta_fit: MetaFit | None,
    cfg: TrainConfig,
    label_spec: dict[str, object],
    calculator: FeatureCalculator,
    embargo: timedelta,
    tracker: Callable[[], ExperimentTracker | None],
    on_trained: Callable[[ModelRecord], Awaitable[None]] | None,
    window_probs: dict[str, np.ndarray],
    bars: Bars,
    trainer: BoosterTrainer[SideFit],
) -> tuple[ModelArtifact, Predictor, FoldOutcome, TrainingSet, pd.DataFrame | None]:
    """The stored fold model (reused), or the fresh one's boosters collected, scored on its window,
    saved, logged and recorded; with the one predictor that scores its window's events and bars (its
    boosters are compiled and checked once per fold: ``t0`` is the events' times)."""
    step, fold, ts, layer = started.step, started.fold, started.ts, started.layer
    version = fold.model_version
    trained_from, trained_to = fold.trained_from, fold.trained_to
    if started.existing is not None:
        existing = started.existing
        fold.metrics = dict(existing.metrics)
        if on_trained is not None:
            await on_trained(existing)  # idempotent: completes the audit trail of an interrupted run
        artifact = await load_model(ctx, version)
        fold_ts, regime = with_bar_regime(ts, bars, layer_of(artifact.regime))
        return artifact, Predictor(artifact), fold, fold_ts, regime
    assert started.collect is not None  # a fold trained afresh has its sides submitted
    rows = step.train_idx
    regime = started.regime
    boosters = started.collect()
    params = {
        **TUNED_DEFAULTS,
        "num_boost_round": cfg.num_boost_round,
        "max_train_rows": cfg.max_train_rows,
        "embargo_seconds": embargo.total_seconds(),
        "walk_forward_step": step.step,
        "score_from": step.score_from.isoformat(),
        "train_events": len(rows),
        "timeframe": ts.timeframe,
        **trainer.provenance,
    }
    if meta_fit is not None:
        params["meta_events"] = meta_fit.events
        params["meta_model"] = meta_fit.model is not None
        params["meta_primary"] = meta_fit.source
        if meta_fit.note:
            params["meta_note"] = meta_fit.note
    artifact = ModelArtifact(
        version=version,
        boosters=boosters,
        feature_names=tuple(ts.feature_names),
        feature_set=calculator.feature_set,
        params=params,
        label_spec=label_spec,
        feature_spec=calculator.describe() | {"selected": ts.feature_names},
        trained_from=trained_from,
        trained_to=trained_to,
        timeframe=ts.timeframe,
        meta=None if meta_fit is None else meta_fit.model,
        regime=None if layer is None else layer.to_dict(),
    )
    in_window = np.flatnonzero(step.scores(t0))
    # The boosters score; the metrics added to the artifact below do not change what it predicts.
    predictor = Predictor(artifact)
    probs = _predict_events(ts, in_window, predictor) if len(in_window) else np.empty((0, 2))
    window_probs[version] = probs
    window = _window_metrics(ts, in_window, probs, cfg)
    if artifact.meta is not None:
        cost = float(label_spec.get("cost_threshold", 0.0))  # type: ignore[arg-type]
        y_meta, p_meta = _meta_scores(ts, in_window, probs, artifact, cfg, cost)
        window |= {"oos_meta_events": float(len(y_meta)), "oos_meta_auc": roc_auc(y_meta, p_meta)}
        window |= {k: float(v) for k, v in artifact.meta.metrics.items()}
    metrics = json_safe(window)
    artifact = replace(artifact, metrics=metrics)
    fold.metrics = metrics
    files = artifact.to_files()
    path = await ctx.store.save(version, files)
    run_id = None
    experiment = tracker()
    if experiment is not None:
        run_id = await experiment.log_run(
            run_name=version,
            params={**params, "trained_from": trained_from.isoformat(), "trained_to": trained_to.isoformat()},
            metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            tags={
                "model_version": version,
                "feature_set": calculator.feature_set,
                "mode": "historical",
                "kind": "fold",
            },
            files=files,
            documents={
                "label_spec.json": label_spec,
                "walk_forward_step.json": {k: str(v) for k, v in params.items()},
            },
        )
    record = ModelRecord(
        model_version=version,
        feature_set=calculator.feature_set,
        feature_names=tuple(ts.feature_names),
        params=json_safe(params),
        metrics=metrics,
        status="fold",
        trained_from=trained_from,
        trained_to=trained_to,
        mlflow_run_id=run_id,
        label_spec=label_spec,
        feature_spec={"feature_set": calculator.feature_set, "spec": calculator.spec.to_dict()},
        artifact_path=path,
    )
    await ctx.models.insert(record)
    if on_trained is not None:
        await on_trained(record)
    return artifact, predictor, fold, ts, regime
