"""Training orchestration: dataset -> Optuna on purged folds -> feature selection -> holdout -> final fit
-> model bundle, MLflow run, ``models`` row, champion/challenger decision.

Model version: ``m<trained_to IST %Y%m%d-%H%M%S>-<hash6>`` where the hash covers everything that
determines the model (window, instruments, feature set, label spec, training configuration). Training is
deterministic (fixed seeds, LightGBM ``deterministic``), so a re-run on the same data finds the version
already registered and skips training: ``tickwise historical`` is idempotent.

Champion rule: a new model becomes champion when there is none, or when its holdout AUC (mean of the
long and short models on the final purged walk-forward window, never seen by tuning) beats the holdout
AUC recorded for the current champion. Otherwise it is registered as a challenger.

The pure rules (feature policy, version name, champion rule, JSON-safe metrics) live in ``core.training``;
this module loads data through the ports, fits, and records the result (``ModelStore``,
``ExperimentTracker``, ``ModelRepository``).

Loading (issue 15): :func:`load_timeframe` reads one instrument at a time, its feature rows as one
float64 matrix (``FeatureRepository.read_matrix``), into the sorted ``core.dataset.Bars`` of the
timeframe; the training set gathers its rows from them. A run loads each timeframe once:
:class:`TrainingLoads` hands the champion candidate's load to the out-of-sample history of the same
timeframe and window (``oos.py``), which releases it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import cached_property

import lightgbm as lgb
import numpy as np
import pandas as pd

from tickwise.core.cv import position_dtype
from tickwise.core.dataset import (
    KEPT_LABELS,
    ArrayColumn,
    Bars,
    BarsBuilder,
    KeepColumn,
    KeptCloses,
    KeptLabels,
    KeptPart,
    TrainingSet,
    training_set_of,
)
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.fit_jobs import start_task
from tickwise.core.fitting import (
    BinnedRows,
    FoldResult,
    TrainConfig,
    evaluate,
    final_rounds,
    holdout_rows,
    select_features,
)
from tickwise.core.meta_model import MetaModel
from tickwise.core.meta_training import MetaTrainConfig, fit_meta_model
from tickwise.core.metrics import mean_metrics
from tickwise.core.model import SIDE_NAMES, SIDES, LgbParams, ModelArtifact
from tickwise.core.regime import RegimeLayer, RegimeSpec
from tickwise.core.side_fit import FitSource, InProcessTrainer, SideFit, fit_sides, runner_of
from tickwise.core.training import (
    candidate_features,
    json_safe,
    model_version,
    trainable_features,
)
from tickwise.domain.errors import ModelError
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.context import HistoricalPorts
from tickwise.pipelines.historical.date_chunks import DateChunk, history_chunks
from tickwise.pipelines.historical.regimes import BarsLayerFit, with_fitted_layer
from tickwise.pipelines.historical.tracking import TrainingRun, track
from tickwise.pipelines.historical.tuning import tune
from tickwise.pipelines.universe import select_universe
from tickwise.ports.booster_trainer import BoosterTrainer
from tickwise.ports.experiment_tracker import ExperimentTracker
from tickwise.ports.repositories import ModelRecord, ModelStatus
from tickwise.ports.row_spill import RowSpill


@dataclass
class TrainOutcome:
    model_version: str
    status: str
    skipped: bool
    metrics: dict[str, float | None] = field(default_factory=dict)  # None: not finite (JSON null)
    folds: list[dict[str, float]] = field(default_factory=list)
    mlflow_run_id: str | None = None
    artifact_path: str | None = None
    rows: int = 0
    features: int = 0
    trained_from: datetime | None = None
    trained_to: datetime | None = None
    seconds: float = 0.0


Progress = Callable[[str, float, float], None]  # (stage, completed, total)


def _noop(stage: str, done: float, total: float) -> None:
    pass


@dataclass
class TrainingData:
    """One timeframe's loaded training data: every warm feature row (``bars``: ``time >= start``, before
    ``end``), each instrument's stored labels (``t1 <= end``, both sides) and closes. ``keep`` keeps a
    training set's per-row columns (in memory, or a ``RowSpill``'s ``keep_column``: on disk), as the
    instruments' labels are kept."""

    calculator: FeatureCalculator
    timeframe: Timeframe
    bars: Bars
    labels: dict[int, KeptLabels]
    closes: Mapping[tuple[int, str], pd.Series]  # a KeptCloses: each Series built when read
    keep: KeepColumn = ArrayColumn

    @property
    def last_candle(self) -> pd.Timestamp:
        return max(s.index.max() for s in self.closes.values())

    @cached_property
    def candidates(self) -> list[str]:
        """The candidate features: the calculator's trainable ones with few enough missing values."""
        names = [n for n in self.calculator.names if n in self.bars.columns]
        return candidate_features({n: self.bars.nan_share(n) for n in names}, names)

    def training_set(self, end: datetime) -> TrainingSet:
        """The candidate features' training set of events whose labels end by ``end``."""
        return training_set_of(
            self.bars,
            self.labels,
            feature_set=self.calculator.feature_set,
            timeframe=str(self.timeframe),
            end=end,
            feature_names=self.candidates,
            closes=self.closes,
            keep=self.keep,
        )

    def labels_frame(self) -> pd.DataFrame:
        """Every instrument's labels as one frame (instruments in load order): :func:`labels_frame`."""
        return labels_frame(self.labels, str(self.timeframe))


