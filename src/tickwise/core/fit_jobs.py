"""One booster fit as a job, and where jobs run: the unit the training stages hand out, so that fits
that do not depend on each other (a fold's two sides, a trial's cv folds, the out-of-fold refits) can
train at the same time in other processes (``bootstrap.fit_pool``, issue 14) with the very result they
have in this process.

A :class:`BoosterJob` is everything one ``lgb.train`` call uses, decided here: the rows and columns of
the training set it trains on (already the ``max_train_rows`` subsample), their labels and weights, the
full LightGBM parameters, the rounds, and the early-stopping tail when there is one. Nothing about it is
decided where it runs, so a fit is the same wherever it trains: LightGBM with ``deterministic`` and one
thread is a pure function of its input (the bins are computed from the same float64 matrix).

A :class:`FitRunner` takes jobs and gives back futures. :class:`InlineRunner` is the single-process path:
it fits lazily, when a result is asked for, in the order asked, sharing binned Datasets between jobs on
the same rows (``core.fitting.BinnedRows``), so training in one process is what it was before jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np

from tickwise.core.dataset import FeatureMatrix
from tickwise.core.model import LgbParams, fit_booster

if TYPE_CHECKING:
    import lightgbm as lgb

    from tickwise.core.fitting import BinnedRows

__all__ = [
    "SCORE_WINDOW",
    "BoosterJob",
    "FitFuture",
    "FitRunner",
    "FitTargets",
    "FittedBooster",
    "InlineRunner",
    "JobRows",
    "TaskFuture",
    "TaskRunner",
    "fitted_of",
    "score_matrix",
    "start_task",
    "train_job",
    "train_targets",
]

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


@dataclass(frozen=True)
class JobRows:
    """Rows ``rows`` (positions in the training set), columns ``cols`` of a training set's matrix ``x``."""

    x: FeatureMatrix
    rows: np.ndarray
    cols: np.ndarray

    def gather(self) -> np.ndarray:
        """The float64 matrix LightGBM bins, C-contiguous (a fresh gather: the in-process path's bytes)."""
        return np.ascontiguousarray(self.x[np.ix_(self.rows, self.cols)], dtype=np.float64)


@dataclass(frozen=True)
class BoosterJob:
    """``fit_booster(train, y, params=params, num_boost_round=..., feature_names=names, weight=weight,
    valid=valid, early_stopping_rounds=...)`` over training-set rows, and the gain importance of the
    trees it keeps (``best_iteration``, else every round)."""

    train: JobRows
    y: np.ndarray
    weight: np.ndarray
    names: list[str]
    params: LgbParams  # complete: BASE_PARAMS, the tuned values and the seeds (core.model.lgb_params)
    num_boost_round: int
    valid: tuple[JobRows, np.ndarray, np.ndarray] | None = None
    early_stopping_rounds: int | None = None
    # Rows to score with the trained booster at its rounds (a cv fold's or the holdout's test rows): a
    # runner in other processes may score them where the booster is (``FittedBooster.scores``), so this
    # process does not; one that does not leaves ``scores`` None and the caller scores them itself.
    score: JobRows | None = None

    @property
    def early_stopped(self) -> bool:
        return self.valid is not None


@dataclass(frozen=True)
class FitTargets:
    """A job without its rows: what its fit trains towards (labels, weights, the early-stopping tail's
    labels and weights) and how. What a worker needs besides the rows it gathers or has binned."""

    y: np.ndarray
    weight: np.ndarray
    names: list[str]
    params: LgbParams
    num_boost_round: int
    valid: tuple[np.ndarray, np.ndarray] | None = None  # the early-stopping tail's labels and weights
    early_stopping_rounds: int | None = None

    @property
    def early_stopped(self) -> bool:
        return self.valid is not None

    @classmethod
    def of(cls, job: BoosterJob) -> FitTargets:
        valid = None if job.valid is None else (job.valid[1], job.valid[2])
        return cls(
            job.y, job.weight, job.names, job.params, job.num_boost_round, valid, job.early_stopping_rounds
        )


@dataclass(frozen=True)
class FittedBooster:
    """A job's booster, the rounds its predictions use (the early-stopped best, else all) and the gain
    importance per feature at those rounds (computed where the booster was trained: a booster rebuilt
    from its text has its split gains rounded to six digits, its thresholds and leaves exact)."""

    booster: lgb.Booster
    rounds: int
    gain: np.ndarray
    # The job's ``score`` rows' probabilities at ``rounds`` (``score_matrix``), when they were scored
    # where the booster was trained; None: not asked for, or left to the caller.
    scores: np.ndarray | None = None


def fitted_of(booster: lgb.Booster, job: BoosterJob | FitTargets) -> FittedBooster:
    """The result of ``job`` once its booster is trained (the rounds rule of ``core.fitting.fit_side``)."""
    rounds = (
        int(booster.best_iteration or booster.current_iteration())
        if job.early_stopped
        else job.num_boost_round
    )
    gain = np.asarray(booster.feature_importance(importance_type="gain", iteration=rounds), dtype=np.float64)
    return FittedBooster(booster, rounds, gain)


