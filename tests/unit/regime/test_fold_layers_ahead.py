"""With worker processes, each out-of-sample fold's regime layer is started a couple of folds before the
fold begins (``oos._FoldLayers``), and the layer a fold takes is the one fitted on its own training
window; layers started for folds that never take them are dropped. (In one process a layer is fitted
when its fold takes it: ``test_regime_fit_task.py``.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from regime_data import regime_rows

from fakes import RecordingTaskRunner
from tickwise.core.dataset import Bars, BarsBuilder
from tickwise.core.regime import RegimeSpec
from tickwise.core.walk_forward import WalkForwardStep
from tickwise.pipelines.historical.oos import LAYERS_AHEAD, _FoldLayers
from tickwise.pipelines.historical.regimes import BarsLayerFit, fit_bars_layer

SPEC = RegimeSpec(n_states=2, n_iter=15)


@pytest.fixture(scope="module")
def bars() -> Bars:
    rows = regime_rows(tokens=(1, 2), sessions=9, seed=3)
    builder = BarsBuilder(["ret_1", "natr_14"])
    for token, frame in rows.groupby("instrument_token"):
        times = pd.DatetimeIndex(frame["time"]).as_unit("ns").asi8
        builder.add(int(token), times, frame.loc[:, ["ret_1", "natr_14"]].to_numpy(dtype=np.float64))
    return builder.build()


def _steps(bars: Bars, n: int = 5) -> list[WalkForwardStep]:
    times = bars.time_index().unique().sort_values()
    out = []
    for k in range(n):
        trained_to = times[(k + 3) * 375 - 1]
        out.append(WalkForwardStep(k, np.arange(10), times[0], trained_to, times[(k + 4) * 375 - 375], None))
    return out


def _window(task: object) -> pd.Timestamp:
    assert isinstance(task, BarsLayerFit)
    return pd.Timestamp(task.trained_to)


def test_each_fold_layer_is_started_ahead_and_taken_by_its_own_fold(bars: Bars) -> None:
    steps = _steps(bars)
    runner = RecordingTaskRunner()
    layers = _FoldLayers(runner, bars, steps, SPEC)
    assert LAYERS_AHEAD == 2
    expected_started = [3, 4, 5, 5, 5]  # take(k) starts folds k .. k + 2 (those not started yet)
    for k, step in enumerate(steps):
        fitted = layers.take(k)
        assert len(runner.started) == expected_started[k]
        assert [_window(t) for t in runner.started] == [s.trained_to for s in steps[: expected_started[k]]]
        own = fit_bars_layer(bars, step.trained_from.to_pydatetime(), step.trained_to.to_pydatetime(), SPEC)
        assert own is not None and fitted.layer is not None
        assert fitted.layer.to_dict() == own.to_dict()
        assert fitted.layer.hmm.means.tobytes() == own.hmm.means.tobytes()
    layers.close()
    assert runner.cancelled == []


def test_layers_started_for_folds_that_never_take_them_are_dropped(bars: Bars) -> None:
    steps = _steps(bars)
    runner = RecordingTaskRunner()
    layers = _FoldLayers(runner, bars, steps, SPEC)
    layers.take(0)
    layers.close()
    assert [_window(t) for t in runner.cancelled] == [steps[1].trained_to, steps[2].trained_to]