async def load_timeframe(
    ctx: HistoricalPorts,
    calculator: FeatureCalculator,
    timeframe: Timeframe,
    start: datetime | None,
    end: datetime | None,
    spill: RowSpill | None = None,
) -> TrainingData:
    """Features (warm rows only, ``time >= start``), labels (``t1 <= end``) and closes, one instrument
    at a time, each read in date-range chunks of ``options.chunk_sessions`` sessions (issue 15:
    ``date_chunks``): each chunk's features are read as one matrix and kept as they are, in memory or,
    with ``spill``, on disk, and so are its labels (typed columns, :func:`compact_labels`) and closes,
    appended to the instrument's (``BarsBuilder.add_kept``, ``KeptLabels.joined``,
    ``KeptCloses.extend``): the load holds one chunk of one instrument at a time besides what it keeps,
    and each training set's columns go to the same spill: no array of every bar or row, and no array of
    one instrument's whole history, stays in memory. The same arrays as one read of each instrument's
    whole history, bit for bit (the warm-up rows are the instrument's first rows, not each chunk's)."""
    tokens = [
        i.instrument_token
        for i in await select_universe(ctx.instruments, ctx.options.symbols, ctx.options.default_symbols)
    ]
    columns = trainable_features(list(calculator.names))
    keep: KeepColumn = ArrayColumn if spill is None else spill.keep_column
    builder = BarsBuilder(columns) if spill is None else BarsBuilder(columns, spill.keep, keep)
    labels: dict[int, KeptLabels] = {}
    closes = KeptCloses(keep)
    for token in tokens:
        chunks = await history_chunks(
            ctx.candles, ctx.calendar, token, timeframe, ctx.options.chunk_sessions, None, end
        )
        parts = await _feature_parts(ctx, builder, calculator, columns, token, timeframe, chunks, start)
        if not parts:
            continue
        kept = await _kept_labels(ctx, token, timeframe, chunks, start, keep)
        if kept is None:
            continue
        await _keep_closes(ctx, closes, token, timeframe, chunks)
        builder.add_kept(token, parts)
        labels[token] = kept
    if not labels:
        raise ModelError(
            "no features and labels to train on; run `tickwise historical` (or backfill first) "
            "so candles, features and labels exist"
        )
    return TrainingData(calculator, timeframe, builder.build(), labels, closes, keep)


