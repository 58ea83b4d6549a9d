"""One side's booster fit with a fixed number of rounds, as a request a trainer carries out
(``ports.booster_trainer.BoosterTrainer``), and the in-process trainer: exactly ``core.fitting.fit_side``.

A request carries, besides the in-memory training set, where its rows came from (``FitSource``: the load
window and the regime layer whose columns the set carries), so a trainer that loads the rows elsewhere
(Dask workers reading TimescaleDB, ``bootstrap.compute.DaskTrainer``) can load the same rows.
:func:`fit_rows` is the one definition of which rows a fixed-round fit trains on (the ``max_train_rows``
subsample), shared by both trainers.

A trainer that is also a ``core.fit_jobs.FitRunner`` (``bootstrap.fit_pool.PoolTrainer``: worker
processes) trains a model's sides at once: :func:`fit_sides` submits them all before taking any, and
:func:`runner_of` hands the same runner to the fits that have no request (tuning's folds, the meta
model's refits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import lightgbm as lgb
import numpy as np

from tickwise.core.dataset import TrainingSet
from tickwise.core.fit_jobs import BoosterJob, FitRunner
from tickwise.core.fitting import (
    BinnedRows,
    TrainConfig,
    ascending_rows,
    fit_side,
    side_job,
    subsample_positions,
)
from tickwise.core.model import LgbParams

__all__ = [
    "FitSource",
    "InProcessTrainer",
    "SideFit",
    "fit_rows",
    "fit_sides",
    "job_of",
    "runner_of",
    "start_sides",
]


@dataclass(frozen=True)
class FitSource:
    """Where a training set's rows were read from: ``pipelines.historical.train.load_timeframe``'s
    ``start``/``end``, and the regime layer (``RegimeLayer.to_dict()``) whose columns were appended."""

    start: datetime | None = None
    end: datetime | None = None
    regime: Mapping[str, object] | None = None


@dataclass(frozen=True)
class SideFit:
    """``fit_side(ts, side, rows, params, cfg, feature_idx, num_boost_round=num_boost_round)``."""

    ts: TrainingSet
    side: int
    rows: np.ndarray
    params: LgbParams  # the tuned parameters; the seeds come from ``cfg.seed`` (core.model.lgb_params)
    cfg: TrainConfig
    feature_idx: np.ndarray
    num_boost_round: int
    source: FitSource = field(default_factory=FitSource)
    # Bins shared with the other fits of the same rows (both sides): in-process only; a trainer that
    # loads the rows elsewhere bins them there.
    binned: BinnedRows | None = None

    @property
    def feature_names(self) -> list[str]:
        return [self.ts.feature_names[i] for i in self.feature_idx]


def fit_rows(request: SideFit) -> tuple[np.ndarray, np.ndarray]:
    """The training rows in the order a fixed-round ``fit_side`` uses them (sorted), and the mask of the
    ones it trains on: all of them, or a seeded subsample of ``cfg.max_train_rows``."""
    rows = ascending_rows(request.rows)
    keep = np.zeros(len(rows), dtype=bool)
    keep[subsample_positions(len(rows), request.cfg.max_train_rows, request.cfg.seed)] = True
    return rows, keep


class InProcessTrainer:
    """Trains in this process: the single-machine path, bit for bit what training did before the port."""

    @property
    def provenance(self) -> Mapping[str, str | int]:
        return {}

    def fit(self, request: SideFit) -> lgb.Booster:
        booster, _ = fit_side(
            request.ts,
            request.side,
            request.rows,
            request.params,
            request.cfg,
            request.feature_idx,
            num_boost_round=request.num_boost_round,
            binned=request.binned,
        )
        return booster


def job_of(request: SideFit) -> BoosterJob:
    """``request`` as the job ``fit_side`` trains (same rows, subsample, weights, parameters, rounds)."""
    return side_job(
        request.ts,
        request.side,
        request.rows,
        request.params,
        request.cfg,
        request.feature_idx,
        request.num_boost_round,
    )


def runner_of(trainer: object) -> FitRunner | None:
    """``trainer`` when it also runs jobs (worker processes), else None (fit here, or by its ``fit``)."""
    return trainer if isinstance(trainer, FitRunner) else None


class _Fits(Protocol):
    def fit(self, request: SideFit) -> lgb.Booster: ...


def fit_sides(trainer: _Fits, requests: Sequence[SideFit]) -> dict[int, lgb.Booster]:
    """Each request's booster by side: all submitted at once when ``trainer`` runs jobs (the results
    taken in order), else fitted one after the other by ``trainer.fit``."""
    return start_sides(trainer, requests)()


def start_sides(trainer: _Fits, requests: Sequence[SideFit]) -> Callable[[], dict[int, lgb.Booster]]:
    """:func:`fit_sides` in two steps: the fits are submitted now (when ``trainer`` runs jobs) and the
    returned call collects them, so the caller can do other work (another fit) meanwhile; with a
    trainer that does not run jobs, the returned call fits them."""
    runner = runner_of(trainer)
    if runner is None:
        return lambda: {request.side: trainer.fit(request) for request in requests}
    futures = [(request.side, runner.submit(job_of(request))) for request in requests]

    def collect() -> dict[int, lgb.Booster]:
        try:
            return {side: future.result().booster for side, future in futures}
        except BaseException:
            for _, future in futures:
                future.cancel()
            raise

    return collect
