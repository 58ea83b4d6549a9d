"""How a distributed fit is split before anything is shipped: one job per instrument carrying only the
training rows' times and the subsample mask, and a clear refusal of a set the workers cannot rebuild."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tickwise.bootstrap.compute import side_partition_jobs
from tickwise.core.fitting import TUNED_DEFAULTS, TrainConfig
from tickwise.core.side_fit import FitSource, SideFit, fit_rows
from tickwise.core.timeframe_features import calculator_for
from tickwise.domain.errors import ModelError
from tickwise.domain.timeframe import Timeframe

sys.path.insert(0, str(Path(__file__).parent))
from historical_synthetic import synthetic_training_set

FEATURE_SET = calculator_for(Timeframe.M1).feature_set


def test_a_fit_becomes_one_job_per_instrument_with_its_rows_times_and_the_subsample() -> None:
    ts = replace(synthetic_training_set(n_bars=400, n_instruments=3), feature_set=FEATURE_SET)
    rows = np.arange(100, len(ts))
    request = SideFit(ts, -1, rows, TUNED_DEFAULTS, TrainConfig(max_train_rows=300), np.array([0, 2]), 7)
    jobs = side_partition_jobs(request, "postgresql://app@db/tickwise")
    assert [j.token for j in jobs] == [1, 2, 3]
    sorted_rows, keep = fit_rows(request)
    assert sum(len(j.times) for j in jobs) == len(sorted_rows)
    assert sum(int(j.keep.sum()) for j in jobs) == int(keep.sum()) == 300
    for job in jobs:
        mine = ts.token[sorted_rows] == job.token
        assert np.array_equal(job.times, ts.t0.as_unit("ns").asi8[sorted_rows][mine])
        assert np.all(np.diff(job.times) > 0)  # ascending: a worker finds each row by its time
        assert (job.side, job.feature_idx, job.regime) == (-1, (0, 2), None)
        assert job.read_columns == job.base_features == tuple(ts.feature_names)
        assert job.warmup == calculator_for(Timeframe.M1).warmup


def test_a_training_set_of_another_feature_set_is_refused_before_anything_is_shipped() -> None:
    ts = synthetic_training_set(n_bars=200, n_instruments=2)  # feature set "fs-test"
    request = SideFit(ts, 1, np.arange(len(ts)), TUNED_DEFAULTS, TrainConfig(), np.arange(2), 5, FitSource())
    with pytest.raises(ModelError, match="feature set fs-test"):
        side_partition_jobs(request, "postgresql://app@db/tickwise")