async def _feature_parts(
    ctx: HistoricalPorts,
    builder: BarsBuilder,
    calculator: FeatureCalculator,
    columns: list[str],
    token: int,
    timeframe: Timeframe,
    chunks: list[DateChunk],
    start: datetime | None,
) -> list[KeptPart]:
    """The instrument's warm feature rows at or after ``start``, kept one chunk at a time (empty chunks
    are not kept). The warm-up is the instrument's first ``calculator.warmup`` rows: the rows of the
    chunks before ``start`` are counted (their times only) until the warm-up is behind, not kept."""
    start_ns = None if start is None else pd.Timestamp(start).as_unit("ns").value
    parts: list[KeptPart] = []
    seen = 0  # the instrument's rows read so far
    for lo, hi in chunks:
        if start is not None and hi is not None and hi <= start:  # every row is before ``start``
            if seen < calculator.warmup:
                seen += len(
                    await ctx.features.read_matrix(
                        token, timeframe, calculator.feature_set, lo, hi, columns=[]
                    )
                )
            continue
        rows = await ctx.features.read_matrix(
            token, timeframe, calculator.feature_set, lo, hi, columns=columns
        )
        warm = min(max(calculator.warmup - seen, 0), len(rows))
        seen += len(rows)
        times, x = rows.times[warm:], rows.values[warm:]
        del rows
        if start_ns is not None:
            times, x = times[times >= start_ns], x[times >= start_ns]
        if len(times):
            parts.append(builder.keep_part(token, times, np.ascontiguousarray(x)))
        del times, x
    return parts


async def _kept_labels(
    ctx: HistoricalPorts,
    token: int,
    timeframe: Timeframe,
    chunks: list[DateChunk],
    start: datetime | None,
    keep: KeepColumn,
) -> KeptLabels | None:
    """The instrument's stored labels with ``start <= time`` in the chunks, kept one chunk at a time
    (:func:`compact_labels`) and joined; None when there are none."""
    parts: list[KeptLabels] = []
    for lo, hi in chunks:
        if start is not None and hi is not None and hi <= start:
            continue
        first = start if lo is None or (start is not None and start > lo) else lo
        lab = await ctx.labels.read_frame(token, timeframe, first, hi)
        if not lab.empty:
            parts.append(KeptLabels.of_frame(compact_labels(lab, token, str(timeframe)), keep))
        del lab
    return KeptLabels.joined(parts) if parts else None


async def _keep_closes(
    ctx: HistoricalPorts, closes: KeptCloses, token: int, timeframe: Timeframe, chunks: list[DateChunk]
) -> None:
    """The instrument's candle closes, kept one chunk at a time (the first chunk's even when it has
    none: every loaded instrument has its closes, as one whole-history read gives)."""
    for k, (lo, hi) in enumerate(chunks):
        candles = await ctx.candles.read_frame(token, timeframe, lo, hi)
        if k == 0 or len(candles):
            series = pd.Series(
                candles["close"].to_numpy(dtype=np.float64), index=pd.DatetimeIndex(candles["time"])
            )
            (closes.add if k == 0 else closes.extend)((token, str(timeframe)), series)
        del candles


# The stored label columns a training load reads: what the training set, the sample weights and the
# out-of-sample meta-labels use. ``t1_max``, ``barrier``, ``ambiguous`` and ``meta`` are not read there.
KEPT_LABEL_COLUMNS = (
    "instrument_token",
    "timeframe",
    "time",
    "side",
    "label",
    "t1",
    "ret",
    "exit_price",
    "weight",
)
# What is kept per instrument (``core.dataset.KEPT_LABELS``): the instrument and timeframe are the
# load's (the same on every row).


def compact_labels(labels: pd.DataFrame, token: int, timeframe: str) -> pd.DataFrame:
    """One instrument's stored labels as the load keeps them (issue 15): the columns it reads, without
    the instrument and timeframe (a database read gives every row its own timeframe string, about 60
    bytes, and there are two label rows per bar), side and label as int8 (-1, 0, +1: exact)."""
    if (labels["instrument_token"] != token).any() or (labels["timeframe"] != timeframe).any():
        raise ModelError(f"labels of another instrument or timeframe in the {token} {timeframe} load")
    kept = labels.loc[:, list(KEPT_LABELS)].reset_index(drop=True)
    for col, allowed in (("side", (-1, 1)), ("label", (-1, 0, 1))):
        values = kept[col].to_numpy()
        if not np.isin(values, allowed).all():
            raise ModelError(f"instrument {token}: stored {col} values outside {allowed}")
        kept[col] = values.astype(np.int8)
    return kept


