"""The ensemble's out-of-sample history: a stacked logistic layer over the members' OOS probabilities.

The members are the signal timeframes' fold models (``oos.py``): every bar they scored has out-of-sample
probabilities. For each bar of the ensemble timeframe the member inputs are the members' latest
probabilities available at its close (``core.ensemble.member_inputs``); the events are that timeframe's
triple-barrier labels (both sides). The ensemble is refitted walk-forward like the members
(``core.walk_forward``, ``ensemble:`` in the configuration, embargo = ``embargo_bars`` bars of its
timeframe): each ensemble fold trains on the events whose labels ended before its cutoff, and scores
only the bars after its training labels plus the embargo. So an ensemble signal never depends on a
label it could not have known, and its inputs were themselves out of sample.

Each ensemble fold is a ``models`` row (status ``fold``, ``params.kind = 'ensemble'``, the layer's
coefficients in ``params.stacked``), with no bundle on disk (the coefficients are the model). Live
combines the newest fold model of each member timeframe, the ones that score new bars here too.
Its signals have ``timeframe`` = the ensemble timeframe, ``model_version`` = the ensemble version,
``feature_set`` = ``ensemble`` and ``sample = 'oos'``; ``signal_members`` records per signal each
member's version, bar and probabilities.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tickwise.core.ensemble import (
    ENSEMBLE_FEATURE_SET,
    EnsembleSpec,
    StackedLogistic,
    ensemble_generator,
    fit_stacked,
    input_names,
    member_inputs,
)
from tickwise.core.metrics import roc_auc
from tickwise.core.signals import SignalGenerator
from tickwise.core.training import json_safe, model_version
from tickwise.core.walk_forward import WalkForwardStep, assign_steps, walk_forward_schedule
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.context import HistoricalPorts
from tickwise.pipelines.historical.oos import FoldOutcome, MemberHistory, OosOptions, OosOutcome, Progress
from tickwise.ports.experiment_tracker import ExperimentTracker
from tickwise.ports.repositories import ModelRecord
from tickwise.ports.signal_members import MEMBER_ROW_COLUMNS


@dataclass(frozen=True)
class EnsembleEvents:
    """The ensemble timeframe's bars with every member present, and their labels where labelled."""

    inputs: pd.DataFrame  # member_inputs rows that are ready, sorted by (time, instrument)
    probs: np.ndarray  # (n, 2 * members) in input_names order
    y_long: np.ndarray  # 0/1, NaN-free only where labelled
    y_short: np.ndarray
    labelled: np.ndarray  # positions of inputs rows with both sides labelled
    t1: pd.DatetimeIndex  # label end of the labelled rows


async def _events(
    ctx: HistoricalPorts, spec: EnsembleSpec, members: Sequence[MemberHistory]
) -> EnsembleEvents | None:
    names = [str(m.timeframe) for m in members]
    own = next((m for m in members if m.timeframe is spec.timeframe), None)
    if own is None or any(m.scores.empty for m in members):
        return None
    bars = own.scores.loc[:, ["instrument_token", "time", "available_at"]]
    joined = member_inputs(bars, {str(m.timeframe): m.scores for m in members})
    joined = joined[joined["ready"]]
    if joined.empty:
        return None
    joined = joined.sort_values(["time", "instrument_token"], kind="mergesort").reset_index(drop=True)
    labels = []
    for token in sorted(set(joined["instrument_token"].tolist())):
        lab = await ctx.labels.read_frame(token, spec.timeframe, None, None)
        if len(lab):
            labels.append(lab.loc[:, ["instrument_token", "time", "side", "label", "t1"]])
    y_long = np.zeros(len(joined), dtype=np.int8)
    y_short = np.zeros(len(joined), dtype=np.int8)
    labelled = np.empty(0, dtype=np.int64)
    t1 = pd.DatetimeIndex([], tz="UTC")
    if labels:
        lab = pd.concat(labels, ignore_index=True)
        lab["time"] = pd.to_datetime(lab["time"], utc=True)
        lab["t1"] = pd.to_datetime(lab["t1"], utc=True)
        sides = {
            side: lab[lab["side"] == side].set_index(["instrument_token", "time"])[["label", "t1"]]
            for side in (1, -1)
        }
        key = pd.MultiIndex.from_frame(joined[["instrument_token", "time"]])
        long_ = sides[1].reindex(key)
        short = sides[-1].reindex(key)
        both = long_["label"].notna().to_numpy() & short["label"].notna().to_numpy()
        labelled = np.flatnonzero(both).astype(np.int64)
        y_long = (long_["label"].to_numpy() == 1).astype(np.int8)
        y_short = (short["label"].to_numpy() == 1).astype(np.int8)
        ends = np.maximum(
            pd.DatetimeIndex(long_["t1"].to_numpy()[both]).asi8,
            pd.DatetimeIndex(short["t1"].to_numpy()[both]).asi8,
        )
        t1 = pd.DatetimeIndex(ends).tz_localize("UTC")
    probs = joined.loc[:, list(input_names(names))].to_numpy(dtype=np.float64)
    return EnsembleEvents(joined, probs, y_long, y_short, labelled, t1)


