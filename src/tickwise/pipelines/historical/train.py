"""Training orchestration: dataset -> Optuna on purged folds -> feature selection -> holdout -> final fit
-> model bundle, MLflow run, ``models`` row, champion/challenger decision.

Model version: ``m<trained_to IST %Y%m%d-%H%M%S>-<hash6>`` where the hash covers everything that
determines the model (window, instruments, feature set, label spec, training configuration). Training is
deterministic (fixed seeds, LightGBM ``deterministic``), so a re-run on the same data finds the version
already registered and skips training: ``tickwise historical`` is idempotent.

Champion rule: a new model becomes champion when there is none, or when its holdout AUC (mean of the
long and short models on the final purged walk-forward window, never seen by tuning) beats the holdout
AUC recorded for the current champion. Otherwise it is registered as a challenger.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from tickwise.core.cv import holdout_split
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.labels import LabelSpec
from tickwise.core.metrics import mean_metrics
from tickwise.core.model import SIDE_NAMES, SIDES, ModelArtifact
from tickwise.domain.errors import ModelError
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.dataset import TrainingSet, build_training_set
from tickwise.pipelines.historical.tuning import (
    FoldResult,
    TrainConfig,
    evaluate,
    fit_side,
    select_features,
    tune,
)
from tickwise.pipelines.historical.universe import select_universe
from tickwise.ports.repositories import ModelRecord, ModelStatus

# Price-level and cumulative features: their scale differs between instruments and drifts over time,
# so trees split on levels that never recur. The model uses the scale-free features (returns,
# oscillators, ATR-normalised distances, z-scores...). They stay in the features table for SQL users.
LEVEL_FEATURES = frozenset(
    {
        "sma_20",
        "sma_50",
        "ema_9",
        "ema_20",
        "ema_50",
        "ema_200",
        "dema_20",
        "tema_20",
        "kama_30",
        "t3_5",
        "wma_20",
        "sar_002_02",
        "linearreg_slope_14",
        "macd_12_26_9",
        "macd_signal_12_26_9",
        "macd_hist_12_26_9",
        "mom_10",
        "atr_14",
        "trange",
        "stddev_20",
        "bb_upper_20_2",
        "bb_middle_20_2",
        "bb_lower_20_2",
        "obv",
        "ad",
        "adosc_3_10",
        "volume_sma_20",
        "vwap",
        "vwap_lower_2",
        "vwap_upper_2",
        "kalman_price",
        "kalman_slope",
    }
)
# Order-book features exist only for live candles (REST candles carry no depth): always NaN in training.
NEVER_HISTORICAL = frozenset({"obi_5"})
MAX_NAN_SHARE = 0.5


def label_spec_of(settings: Any) -> LabelSpec:
    lab = settings.trading.labeling
    return LabelSpec(
        atr_period=lab.atr_period,
        k_pt=lab.k_pt,
        k_sl=lab.k_sl,
        horizon=lab.horizon,
        vertical_label=lab.vertical_label,
        warmup_bars=lab.warmup_bars,
        cost_threshold=lab.cost_threshold,
    )


def train_config_of(settings: Any, trials: int | None = None) -> TrainConfig:
    mt = settings.model_training
    return TrainConfig(
        folds=mt.folds,
        trials=trials or mt.trials,
        num_boost_round=mt.num_boost_round,
        early_stopping_rounds=mt.early_stopping_rounds,
        seed=mt.seed,
        embargo_bars=mt.embargo_bars,
        threshold=mt.signal_threshold,
        optuna_storage=mt.optuna_storage.get_secret_value(),
    )


@dataclass
class TrainOutcome:
    model_version: str
    status: str
    skipped: bool
    metrics: dict[str, Any] = field(default_factory=dict)
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


async def load_training_data(
    ctx: Any,
    calculator: FeatureCalculator,
    timeframe: Timeframe,
    start: datetime | None,
    end: datetime | None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple[int, str], pd.Series]]:
    """Features (warm rows only, ``time >= start``), labels (``t1 <= end``) and closes per instrument."""
    tokens = [
        i.instrument_token for i in await select_universe(ctx.instruments, ctx.settings.trading.symbols)
    ]
    columns = [n for n in calculator.names if n not in LEVEL_FEATURES and n not in NEVER_HISTORICAL]
    feats, labs, closes = [], [], {}
    for token in tokens:
        f = await ctx.features.read_frame(
            token, timeframe, calculator.feature_set, None, end, columns=columns
        )
        if f.empty:
            continue
        f = f.iloc[calculator.warmup :]
        if start is not None:
            f = f[pd.DatetimeIndex(f["time"]) >= pd.Timestamp(start)]
        lab = await ctx.labels.read_frame(token, timeframe, start, end)
        if f.empty or lab.empty:
            continue
        candles = await ctx.candles.read_frame(token, timeframe, None, end)
        closes[(token, str(timeframe))] = pd.Series(
            candles["close"].to_numpy(dtype=np.float64), index=pd.DatetimeIndex(candles["time"])
        )
        feats.append(f)
        labs.append(lab)
    if not feats:
        raise ModelError(
            "no features and labels to train on; run `tickwise historical` (or backfill first) "
            "so candles, features and labels exist"
        )
    return pd.concat(feats, ignore_index=True), pd.concat(labs, ignore_index=True), closes


def candidate_features(features: pd.DataFrame, names: list[str]) -> list[str]:
    out = []
    for name in names:
        if name in LEVEL_FEATURES:
            continue
        if features[name].isna().mean() > MAX_NAN_SHARE:
            continue
        out.append(name)
    return out


def model_version(trained_to: datetime, fingerprint: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:6]
    return f"m{trained_to.astimezone(IST):%Y%m%d-%H%M%S}-{digest}"


def fit_model(
    ts: TrainingSet,
    cfg: TrainConfig,
    progress: Progress = _noop,
) -> tuple[dict[int, Any], list[str], dict[str, Any], list[FoldResult], FoldResult, dict[str, Any]]:
    """Pure training: tune, select, holdout-evaluate, final fit. Returns (boosters, feature names,
    params, cv folds, holdout result, info)."""
    split = holdout_split(ts.t0, ts.t1, fraction=cfg.holdout_fraction)
    dev = np.sort(split.dev_idx)
    progress("tune", 0, cfg.trials)
    trial_log: list[float] = []

    def on_trial(number: int, value: float) -> None:
        trial_log.append(value)
        progress("tune", len(trial_log), cfg.trials)

    params, cv_folds, pruned = tune(ts, dev, cfg, on_trial=on_trial)
    importance = (
        np.sum([f.importance for f in cv_folds], axis=0) if cv_folds else np.ones(len(ts.feature_names))
    )
    selected = select_features(ts.feature_names, importance, cfg.importance_min_share, cfg.min_features)
    progress("holdout", 0, 1)
    holdout = evaluate(ts, dev, np.sort(split.test_idx), params, cfg, selected, fold=len(cv_folds))
    progress("holdout", 1, 1)
    boosters = {}
    all_rows = np.arange(len(ts))
    for k, side in enumerate(SIDES):
        progress("final fit", k, len(SIDES))
        rounds = max(10, int(holdout.best_iterations.get(side, cfg.num_boost_round)))
        booster, _ = fit_side(ts, side, all_rows, params, cfg, selected, num_boost_round=rounds)
        boosters[side] = booster
    progress("final fit", len(SIDES), len(SIDES))
    names = [ts.feature_names[i] for i in selected]
    info = {
        "trials": cfg.trials,
        "pruned_trials": pruned,
        "holdout_start": split.start.isoformat(),
        "best_iterations": {SIDE_NAMES[s]: int(v) for s, v in holdout.best_iterations.items()},
        "candidate_features": len(ts.feature_names),
        "selected_features": len(names),
    }
    return boosters, names, params, cv_folds, holdout, info


async def train_model(
    ctx: Any,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    trials: int | None = None,
    progress: Progress = _noop,
    tracker_factory: Callable[[], Any] | None = None,
) -> TrainOutcome:
    """Train, register and (maybe) promote a model on the stored features and labels."""
    began = time.perf_counter()
    settings = ctx.settings
    timeframe = settings.trading.signal_timeframe
    calculator = FeatureCalculator()
    spec = label_spec_of(settings)
    cfg = train_config_of(settings, trials)
    progress("load", 0, 1)
    features, labels, closes = await load_training_data(ctx, calculator, timeframe, start, end)
    last_candle = max(s.index.max() for s in closes.values())
    window_end = min(pd.Timestamp(end), last_candle) if end is not None else last_candle
    names = candidate_features(features, [n for n in calculator.names if n in features.columns])
    ts = build_training_set(
        features,
        labels,
        feature_set=calculator.feature_set,
        timeframe=str(timeframe),
        end=window_end.to_pydatetime(),
        feature_names=names,
        closes=closes,
    )
    progress("load", 1, 1)
    trained_from = ts.t0.min().to_pydatetime()
    trained_to = ts.t1.max().to_pydatetime()
    fingerprint = {
        "from": trained_from.isoformat(),
        "to": trained_to.isoformat(),
        "rows": len(ts),
        "tokens": sorted(set(ts.token.tolist())),
        "feature_set": calculator.feature_set,
        "features": names,
        "label_spec": spec.to_dict(),
        "config": {k: v for k, v in asdict(cfg).items() if k != "costs"},
    }
    version = model_version(trained_to, fingerprint)
    existing = await ctx.models.get(version)
    if existing is not None and ctx.store.exists(version):
        return TrainOutcome(
            model_version=version,
            status=existing.status,
            skipped=True,
            metrics=dict(existing.metrics),
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
    boosters, selected, params, cv_folds, holdout, info = fit_model(ts, cfg, progress)
    metrics: dict[str, Any] = mean_metrics([f.metrics for f in cv_folds])
    metrics.update({f"holdout_{k}": v for k, v in holdout.metrics.items()})
    metrics["cv_folds"] = len(cv_folds)
    metrics.update({k: v for k, v in info.items() if isinstance(v, (int, float))})
    artifact = ModelArtifact(
        version=version,
        boosters=boosters,
        feature_names=tuple(selected),
        feature_set=calculator.feature_set,
        params={**params, "num_boost_round": info["best_iterations"]},
        label_spec=spec.to_dict(),
        feature_spec=calculator.describe() | {"selected": selected},
        metrics=_finite(metrics),
        trained_from=trained_from,
        trained_to=trained_to,
        timeframe=str(timeframe),
    )
    progress("register", 0, 1)
    path = ctx.store.save(artifact)
    run_id = None
    if tracker_factory is not None:
        tracker = tracker_factory()
        run_id = tracker.log_run(
            run_name=version,
            params={
                **params,
                "trials": cfg.trials,
                "folds": cfg.folds,
                "embargo_bars": cfg.embargo_bars,
                "rows": len(ts),
                "features": len(selected),
                "feature_set": calculator.feature_set,
                "trained_from": trained_from.isoformat(),
                "trained_to": trained_to.isoformat(),
            },
            metrics={
                **{k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                **{f"fold{f.fold}_{k}": v for f in cv_folds for k, v in f.metrics.items()},
            },
            tags={"model_version": version, "feature_set": calculator.feature_set, "mode": "historical"},
            artifact_dir=path,
            documents={
                "feature_list.json": {"feature_set": calculator.feature_set, "names": selected},
                "label_spec.json": spec.to_dict(),
                "folds.json": [f.metrics for f in cv_folds],
                "training_info.json": info,
            },
        )
    status = await _decide_status(ctx, metrics)
    await ctx.models.insert(
        ModelRecord(
            model_version=version,
            feature_set=calculator.feature_set,
            feature_names=tuple(selected),
            params=_finite({**params, **info}),
            metrics=_finite(metrics),
            status=status,
            trained_from=trained_from,
            trained_to=trained_to,
            mlflow_run_id=run_id,
            label_spec=spec.to_dict(),
            feature_spec={"feature_set": calculator.feature_set, "spec": calculator.spec.to_dict()},
            artifact_path=str(path),
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
        artifact_path=str(path),
        rows=len(ts),
        features=len(selected),
        trained_from=trained_from,
        trained_to=trained_to,
        seconds=time.perf_counter() - began,
    )


async def _decide_status(ctx: Any, metrics: dict[str, Any]) -> ModelStatus:
    current = await ctx.models.champion()
    if current is None:
        return "champion"
    new = metrics.get("holdout_auc")
    old = (current.metrics or {}).get("holdout_auc")
    if new is None or not np.isfinite(new):
        return "challenger"
    if old is None or not np.isfinite(float(old)) or float(new) > float(old):
        return "champion"
    return "challenger"


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy: NaN/inf become None (jsonb rejects NaN)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, (float, np.floating)):
            out[key] = float(value) if np.isfinite(value) else None
        elif isinstance(value, np.integer):
            out[key] = int(value)
        elif isinstance(value, dict):
            out[key] = _finite(value)
        else:
            out[key] = value
    return out