def labels_frame(
    labels: Mapping[int, pd.DataFrame | KeptLabels],
    timeframe: str,
    select: Callable[[pd.DataFrame], np.ndarray] | None = None,
    *,
    select_times: Callable[[np.ndarray], np.ndarray] | None = None,
) -> pd.DataFrame:
    """Kept labels (:func:`compact_labels`, per instrument) as stored label rows: the
    :data:`KEPT_LABEL_COLUMNS`, side and label as int64, instruments in load order; with ``select``,
    only the rows it picks of each instrument (e.g. a fold's score window), so no frame of all of them
    is made; with ``select_times`` (a mask of the label times as int64 ns since the epoch, NaT as the
    minimum int64), only those rows are made into a frame at all: a fold's meta-labels read their score
    window's rows, not every label of the history once per fold."""
    parts = []
    for token, given in labels.items():
        if select_times is not None and isinstance(given, KeptLabels):
            lab = given.frame(np.flatnonzero(select_times(given.read("time"))))
        else:
            lab = given.frame() if isinstance(given, KeptLabels) else given  # one instrument at a time
            if select_times is not None:
                lab = lab[select_times(pd.DatetimeIndex(lab["time"]).as_unit("ns").asi8)]
        rows = lab if select is None else lab[select(lab)]
        part = rows.assign(
            instrument_token=np.full(len(rows), token, dtype=np.int64),
            timeframe=np.full(len(rows), timeframe, dtype=object),
            side=rows["side"].to_numpy(dtype=np.int64),
            label=rows["label"].to_numpy(dtype=np.int64),
        )
        parts.append(part.loc[:, list(KEPT_LABEL_COLUMNS)])
    if not parts:
        return pd.DataFrame(columns=list(KEPT_LABEL_COLUMNS))
    return pd.concat(parts, ignore_index=True)


class TrainingLoads:
    """The training data of one run, loaded once per timeframe and window: the champion candidate
    keeps its load (:meth:`get` with ``keep``) for the out-of-sample history of the same timeframe,
    whose :meth:`get` takes it and releases it (the last user), so no load outlives its use."""

    def __init__(self, spill: RowSpill | None = None) -> None:
        self._spill = spill  # where each load keeps its feature matrices (None: in memory)
        self._held: dict[tuple[object, ...], TrainingData] = {}
        # Loads being read now: the champion candidate and the out-of-sample history run at once
        # (``bootstrap.historical``), so the second asker of a timeframe waits for the first's read.
        self._reading: dict[tuple[object, ...], asyncio.Future[TrainingData]] = {}
        self.loads = 0  # how many times the database was read (one per timeframe and window)

    async def get(
        self,
        ctx: HistoricalPorts,
        calculator: FeatureCalculator,
        timeframe: Timeframe,
        start: datetime | None,
        end: datetime | None,
        *,
        keep: bool,
    ) -> TrainingData:
        key = (str(timeframe), calculator.feature_set, tuple(calculator.names), start, end)
        reading = self._reading.get(key)
        if reading is not None:
            # Read by another asker now: the reader holds it (keep) before this waiter resumes, so a
            # last user (keep=False) releases it here and a keeping one holds what a last user read.
            data = await asyncio.shield(reading)
            if keep:
                self._held.setdefault(key, data)
            else:
                self._held.pop(key, None)
            return data
        held = self._held.get(key) if keep else self._held.pop(key, None)
        if held is not None:
            return held
        reading = asyncio.get_running_loop().create_future()
        self._reading[key] = reading
        try:
            data = await load_timeframe(ctx, calculator, timeframe, start, end, self._spill)
        except asyncio.CancelledError:
            reading.cancel()
            raise
        except BaseException as exc:
            reading.set_exception(exc)
            reading.exception()  # retrieved: a waiter gets it, and no waiter is no unlogged error
            raise
        finally:
            del self._reading[key]
        self.loads += 1
        if keep:
            self._held[key] = data
        reading.set_result(data)
        return data


