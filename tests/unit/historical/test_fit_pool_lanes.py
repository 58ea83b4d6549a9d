"""A fit pool sends a job to the worker that binned its rows (``bootstrap.fit_pool._Lanes``) unless
that would leave another worker with less to do: both sides of a fold are binned once, not in each
worker, and the boosters are those of one process, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from historical_synthetic import synthetic_frames

from tickwise.bootstrap.fit_pool import _Lanes, bins_held, open_fit_pool, rows_key
from tickwise.core.dataset import TrainingSet, build_training_set
from tickwise.core.fitting import TUNED_DEFAULTS, TrainConfig, fit_side, side_job
from tickwise.core.model import SIDES

CFG = TrainConfig(folds=3, trials=3, num_boost_round=20, early_stopping_rounds=5, max_train_rows=2_000)


@pytest.fixture(scope="module")
def ts() -> TrainingSet:
    features, labels = synthetic_frames(n_bars=1200, n_instruments=3, n_noise=6, seed=5)
    return build_training_set(features, labels, feature_set="fs-test", timeframe="1m")


def test_a_job_goes_to_the_lane_that_was_sent_its_rows() -> None:
    lanes = _Lanes(2)
    first = lanes.take(b"fold-1")
    assert lanes.take(b"fold-1") == first  # one more waiting there is within the slack
    other = lanes.take(b"fold-2")
    assert other != first
    assert lanes.take(b"fold-2") == other


def test_a_lane_with_more_waiting_than_the_slack_gives_the_job_to_the_least_busy_one() -> None:
    lanes = _Lanes(2, slack=1)
    # waiting [1, 0], [2, 0]; a third there would leave lane 0 two ahead: lane 1 takes it (and the rows)
    assert [lanes.take(b"rows") for _ in range(3)] == [0, 0, 1]
    assert lanes.take(None) == 1  # a task goes to the least busy: [2, 1] -> [2, 2]
    assert lanes.take(b"rows") == 1  # sent there last, and within the slack: [2, 3]


def test_finished_jobs_free_their_lane() -> None:
    lanes = _Lanes(2, slack=0)
    assert lanes.take(b"a") == 0
    assert lanes.take(b"a") == 1  # lane 0 busy, no slack
    lanes.done(0)
    lanes.done(1)
    assert lanes.take(b"a") == 1  # sent there last, and nothing waits anywhere


def test_both_sides_of_a_fit_are_binned_in_one_worker_and_train_the_process_boosters(ts: TrainingSet) -> None:
    idx = np.arange(len(ts.feature_names))
    rows = np.arange(100, len(ts))
    jobs = [side_job(ts, side, rows, TUNED_DEFAULTS, CFG, idx, 15) for side in SIDES]
    assert rows_key(jobs[0]) == rows_key(jobs[1])
    with open_fit_pool(2) as pool:
        fitted = [f.result(timeout=120) for f in [pool.submit(job) for job in jobs]]
        held = sorted(executor.submit(bins_held).result(timeout=60) for executor in pool._executors)
    assert held == [0, 1]  # one worker binned the rows once; the old pool binned them in both
    for side, got in zip(SIDES, fitted, strict=True):
        expected, _ = fit_side(ts, side, rows, TUNED_DEFAULTS, CFG, idx, 15)
        assert got.booster.model_to_string() == expected.model_to_string()
