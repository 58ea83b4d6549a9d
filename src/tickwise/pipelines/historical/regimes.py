"""The regime layer in training: fit it on a training window's bars, add its columns to a training set.

Both the walk-forward fold models (``oos.py``) and the champion candidate (``train.py``) fit their regime
layer (``core.regime``) here, on the bars of their own training window only, and add the layer's
filtered columns to the training events as model inputs; the bars a model scores get the same columns
from the same layer and recursion (``predict.signals_frame``, live ``SignalStep``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np
import pandas as pd

from tickwise.core.dataset import TrainingSet
from tickwise.core.regime import RegimeLayer, RegimeSpec, fit_regime_layer
from tickwise.domain.errors import ModelError


def fit_window_layer(
    features: pd.DataFrame, trained_from: datetime, trained_to: datetime, spec: RegimeSpec
) -> RegimeLayer | None:
    """The regime layer fitted on the bars of the training window ``[trained_from, trained_to]`` only
    (never the bars a model scores), or None when the window has too few observable bars."""
    times = pd.DatetimeIndex(pd.to_datetime(features["time"], utc=True))
    window = features.loc[(times >= pd.Timestamp(trained_from)) & (times <= pd.Timestamp(trained_to))]
    try:
        return fit_regime_layer(window, spec)
    except ModelError:
        return None


def with_regime(
    ts: TrainingSet, features: pd.DataFrame, layer: RegimeLayer | None
) -> tuple[TrainingSet, pd.DataFrame | None]:
    """``ts`` with the layer's columns appended to its features (the same values the scored bars get),
    and the columns of every bar of ``features`` (on its index); unchanged without a layer."""
    if layer is None:
        return ts, None
    regime = layer.frame(features)
    times = pd.DatetimeIndex(pd.to_datetime(features["time"], utc=True)).as_unit("ns")
    key = pd.MultiIndex.from_arrays([features["instrument_token"].to_numpy(dtype=np.int64), times])
    pos = key.get_indexer(pd.MultiIndex.from_arrays([ts.token, ts.t0.as_unit("ns")]))
    if (pos < 0).any():
        raise ModelError("regime layer: a training event has no feature row")
    x = np.hstack([ts.x, regime.to_numpy(dtype=np.float64)[pos]])
    return replace(ts, x=x, feature_names=[*ts.feature_names, *layer.columns]), regime