def fit_model(
    ts: TrainingSet,
    cfg: TrainConfig,
    progress: Progress = _noop,
    trainer: BoosterTrainer[SideFit] | None = None,
    source: FitSource | None = None,
) -> tuple[dict[int, lgb.Booster], list[str], LgbParams, list[FoldResult], FoldResult, dict[str, object]]:
    """Pure training: tune, select, holdout-evaluate, final fit. Returns (boosters, feature names,
    params, cv folds, holdout result, info). Tuning and the holdout run here; ``trainer`` fits the final
    boosters (default: in this process), ``source`` tells it where ``ts``'s rows came from."""
    # by time bounds and counts on the t0-sorted rows: ascending positions, int32 when they fit (issue 15)
    split = holdout_rows(ts, cfg.holdout_fraction)
    dev = split.dev_idx
    holdout_start = split.start.isoformat()
    progress("tune", 0, cfg.trials)
    trial_log: list[float] = []

    def on_trial(number: int, value: float) -> None:
        trial_log.append(value)
        progress("tune", len(trial_log), cfg.trials)

    fitter = trainer or InProcessTrainer()
    runner = runner_of(fitter)  # worker processes: the trials' folds, the holdout's sides train at once
    params, cv_folds, pruned = tune(ts, dev, cfg, on_trial=on_trial, runner=runner)
    importance = (
        np.sum([f.importance for f in cv_folds], axis=0) if cv_folds else np.ones(len(ts.feature_names))
    )
    selected = select_features(ts.feature_names, importance, cfg.importance_min_share, cfg.min_features)
    progress("holdout", 0, 1)
    holdout = evaluate(ts, dev, split.test_idx, params, cfg, selected, fold=len(cv_folds), runner=runner)
    del split, dev
    progress("holdout", 1, 1)
    all_rows = np.arange(len(ts), dtype=position_dtype(len(ts)))
    binned = BinnedRows(capacity=1)  # both sides' final fits use the same rows: binned once (in process)
    rounds = final_rounds(holdout, cfg)
    progress("final fit", 0, len(SIDES))
    requests = [
        SideFit(ts, side, all_rows, params, cfg, selected, rounds[side], source or FitSource(), binned)
        for side in SIDES
    ]
    boosters = fit_sides(fitter, requests)
    progress("final fit", len(SIDES), len(SIDES))
    names = [ts.feature_names[i] for i in selected]
    info = {
        "trials": cfg.trials,
        "pruned_trials": pruned,
        "holdout_start": holdout_start,
        "best_iterations": {SIDE_NAMES[s]: int(v) for s, v in holdout.best_iterations.items()},
        "candidate_features": len(ts.feature_names),
        "selected_features": len(names),
    }
    return boosters, names, params, cv_folds, holdout, info


@dataclass(frozen=True)
class _Champion:
    """What :func:`_fit_champion` fitted: the training set with its regime columns, the layer, the
    boosters and everything the bundle, run and record are made of."""

    ts: TrainingSet
    layer: RegimeLayer | None
    boosters: dict[int, lgb.Booster]
    selected: list[str]
    params: LgbParams
    cv_folds: list[FoldResult]
    info: dict[str, object]
    metrics: dict[str, float | None]
    meta_model: MetaModel | None