def train_job(
    job: BoosterJob,
    train: np.ndarray | lgb.Dataset,
    valid: np.ndarray | lgb.Dataset | None = None,
) -> FittedBooster:
    """Train ``job`` on ``train`` (its training matrix, or that matrix's binned Dataset) and ``valid``
    (the early-stopping tail's matrix or Dataset binned with ``train``'s bins)."""
    return train_targets(FitTargets.of(job), train, valid)


def train_targets(
    targets: FitTargets,
    train: np.ndarray | lgb.Dataset,
    valid: np.ndarray | lgb.Dataset | None = None,
) -> FittedBooster:
    """:func:`train_job` of a job's :class:`FitTargets` and its rows as given (what a worker trains:
    the rows it gathered, or their Dataset binned for an earlier fit)."""
    valid_set = None
    if targets.valid is not None:
        if valid is None:
            raise ValueError("an early-stopped job needs its validation rows")
        valid_set = (valid, targets.valid[0], targets.valid[1])
    booster = fit_booster(
        train,
        targets.y,
        params=targets.params,
        num_boost_round=targets.num_boost_round,
        feature_names=targets.names,
        weight=targets.weight,
        valid=valid_set,
        early_stopping_rounds=targets.early_stopping_rounds,
    )
    return fitted_of(booster, targets)


# Rows scored per gather: a test fold or holdout is scored window by window, so the matrix in memory
# is one window's (about 40 MB at 80 features), whatever the data's size (issue 15).
SCORE_WINDOW = 65_536


def score_matrix(
    booster: lgb.Booster,
    gather: Callable[[int, int], np.ndarray],
    n: int,
    num_iteration: int | None,
    window: int = SCORE_WINDOW,
) -> np.ndarray:
    """``booster``'s probabilities of ``n`` rows, ``gather(i, j)`` giving rows ``i:j`` as a float64 matrix,
    scored ``window`` rows at a time: each row's score is its own, so the result equals one call's bit
    for bit, wherever the rows are gathered."""
    parts = [
        np.asarray(
            booster.predict(np.ascontiguousarray(gather(i, min(i + window, n))), num_iteration=num_iteration),
            dtype=np.float64,
        )
        for i in range(0, max(n, 1), window)
    ]
    out: np.ndarray = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return out


class FitFuture(Protocol):
    """A job's pending result (``concurrent.futures.Future`` is one)."""

    def result(self, timeout: float | None = None) -> FittedBooster: ...

    def cancel(self) -> bool: ...


@runtime_checkable
class FitRunner(Protocol):
    """Where jobs train. ``submit`` never blocks on the fit; results are taken in any order."""

    def submit(self, job: BoosterJob) -> FitFuture: ...


class TaskFuture(Protocol[R_co]):
    """A task's pending result (``concurrent.futures.Future`` is one)."""

    def result(self, timeout: float | None = None) -> R_co: ...

    def cancel(self) -> bool: ...


@runtime_checkable
class TaskRunner(Protocol):
    """Where a training step that is not a booster fit runs (a fold's regime layer): a picklable
    call without arguments, a pure function of what it holds, so its result is the same wherever it
    runs. ``run_task`` never blocks on the task."""

    def run_task(self, task: Callable[[], R]) -> TaskFuture[R]: ...


def start_task(runner: object, task: Callable[[], R]) -> TaskFuture[R]:
    """``task`` started by ``runner`` when it runs tasks (worker processes: it starts now), else run
    in this process when its result is first asked for (or never, once cancelled)."""
    return runner.run_task(task) if isinstance(runner, TaskRunner) else _Deferred(task)


class _Deferred(Generic[R]):
    """A call run when its result is first asked for (or never, once cancelled)."""

    def __init__(self, fit: Callable[[], R]) -> None:
        self._fit: Callable[[], R] | None = fit
        self._result: tuple[R] | None = None

    def result(self, timeout: float | None = None) -> R:
        if self._result is None:
            if self._fit is None:
                raise RuntimeError("the fit was cancelled")
            self._result, self._fit = (self._fit(),), None
        return self._result[0]

    def cancel(self) -> bool:
        if self._result is not None:
            return False
        self._fit = None
        return True


class InlineRunner:
    """Fits in this process, each when its result is asked for, with the binned Datasets of ``binned``
    shared by every job on the same rows (both sides of a model, every Optuna trial on one cv fold)."""

    def __init__(self, binned: BinnedRows | None = None) -> None:
        if binned is None:
            from tickwise.core.fitting import BinnedRows

            binned = BinnedRows(capacity=2)
        self.binned = binned

    def submit(self, job: BoosterJob) -> FitFuture:
        return _Deferred(lambda: self.fit(job))

    def fit(self, job: BoosterJob) -> FittedBooster:
        binned = self.binned
        train = binned.train_set(job.train.x, job.train.rows, job.train.cols, job.names)
        valid = None
        if job.valid is not None:
            rows = job.valid[0]
            valid = binned.valid_set(rows.x, rows.rows, rows.cols, train)
        return train_job(job, train, valid)
