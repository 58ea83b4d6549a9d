"""Fit jobs whose rows come from a spilled training load travel to the pool's workers by reference
(``bootstrap.fit_pool.SpilledRows``: the spill files' paths, the rows' bar positions and the appended
per-bar columns of those rows), and the worker gathers the very matrix this process would: the same
bytes, so the same boosters, rounds and gains as a fit in this process. A job whose spill file is gone
fails with a clear error."""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_pool_helpers import (
    assert_a_worker_fits_both_sides_binning_the_rows_once,
    assert_pooled_fits_are_the_process_fits,
    assert_pooled_tuning_is_the_process_tuning,
)
from historical_synthetic import synthetic_frames

from tickwise.adapters.local.row_spill import FileRows, ScratchRowSpill
from tickwise.bootstrap import fit_pool
from tickwise.bootstrap.fit_pool import FitPool, SpilledRows, open_fit_pool
from tickwise.core.dataset import (
    BarsBuilder,
    KeptLabels,
    RowMatrix,
    TrainingSet,
    labels_by_instrument,
    training_set_of,
)
from tickwise.core.fit_jobs import BoosterJob
from tickwise.core.fitting import TUNED_DEFAULTS, TrainConfig, side_job
from tickwise.domain.errors import ModelError
from tickwise.pipelines.historical.train import compact_labels

NAMES = ["signal", "noise_0", "noise_1", "noise_2", "noise_3"]
CFG = TrainConfig(
    folds=3, trials=2, num_boost_round=25, early_stopping_rounds=5, max_train_rows=1_500, embargo_bars=10
)


def _spilled_set(spill: ScratchRowSpill) -> TrainingSet:
    """A training set as a run's load builds it: every instrument's matrix, the bars' keys, the labels
    and the set's columns in spill files, and the closes the window weights read."""
    features, labels = synthetic_frames(n_bars=1200, n_instruments=3, seed=5)
    features.loc[features.sample(frac=0.03, random_state=2).index, "noise_1"] = np.nan
    builder = BarsBuilder(NAMES, keep=spill.keep, keep_column=spill.keep_column)
    closes = {}
    for token, frame in features.groupby("instrument_token"):
        times = pd.DatetimeIndex(frame["time"]).as_unit("ns").asi8
        builder.add(int(token), times, frame.loc[:, NAMES].to_numpy(dtype=np.float64))
        closes[(int(token), "1m")] = pd.Series(
            100 + np.cumsum(frame["signal"].to_numpy()) / 100, index=pd.DatetimeIndex(frame["time"])
        )
    kept = {}
    for token, frame in labels_by_instrument(labels).items():
        frame = frame.sort_values(["time", "side"], kind="mergesort").reset_index(drop=True)
        kept[token] = KeptLabels.of_frame(compact_labels(frame, token, "1m"), spill.keep_column)
    end = pd.Timestamp(features["time"].max()) - pd.Timedelta(minutes=30)  # every t1 on the bars' grid
    return training_set_of(
        builder.build(),
        kept,
        feature_set="fs",
        timeframe="1m",
        end=end,
        closes=closes,
        keep=spill.keep_column,
    )


def _with_regime_columns(ts: TrainingSet) -> TrainingSet:
    """``ts`` with two per-bar columns appended in memory, as a fold's regime layer appends its own."""
    assert isinstance(ts.x, RowMatrix)
    per_bar = np.random.default_rng(3).normal(size=(len(ts.x.bars), 2))
    return replace(ts, x=ts.x.with_columns(per_bar), feature_names=[*ts.feature_names, "r0", "r1"])


@pytest.fixture(scope="module")
def spill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchRowSpill]:
    with ScratchRowSpill(tmp_path_factory.mktemp("scratch")) as spill:
        yield spill


@pytest.fixture(scope="module")
def ts(spill: ScratchRowSpill) -> TrainingSet:
    return _with_regime_columns(_spilled_set(spill))


@pytest.fixture(scope="module")
def pool() -> Iterator[FitPool]:
    with open_fit_pool(2) as pool:
        yield pool


def _sent(job: BoosterJob) -> object:
    return pickle.loads(pickle.dumps(fit_pool._Outgoing(job)))


