"""One side's booster fit with a fixed number of rounds, as a request a trainer carries out
(``ports.booster_trainer.BoosterTrainer``), and the in-process trainer: exactly ``core.fitting.fit_side``.

A request carries, besides the in-memory training set, where its rows came from (``FitSource``: the load
window and the regime layer whose columns the set carries), so a trainer that loads the rows elsewhere
(Dask workers reading TimescaleDB, ``bootstrap.compute.DaskTrainer``) can load the same rows.
:func:`fit_rows` is the one definition of which rows a fixed-round fit trains on (the ``max_train_rows``
subsample), shared by both trainers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import lightgbm as lgb
import numpy as np

from tickwise.core.dataset import TrainingSet
from tickwise.core.fitting import BinnedRows, TrainConfig, _subsample, fit_side
from tickwise.core.model import LgbParams

__all__ = ["FitSource", "InProcessTrainer", "SideFit", "fit_rows"]


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
    rows = np.sort(request.rows)
    keep = np.zeros(len(rows), dtype=bool)
    keep[_subsample(np.arange(len(rows)), request.cfg.max_train_rows, request.cfg.seed)] = True
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