def _members_frame(
    scored: pd.DataFrame, names: Sequence[str], version: str, timeframe: Timeframe
) -> pd.DataFrame:
    parts = []
    for name in names:
        parts.append(
            pd.DataFrame(
                {
                    "instrument_token": scored["instrument_token"].to_numpy(dtype=np.int64),
                    "timeframe": str(timeframe),
                    "time": scored["time"].to_numpy(),
                    "model_version": version,
                    "mode": "historical",
                    "member_timeframe": name,
                    "member_version": scored[f"{name}_version"].to_numpy(dtype=object),
                    "member_time": scored[f"{name}_time"].to_numpy(),
                    "p_long": scored[f"{name}_p_long"].to_numpy(dtype=np.float64),
                    "p_short": scored[f"{name}_p_short"].to_numpy(dtype=np.float64),
                },
                columns=list(MEMBER_ROW_COLUMNS),
            )
        )
    return pd.concat(parts, ignore_index=True)


def ensemble_signals(
    scored: pd.DataFrame,
    layer: StackedLogistic,
    generator: SignalGenerator,
    version: str,
    timeframe: Timeframe,
) -> pd.DataFrame:
    """Signal rows (contract columns + ``size``) of ready member-input rows ``scored``."""
    probs = layer.predict(scored.loc[:, list(layer.inputs)].to_numpy(dtype=np.float64))
    batch = generator.generate(probs[:, 0], probs[:, 1])
    times = pd.DatetimeIndex(scored["time"])
    return pd.DataFrame(
        {
            "instrument_token": scored["instrument_token"].to_numpy(dtype=np.int64),
            "timeframe": str(timeframe),
            "time": times,
            "available_at": times + timeframe.delta,
            "model_version": version,
            "direction": batch.direction.astype(np.int64),
            "confidence": batch.confidence,
            "mode": "historical",
            "feature_set": ENSEMBLE_FEATURE_SET,
            "latency_ms": np.nan,
            "size": batch.size,
            "sample": "oos",
        }
    )


async def write_ensemble_history(
    ctx: HistoricalPorts,
    spec: EnsembleSpec,
    oos: OosOptions,
    members: Sequence[MemberHistory],
    *,
    progress: Progress,
    tracker: Callable[[], ExperimentTracker | None],
    on_trained: Callable[[ModelRecord], Awaitable[None]] | None = None,
) -> OosOutcome:
    """Fit (or reuse) every ensemble fold and write its out-of-sample signals and members."""
    began = time.perf_counter()
    outcome = OosOutcome(embargo=spec.schedule.embargo.to_pytimedelta(), timeframe=str(spec.timeframe))
    names = [str(m.timeframe) for m in members]
    events = await _events(ctx, spec, members)
    if events is None or len(events.labelled) == 0:
        outcome.note = "no bar has out-of-sample probabilities from every member yet: no ensemble"
        outcome.seconds = time.perf_counter() - began
        return outcome
    bar_times = pd.DatetimeIndex(events.inputs["time"])
    t0 = bar_times[events.labelled]
    steps = walk_forward_schedule(bar_times, t0, events.t1, spec.schedule)
    if not steps:
        outcome.note = (
            f"no ensemble fold yet: it needs {spec.schedule.min_train_sessions} sessions and "
            f"{spec.schedule.min_train_events} labelled events of the members' out-of-sample history"
        )
        outcome.seconds = time.perf_counter() - began
        return outcome
    owner = assign_steps(bar_times, steps)
    signals = ctx.options.signals
    generator = ensemble_generator(
        ctx.options.label_spec.to_dict(),
        threshold=signals.threshold,
        kelly_fraction=signals.kelly_fraction,
        max_position=signals.max_position,
    )
    pooled: list[tuple[np.ndarray, np.ndarray]] = []
    for k, step in enumerate(steps):
        progress("ensemble folds", k, len(steps))
        fitted = await _ensemble_fold(ctx, spec, events, step, names, on_trained)
        if fitted is None:
            outcome.note = f"ensemble fold {step.step} skipped: its training outcomes hold one class"
            continue
        layer, fold = fitted
        rows = np.flatnonzero(owner == k)
        if len(rows):
            scored = events.inputs.iloc[rows]
            frame = ensemble_signals(scored, layer, generator, fold.model_version, spec.timeframe)
            fold.rows = await ctx.signals.add_frame(frame)
            await ctx.signal_members.add_frame(
                _members_frame(scored, names, fold.model_version, spec.timeframe)
            )
            outcome.rows += fold.rows
            outcome.longs += int((frame["direction"] == 1).sum())
            outcome.shorts += int((frame["direction"] == -1).sum())
            mine = np.flatnonzero(owner[events.labelled] == k)
            if len(mine):
                pooled.append((mine, layer.predict(events.probs[events.labelled[mine]])))
        outcome.folds.append(fold)
    progress("ensemble folds", len(steps), len(steps))
    outcome.metrics = _pooled(events, pooled)
    outcome.seconds = time.perf_counter() - began
    return outcome