def test_a_job_on_spilled_rows_travels_as_file_references_and_gathers_the_same_bytes(
    ts: TrainingSet,
) -> None:
    rows = np.arange(100, len(ts))
    # the bars' columns and the appended ones, in an order that mixes them
    idx = np.array([len(ts.feature_names) - 1, 0, 2, len(ts.feature_names) - 2, 4], dtype=np.int64)
    job = side_job(ts, 1, rows, TUNED_DEFAULTS, CFG, idx)
    assert job.valid is not None
    sent = _sent(job)
    assert isinstance(sent, fit_pool._Sent)
    assert isinstance(sent.train, SpilledRows) and isinstance(sent.valid, SpilledRows)
    assert all(isinstance(part, FileRows) for part in sent.train.bars.parts)
    assert sent.train.gather().tobytes() == job.train.gather().tobytes()
    assert sent.valid.gather().tobytes() == job.valid[0].gather().tobytes()
    # what travels is a position and the two appended columns per row (and the files' paths), not
    # the values of the bars' columns
    n = len(job.train.rows)
    assert len(pickle.dumps(sent.train)) < n * (8 + 2 * 8) + 4_096 < job.train.gather().nbytes
    only_bars = side_job(ts, -1, rows, TUNED_DEFAULTS, CFG, np.arange(3), 10)
    again = _sent(only_bars)
    assert isinstance(again, fit_pool._Sent) and isinstance(again.train, SpilledRows)
    assert again.train.extra.shape == (len(only_bars.train.rows), 0)
    assert again.train.gather().tobytes() == only_bars.train.gather().tobytes()


def test_rows_held_in_memory_still_travel_gathered(ts: TrainingSet) -> None:
    memory = ts.subset(np.arange(len(ts)))  # the same rows, their keys in memory: the bars still spilled
    in_memory = replace(ts, x=np.asarray(ts.x))
    idx = np.arange(len(ts.feature_names))
    job = side_job(in_memory, 1, np.arange(len(ts)), TUNED_DEFAULTS, CFG, idx, 10)
    sent = _sent(job)
    assert isinstance(sent, fit_pool._Sent) and isinstance(sent.train, np.ndarray)
    assert sent.train.tobytes() == job.train.gather().tobytes()
    by_ref = _sent(side_job(memory, 1, np.arange(len(ts)), TUNED_DEFAULTS, CFG, idx, 10))
    assert isinstance(by_ref, fit_pool._Sent) and isinstance(by_ref.train, SpilledRows)
    assert by_ref.train.gather().tobytes() == sent.train.tobytes()


def test_pooled_fits_of_spilled_rows_are_the_fits_of_this_process_fixed_and_early_stopped(
    ts: TrainingSet, pool: FitPool
) -> None:
    assert_pooled_fits_are_the_process_fits(ts, pool, np.arange(150, len(ts)), CFG, (None, 20))


def test_tuning_on_a_spilled_load_through_the_pool_equals_tuning_in_this_process(
    ts: TrainingSet, pool: FitPool
) -> None:
    assert_pooled_tuning_is_the_process_tuning(ts, np.arange(len(ts)), CFG, pool)


def test_a_worker_reuses_the_bins_of_rows_by_reference_without_gathering_them_again(
    ts: TrainingSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    gathers = []
    real = SpilledRows.gather

    def counted(self: SpilledRows) -> np.ndarray:
        gathers.append(len(self.bar))
        return real(self)

    monkeypatch.setattr(SpilledRows, "gather", counted)
    # both sides fit the same rows: gathered and binned once in the worker
    assert_a_worker_fits_both_sides_binning_the_rows_once(ts, np.arange(len(ts)), CFG)
    assert len(gathers) == 2  # the training rows and the early-stopping tail, once each


def test_a_job_whose_spill_file_is_gone_fails_with_a_clear_error(tmp_path: Path, pool: FitPool) -> None:
    with ScratchRowSpill(tmp_path) as spill:
        ts = _spilled_set(spill)
        idx = np.arange(len(ts.feature_names))
        job = side_job(ts, 1, np.arange(len(ts)), TUNED_DEFAULTS, CFG, idx, 10)
        assert isinstance(ts.x, RowMatrix)
        part = ts.x.bars.parts[1]
        assert isinstance(part, FileRows)
        part.path.unlink()
        fit_pool._BINS.clear()
        with pytest.raises(ModelError, match=f"spill files, and {re.escape(str(part.path))} is gone"):
            fit_pool._train_outgoing(_sent(job))
        with pytest.raises(ModelError, match=r"spill files, and .* is gone"):
            pool.submit(job).result(timeout=120)