def _fit_champion(
    ts: TrainingSet,
    bars: Bars,
    cfg: TrainConfig,
    meta_cfg: MetaTrainConfig | None,
    regime_spec: RegimeSpec | None,
    trained_from: datetime,
    trained_to: datetime,
    start: datetime | None,
    end: datetime | None,
    progress: Progress,
    trainer: BoosterTrainer[SideFit],
) -> _Champion:
    """The champion candidate's regime layer, tuning, holdout, final fit and meta model (no I/O)."""
    # The regime layer is fitted on this model's training window only; its columns become candidates.
    # With worker processes it is fitted in one (the same layer and columns), not in this process.
    layer = None
    if regime_spec is not None:
        fitted = start_task(trainer, BarsLayerFit(bars, trained_from, trained_to, regime_spec)).result()
        layer = fitted.layer
        ts, _ = with_fitted_layer(ts, fitted)
    source = FitSource(start, end, None if layer is None else layer.to_dict())
    boosters, selected, params, cv_folds, holdout, info = fit_model(ts, cfg, progress, trainer, source)
    metrics: dict[str, float | None] = {**mean_metrics([f.metrics for f in cv_folds])}
    metrics.update({f"holdout_{k}": v for k, v in holdout.metrics.items()})
    metrics["cv_folds"] = len(cv_folds)
    metrics.update({k: v for k, v in info.items() if isinstance(v, (int, float))})
    meta_model = None
    if meta_cfg is not None:
        # The champion's meta model: out-of-fold primaries over the whole history (core.meta_training).
        progress("meta model", 0, 1)
        index = {n: i for i, n in enumerate(ts.feature_names)}
        chosen = np.array([index[n] for n in selected], dtype=np.int64)
        # Its out-of-fold primaries train as the champion's boosters did: the holdout's rounds per side.
        rounds = final_rounds(holdout, cfg)
        meta_fit = fit_meta_model(
            ts,
            np.arange(len(ts), dtype=position_dtype(len(ts))),
            cfg,
            meta_cfg,
            chosen,
            params,
            rounds,
            runner=runner_of(trainer),
        )
        meta_model = meta_fit.model
        metrics["meta_events"] = meta_fit.events
        if meta_model is not None:
            metrics.update({k: float(v) for k, v in meta_model.metrics.items()})
        progress("meta model", 1, 1)
    return _Champion(ts, layer, boosters, selected, params, cv_folds, info, metrics, meta_model)


