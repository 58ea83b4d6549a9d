"""Optuna tuning on purged walk-forward folds (labeling.md §9-§10).

Nested walk-forward: the last ``holdout_fraction`` of the timeline (a contiguous t0 block, purged) is
kept out of tuning; Optuna tunes on purged walk-forward folds of the development part; the holdout then
measures the tuned model once. The fitting and measuring itself is ``core.fitting``; this module stays
in the pipeline because a configured Optuna storage (``model_training.optuna_storage``) is a database.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy.exc

from tickwise.core.dataset import TrainingSet
from tickwise.core.fit_jobs import FitRunner
from tickwise.core.fitting import (
    TUNED_DEFAULTS,
    BinnedRows,
    FoldResult,
    KeptWeights,
    TrainConfig,
    walk_forward,
)
from tickwise.core.model import LgbParams

if TYPE_CHECKING:  # imported where a study runs: a live process (which imports this module) never tunes
    import optuna


def _suggest(trial: optuna.Trial) -> LgbParams:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 7, 63),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 50, 1000, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "bagging_freq": 1,
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
    }


def tune(
    ts: TrainingSet,
    rows: np.ndarray,
    cfg: TrainConfig,
    on_trial: Callable[[int, float], None] | None = None,
    runner: FitRunner | None = None,
) -> tuple[LgbParams, list[FoldResult], int]:
    """Optuna TPE over the purged folds of ``rows`` (mean log-loss of both sides), median pruning per fold.

    Trial 0 evaluates :data:`TUNED_DEFAULTS`, so one trial is a sensible untuned baseline. Returns the best
    params, the best trial's fold results and the number of pruned trials.

    With ``cfg.optuna_storage`` (an RDB URL) the study ``cfg.study_name`` is shared: every process that
    trains the same data and configuration (``tickwise train`` on several machines) joins it, the
    study stops at ``cfg.trials`` finished trials in all (not per process), and each process picks the
    best trial of the whole study, re-running its folds here when another process ran it (training
    is deterministic, so the result is the same).

    The trials run one after the other (TPE proposes from the finished ones); inside a trial, the cv
    folds' fits go to ``runner`` all at once (worker processes: trained at the same time; default: in
    this process, one by one) and are reported to the pruner in fold order, so a trial's value, its
    pruning and the study are the same wherever the fits train.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(cfg.optuna_storage) if cfg.optuna_storage else None
    study = optuna.create_study(
        study_name=cfg.study_name if storage else None,
        storage=storage,
        load_if_exists=bool(storage),
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=cfg.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    if not study.trials:  # the first process of a shared study queues the baseline, once
        study.enqueue_trial({k: v for k, v in TUNED_DEFAULTS.items() if k != "bagging_freq"})
    results: dict[int, list[FoldResult]] = {}
    # Every trial fits the same cv folds' rows: each fold's Datasets are binned once, for all trials
    # (a fold fits a training and a validation Dataset; the folds' rows never change between trials).
    binned = BinnedRows(capacity=2 * cfg.folds + 2)
    kept = KeptWeights(capacity=2 * cfg.folds)  # and each fold's window weights per side, made once

    def objective(trial: optuna.Trial) -> float:
        params = _suggest(trial)
        losses: list[float] = []

        def report(k: int, fold: FoldResult) -> None:
            losses.append(fold.metrics["logloss"])
            trial.report(float(np.mean(losses)), k)
            if trial.should_prune():
                raise optuna.TrialPruned()

        folds = walk_forward(ts, rows, cfg, params, on_fold=report, binned=binned, runner=runner, kept=kept)
        if not folds:
            raise optuna.TrialPruned()
        results[trial.number] = folds
        value = float(np.mean([f.metrics["logloss"] for f in folds]))
        return value if math.isfinite(value) else float("inf")

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None:
            on_trial(trial.number, trial.value if trial.value is not None else float("nan"))

    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = [callback]
    if storage:
        # cfg.trials for the study, whichever process runs them (a process stops after its trial
        # that brings the study to the total).
        callbacks.append(optuna.study.MaxTrialsCallback(cfg.trials, states=finished))
    if not storage or _count(study, finished) < cfg.trials:
        study.optimize(objective, n_trials=cfg.trials, callbacks=callbacks, gc_after_trial=False)
    trials = study.get_trials(deepcopy=False)
    completed = [
        t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and (storage or t.number in results)
    ]
    pruned = sum(1 for t in trials if t.state == optuna.trial.TrialState.PRUNED)
    if not completed:
        params = dict(TUNED_DEFAULTS)
        return params, walk_forward(ts, rows, cfg, params, binned=binned, runner=runner), pruned
    best = min(completed, key=lambda t: (t.value if t.value is not None else float("inf"), t.number))
    params = dict(best.params)
    params["bagging_freq"] = 1
    folds = results.get(best.number)
    if folds is None:  # another process of the shared study ran the best trial
        folds = walk_forward(ts, rows, cfg, params, binned=binned, runner=runner)
    return params, folds, pruned


def _storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at ``url``. Processes that start at once on a fresh database race to create
    Optuna's tables (a duplicate ``CREATE TYPE`` fails one of them): the loser retries and finds them."""
    import optuna

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _count(study: optuna.Study, states: tuple[optuna.trial.TrialState, ...]) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state in states)
