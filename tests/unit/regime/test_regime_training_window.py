"""The regime HMM of a walk-forward model sees its training window only, and its columns reach the
training events exactly as the scored bars get them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from regime_data import regime_rows

from tickwise.core.dataset import ArrayColumn, TrainingSet
from tickwise.core.regime import RegimeSpec
from tickwise.domain.errors import ModelError
from tickwise.pipelines.historical.regimes import fit_window_layer, with_regime

SPEC = RegimeSpec(n_states=2, n_iter=20)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return regime_rows(sessions=8, seed=12)


def _window(bars: pd.DataFrame) -> tuple[datetime, datetime]:
    times = pd.DatetimeIndex(bars["time"]).unique().sort_values()
    return times[0].to_pydatetime(), times[4 * 375 - 1].to_pydatetime()  # the first four sessions


def test_bars_after_the_training_window_never_change_the_fitted_hmm(bars: pd.DataFrame) -> None:
    start, end = _window(bars)
    layer = fit_window_layer(bars, start, end, SPEC)
    assert layer is not None
    future = bars.copy()
    later = pd.DatetimeIndex(future["time"]) > pd.Timestamp(end)
    rng = np.random.default_rng(0)
    future.loc[later, "natr_14"] = rng.uniform(1.0, 3.0, int(later.sum()))  # a wildly different future
    future.loc[later, "ret_1"] = rng.normal(0, 0.05, int(later.sum()))
    again = fit_window_layer(future, start, end, SPEC)
    assert again is not None and again.to_dict() == layer.to_dict()
    assert layer.info["last_day"] == str(pd.Timestamp(end).tz_convert("Asia/Kolkata").date())
    # ...while one changed bar inside the window does change it (the test can fail).
    inside = bars.copy()
    inside.loc[inside.index[500:900], "natr_14"] *= 3.0
    changed = fit_window_layer(inside, start, end, SPEC)
    assert changed is not None and changed.to_dict()["hmm"] != layer.to_dict()["hmm"]


def test_a_window_too_short_for_an_hmm_gives_a_model_without_a_regime_layer(bars: pd.DataFrame) -> None:
    times = pd.DatetimeIndex(bars["time"]).unique().sort_values()
    assert fit_window_layer(bars, times[20].to_pydatetime(), times[30].to_pydatetime(), SPEC) is None


def test_training_events_get_the_regime_columns_of_their_own_bars(bars: pd.DataFrame) -> None:
    start, end = _window(bars)
    layer = fit_window_layer(bars, start, end, SPEC)
    assert layer is not None
    events = bars.iloc[100::7].sort_values(["time", "instrument_token"], kind="mergesort")
    ts = TrainingSet.of_arrays(
        feature_names=["ret_1"],
        feature_set="fs-test",
        timeframe="1m",
        x=events[["ret_1"]].to_numpy(),
        token=events["instrument_token"].to_numpy(dtype=np.int64),
        t0=pd.DatetimeIndex(events["time"]),
        t1=pd.DatetimeIndex(events["time"]) + pd.Timedelta(minutes=10),
        labels={},
    )
    extended, regime = with_regime(ts, bars, layer)
    assert regime is not None
    assert extended.feature_names == ["ret_1", *layer.columns]
    expected = layer.frame(bars).loc[events.index].to_numpy()
    assert extended.x[:, 1:].tobytes() == expected.tobytes()
    unchanged, none = with_regime(ts, bars, None)
    assert unchanged is ts and none is None
    shifted = ArrayColumn(ts.read("t0") + pd.Timedelta(seconds=1).value)
    orphan = replace(ts, columns={**ts.columns, "t0": shifted})
    with pytest.raises(ModelError, match="no feature row"):
        with_regime(orphan, bars, layer)
