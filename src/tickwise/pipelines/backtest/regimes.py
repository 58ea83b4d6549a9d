"""The regime state at each trade's entry, for the report's performance-by-regime section.

A trade names the signal that opened it (``model_version``, ``instrument_token``, ``signal_time``). Its
regime state is what that model's regime layer (``core.regime``, saved with the model) gives the signal's
bar: the same recursion over the instrument's stored features from the session's open that scored the
signal. Trades of a model without a layer, or whose bar has no regime (warm-up), get NaN (``unknown``).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from tickwise.core.regime import RegimeLayer, layer_of
from tickwise.domain.errors import ModelError
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.models import ModelSource, load_model
from tickwise.ports.repositories import FeatureRepository


async def regime_at_entry(
    trades: pd.DataFrame, *, source: ModelSource, features: FeatureRepository, timeframe: Timeframe
) -> np.ndarray:
    """One float per trade row: the filtered HMM state of its signal's bar, NaN when unknown."""
    out = np.full(len(trades), np.nan)
    if trades.empty:
        return out
    trades = trades.reset_index(drop=True)
    signal_times = pd.DatetimeIndex(pd.to_datetime(trades["signal_time"], utc=True))
    layers: dict[str, tuple[RegimeLayer | None, str]] = {}
    for (version, token), rows in trades.groupby(["model_version", "instrument_token"], sort=False):
        version = str(version)
        if version not in layers:
            try:
                artifact = await load_model(source, version)
                layers[version] = (layer_of(artifact.regime), artifact.feature_set)
            except ModelError:  # a model deleted since the run: its trades stay unknown
                layers[version] = (None, "")
        layer, feature_set = layers[version]
        if layer is None:
            continue
        pos = rows.index.to_numpy()
        times = signal_times[pos]
        first = times.min().tz_convert(IST).normalize()  # the session's open: where the recursion starts
        frame = await features.read_frame(
            int(token),
            timeframe,
            feature_set,
            first.to_pydatetime(),
            (times.max() + timedelta(minutes=1)).to_pydatetime(),
            columns=list(layer.inputs),
        )
        if frame.empty:
            continue
        regime = layer.frame(frame)
        state = pd.Series(
            regime["regime_state"].to_numpy(), index=pd.DatetimeIndex(pd.to_datetime(frame["time"], utc=True))
        )
        out[pos] = state.reindex(times).to_numpy(dtype=np.float64)
    return out
