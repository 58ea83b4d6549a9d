"""A training window's regime layer fitted in a fit worker (``BarsLayerFit`` run by a real pool of spawned
processes) is the layer this process fits, byte for byte: the same HMM parameters, the same fit record
and the same regime columns of every bar. The task travels with a spilled load's bars as their files'
paths, not their values."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from regime_data import regime_rows

from tickwise.adapters.local.row_spill import ScratchRowSpill
from tickwise.bootstrap.fit_pool import FitPool, open_fit_pool
from tickwise.core.dataset import Bars, BarsBuilder
from tickwise.core.fit_jobs import start_task
from tickwise.core.regime import RegimeLayer, RegimeSpec
from tickwise.pipelines.historical.regimes import BarsLayerFit, FittedLayer, fit_bars_layer

SPEC = RegimeSpec(n_states=3, n_iter=30)
COLUMNS = ["ret_1", "natr_14", "other"]


@pytest.fixture(scope="module")
def bars(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bars]:
    """Three instruments' bars over ten sessions, spilled as a run's training load spills them."""
    rows = regime_rows(tokens=(1, 2, 3), sessions=10, seed=21)
    rows["other"] = np.random.default_rng(4).normal(size=len(rows))
    with ScratchRowSpill(tmp_path_factory.mktemp("scratch")) as spill:
        builder = BarsBuilder(COLUMNS, keep=spill.keep, keep_column=spill.keep_column)
        for token, frame in rows.groupby("instrument_token"):
            times = pd.DatetimeIndex(frame["time"]).as_unit("ns").asi8
            builder.add(int(token), times, frame.loc[:, COLUMNS].to_numpy(dtype=np.float64))
        yield builder.build()


@pytest.fixture(scope="module")
def pool() -> Iterator[FitPool]:
    with open_fit_pool(2) as pool:
        yield pool


def _windows(bars: Bars) -> list[tuple[datetime, datetime]]:
    """Expanding training windows, as a walk-forward schedule's folds have."""
    times = bars.time_index().unique().sort_values()
    first = times[0].to_pydatetime()
    return [(first, times[n * 375 - 1].to_pydatetime()) for n in (4, 6, 8, 10)]


def _layer_bytes(layer: RegimeLayer) -> dict[str, bytes]:
    hmm = layer.hmm
    return {
        name: np.ascontiguousarray(getattr(hmm, name), dtype=np.float64).tobytes()
        for name in ("startprob", "transmat", "means", "variances")
    }


def _assert_same(got: FittedLayer, expected: FittedLayer) -> None:
    assert got.layer is not None and expected.layer is not None
    assert _layer_bytes(got.layer) == _layer_bytes(expected.layer)
    assert got.layer.info == expected.layer.info  # the fit's log-likelihood included, as a float
    assert got.layer.to_dict() == expected.layer.to_dict()
    assert got.regime is not None and expected.regime is not None
    assert list(got.regime.columns) == list(expected.regime.columns)
    assert got.regime.index.equals(expected.regime.index)
    assert got.regime.dtypes.tolist() == expected.regime.dtypes.tolist()
    for column in expected.regime.columns:
        assert got.regime[column].to_numpy().tobytes() == expected.regime[column].to_numpy().tobytes()


def test_a_layer_fitted_in_a_pool_worker_is_the_layer_fitted_here_byte_for_byte(
    bars: Bars, pool: FitPool
) -> None:
    tasks = [BarsLayerFit(bars, lo, hi, SPEC) for lo, hi in _windows(bars)]
    # all at once, so both workers fit some of them
    futures = [pool.run_task(task) for task in tasks]
    for task, future in zip(tasks, futures, strict=True):
        _assert_same(future.result(), task())


def test_the_task_is_what_fitting_the_layer_and_adding_its_columns_here_gives(bars: Bars) -> None:
    lo, hi = _windows(bars)[1]
    fitted = BarsLayerFit(bars, lo, hi, SPEC)()
    layer = fit_bars_layer(bars, lo, hi, SPEC)
    assert layer is not None and fitted.layer is not None
    assert _layer_bytes(fitted.layer) == _layer_bytes(layer)
    assert fitted.regime is not None
    expected = layer.frame(bars.frame(slice(None), ["ret_1", "natr_14"]))
    assert fitted.regime.to_numpy().tobytes() == expected.to_numpy().tobytes()


def test_a_window_too_short_to_fit_gives_no_layer_in_a_worker_as_here(bars: Bars, pool: FitPool) -> None:
    times = bars.time_index().unique().sort_values()
    task = BarsLayerFit(bars, times[0].to_pydatetime(), times[10].to_pydatetime(), SPEC)
    assert pool.run_task(task).result() == FittedLayer(None, None) == task()


def test_the_task_travels_as_the_spill_files_paths_not_the_bars_values(bars: Bars) -> None:
    lo, hi = _windows(bars)[0]
    task = BarsLayerFit(bars, lo, hi, SPEC)
    values = len(bars) * len(COLUMNS) * 8
    assert len(pickle.dumps(task)) < values / 20


def test_without_worker_processes_the_layer_is_fitted_here_when_it_is_taken(bars: Bars) -> None:
    lo, hi = _windows(bars)[0]
    calls: list[int] = []

    class Counted(BarsLayerFit):
        def __call__(self) -> FittedLayer:
            calls.append(1)
            return super().__call__()

    future = start_task(object(), Counted(bars, lo, hi, SPEC))
    assert calls == []
    _assert_same(future.result(), BarsLayerFit(bars, lo, hi, SPEC)())
    future.result()
    assert calls == [1]
    cancelled = start_task(object(), Counted(bars, lo, hi, SPEC))
    assert cancelled.cancel() and calls == [1]