def _pooled(events: EnsembleEvents, pooled: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    if not pooled:
        return {}
    at = np.concatenate([r for r, _ in pooled])
    probs = np.vstack([p for _, p in pooled])
    rows = events.labelled[at]
    long_auc = roc_auc(events.y_long[rows], probs[:, 0])
    short_auc = roc_auc(events.y_short[rows], probs[:, 1])
    return {
        "oos_events": float(len(rows)),
        "oos_long_auc": long_auc,
        "oos_short_auc": short_auc,
        "oos_auc": float(np.nanmean([long_auc, short_auc])),
    }


async def _ensemble_fold(
    ctx: HistoricalPorts,
    spec: EnsembleSpec,
    events: EnsembleEvents,
    step: WalkForwardStep,
    names: Sequence[str],
    on_trained: Callable[[ModelRecord], Awaitable[None]] | None,
) -> tuple[StackedLogistic, FoldOutcome] | None:
    rows = events.labelled[step.train_idx]
    probs = events.probs[rows]
    y_long, y_short = events.y_long[rows], events.y_short[rows]
    trained_from = step.trained_from.to_pydatetime()
    trained_to = step.trained_to.to_pydatetime()
    fingerprint = {
        "kind": "ensemble",
        "timeframe": str(spec.timeframe),
        "members": list(names),
        "from": trained_from.isoformat(),
        "to": trained_to.isoformat(),
        "rows": len(rows),
        # the inputs themselves: other member models (or corrected labels) make another ensemble
        "data": hashlib.sha256(
            np.ascontiguousarray(probs).tobytes() + np.stack([y_long, y_short]).tobytes()
        ).hexdigest()[:16],
        "regularization": spec.regularization,
    }
    version = "e" + model_version(trained_to, fingerprint)[1:]
    score_to = None if step.score_to is None else step.score_to.to_pydatetime()
    fold = FoldOutcome(
        version, step.step, trained_from, trained_to, step.score_from.to_pydatetime(), score_to, reused=True
    )
    existing = await ctx.models.get(version)
    stored = None if existing is None else existing.params.get("stacked")
    if existing is not None and isinstance(stored, dict):
        fold.metrics = dict(existing.metrics)
        if on_trained is not None:
            await on_trained(existing)
        return StackedLogistic.from_dict(stored), fold
    layer = fit_stacked(names, probs, y_long, y_short, spec.regularization)
    if layer is None:
        return None
    fold.reused = False
    in_sample = layer.predict(probs)
    metrics = json_safe(
        {
            "train_events": float(len(rows)),
            "train_long_auc": roc_auc(y_long, in_sample[:, 0]),
            "train_short_auc": roc_auc(y_short, in_sample[:, 1]),
        }
    )
    fold.metrics = metrics
    params = {
        "kind": "ensemble",
        "timeframe": str(spec.timeframe),
        "members": list(names),
        "stacked": layer.to_dict(),
        "regularization": spec.regularization,
        "embargo_seconds": spec.schedule.embargo.total_seconds(),
        "walk_forward_step": step.step,
        "score_from": step.score_from.isoformat(),
        "train_events": len(rows),
    }
    record = ModelRecord(
        model_version=version,
        feature_set=ENSEMBLE_FEATURE_SET,
        feature_names=layer.inputs,
        params=json_safe(params),
        metrics=metrics,
        status="fold",
        trained_from=trained_from,
        trained_to=trained_to,
        label_spec=ctx.options.label_spec.to_dict(),
    )
    await ctx.models.insert(record)
    if on_trained is not None:
        await on_trained(record)
    return layer, fold