async def train_model(
    ctx: HistoricalPorts,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    trials: int | None = None,
    progress: Progress = _noop,
    tracker_factory: Callable[[], ExperimentTracker] | None = None,
    trainer: BoosterTrainer[SideFit] | None = None,
    loads: TrainingLoads | None = None,
) -> TrainOutcome:
    """Train, register and (maybe) promote a model on the stored features and labels.

    ``tracker_factory`` is called only when a model is actually trained (MLflow's import is slow).
    ``trainer`` fits the final boosters (default: in this process; Optuna's trials always run here).
    ``loads``: the run's shared loads (the out-of-sample history reuses this one)."""
    trainer = trainer or InProcessTrainer()
    began = time.perf_counter()
    options = ctx.options
    timeframe = options.signal_timeframe
    calculator = FeatureCalculator()
    spec = options.label_spec
    cfg = options.train if trials is None else replace(options.train, trials=trials)
    progress("load", 0, 1)
    data = await (loads or TrainingLoads()).get(ctx, calculator, timeframe, start, end, keep=True)
    last_candle = data.last_candle
    window_end = min(pd.Timestamp(end), last_candle) if end is not None else last_candle
    names = data.candidates
    ts = data.training_set(window_end.to_pydatetime())
    progress("load", 1, 1)
    first_t0, last_t1 = ts.time_range()  # read a chunk at a time (issue 15)
    trained_from, trained_to = first_t0.to_pydatetime(), last_t1.to_pydatetime()
    regime_spec = options.regime
    fingerprint = {
        "from": trained_from.isoformat(),
        "to": trained_to.isoformat(),
        "rows": len(ts),
        "tokens": ts.tokens(),  # sorted(set(ts.token.tolist())) without a Python int per row
        "feature_set": calculator.feature_set,
        "features": names,
        "label_spec": spec.to_dict(),
        "config": {k: v for k, v in asdict(cfg).items() if k != "costs"},
    }
    meta_cfg = options.meta if options.signals.meta_step is not None else None
    if meta_cfg is not None:  # a model with a meta model is another model (kept out when off)
        fingerprint["meta"] = asdict(meta_cfg) | {"primary_rounds": "holdout"}
    if regime_spec is not None:
        fingerprint["regime"] = regime_spec.to_dict()
    if trainer.provenance:  # a distributed model is another model (absent in process: same versions)
        fingerprint["trainer"] = dict(trainer.provenance)
    version = model_version(trained_to, fingerprint)
    existing = await ctx.models.get(version)
    if existing is not None and await ctx.store.exists(version):
        return TrainOutcome(
            model_version=version,
            status=existing.status,
            skipped=True,
            metrics=_numbers(existing.metrics),
            mlflow_run_id=existing.mlflow_run_id,
            artifact_path=existing.artifact_path,
            rows=len(ts),
            features=len(existing.feature_names),
            trained_from=existing.trained_from,
            trained_to=existing.trained_to,
            seconds=time.perf_counter() - began,
        )

    # A shared Optuna storage (model_training.optuna_storage) pools trials of the same data and config.
    cfg = replace(cfg, study_name=f"tickwise-{version}")
    # The fitting (regime layer, tuning, holdout, final fit, meta model) is synchronous CPU work and
    # waits on the fit workers: it runs in a thread, so the event loop stays free for what runs beside
    # it (``bootstrap.historical`` overlaps the out-of-sample fold models with it). Its result does not
    # depend on where it runs.
    fitted = await asyncio.to_thread(
        _fit_champion,
        ts,
        data.bars,
        cfg,
        meta_cfg,
        regime_spec,
        trained_from,
        trained_to,
        start,
        end,
        progress,
        trainer,
    )
    ts, layer, boosters, selected = fitted.ts, fitted.layer, fitted.boosters, fitted.selected
    params, cv_folds, info, metrics = fitted.params, fitted.cv_folds, fitted.info, fitted.metrics
    meta_model = fitted.meta_model
    artifact = ModelArtifact(
        version=version,
        boosters=boosters,
        feature_names=tuple(selected),
        feature_set=calculator.feature_set,
        params={**params, "num_boost_round": info["best_iterations"], **trainer.provenance},
        label_spec=spec.to_dict(),
        feature_spec=calculator.describe() | {"selected": selected},
        metrics=json_safe(metrics),
        trained_from=trained_from,
        trained_to=trained_to,
        timeframe=str(timeframe),
        meta=meta_model,
        regime=None if layer is None else layer.to_dict(),
    )
    progress("register", 0, 1)
    files = artifact.to_files()
    path = await ctx.store.save(version, files)
    run_id = None
    if tracker_factory is not None:
        run = TrainingRun(
            version=version,
            params=params,
            config=cfg,
            rows=len(ts),
            features=selected,
            feature_set=calculator.feature_set,
            trained_from=trained_from,
            trained_to=trained_to,
            metrics=metrics,
            folds=cv_folds,
            label_spec=spec.to_dict(),
            info=info,
        )
        run_id = await track(tracker_factory(), run, files)
    # Registered as a challenger: promotion is the governance's decision on out-of-sample evidence
    # (pipelines.governance, docs/models.md), never a comparison of in-sample or holdout numbers here.
    status: ModelStatus = "challenger"
    await ctx.models.insert(
        ModelRecord(
            model_version=version,
            feature_set=calculator.feature_set,
            feature_names=tuple(selected),
            params=json_safe({**params, **info, **trainer.provenance}),
            metrics=json_safe(metrics),
            status=status,
            trained_from=trained_from,
            trained_to=trained_to,
            mlflow_run_id=run_id,
            label_spec=spec.to_dict(),
            feature_spec={"feature_set": calculator.feature_set, "spec": calculator.spec.to_dict()},
            artifact_path=path,
        )
    )
    progress("register", 1, 1)
    return TrainOutcome(
        model_version=version,
        status=status,
        skipped=False,
        metrics=metrics,
        folds=[f.metrics for f in cv_folds],
        mlflow_run_id=run_id,
        artifact_path=path,
        rows=len(ts),
        features=len(selected),
        trained_from=trained_from,
        trained_to=trained_to,
        seconds=time.perf_counter() - began,
    )


def _numbers(metrics: Mapping[str, object]) -> dict[str, float | None]:
    """Stored metrics (JSON numbers or null) as the outcome's metric dict."""
    return {
        k: v if isinstance(v, (int, float)) and not isinstance(v, bool) else None for k, v in metrics.items()
    }
