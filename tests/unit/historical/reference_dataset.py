"""The training-set build as it was before the per-instrument load (issue 15, commit 13937af): pandas
frames of every instrument concatenated, merged with both sides' labels, sorted. Kept verbatim as the
oracle the array build (``core.dataset.training_set_of``) is tested equal to, array for array."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd

from tickwise.core.dataset import KEY, LABEL_COLUMNS, TrainingSet, feature_columns
from tickwise.domain.errors import ModelError


def reference_training_set(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    feature_set: str,
    timeframe: str,
    end: datetime | None = None,
    feature_names: list[str] | None = None,
    closes: Mapping[tuple[int, str], pd.Series] | None = None,
) -> TrainingSet:
    """Join ``features`` (key columns + one column per feature) with ``labels`` (contract columns, both
    sides) on (instrument_token, timeframe, time). Rows whose label ends after ``end`` are dropped."""
    if features.empty or labels.empty:
        raise ModelError("no training data: features or labels are empty for the requested range")
    names = feature_names or feature_columns(features)
    feats = features.loc[:, [*KEY, *names]].copy()
    feats["time"] = pd.to_datetime(feats["time"], utc=True)
    labels = labels.copy()
    labels["time"] = pd.to_datetime(labels["time"], utc=True)
    labels["t1"] = pd.to_datetime(labels["t1"], utc=True)
    if end is not None:
        labels = labels[labels["t1"] <= pd.Timestamp(end).tz_convert("UTC")]
    long_ = labels[labels["side"] == 1].loc[:, [*KEY, *LABEL_COLUMNS]]
    short = labels[labels["side"] == -1].loc[:, [*KEY, *LABEL_COLUMNS]]
    joined = feats.merge(long_, on=KEY, how="inner").merge(short, on=KEY, how="inner", suffixes=("_l", "_s"))
    if joined.empty:
        raise ModelError("no training data: no bar has features and labels on both sides")
    joined = joined.sort_values(["time", "instrument_token"], kind="mergesort").reset_index(drop=True)
    side_frames = {}
    for side, suffix in ((1, "_l"), (-1, "_s")):
        frame = joined.loc[:, KEY].copy()
        frame["side"] = side
        for col in LABEL_COLUMNS:
            frame[col] = joined[col + suffix].to_numpy()
        side_frames[side] = frame
    t1 = pd.DatetimeIndex(joined[["t1_l", "t1_s"]].max(axis=1))
    return TrainingSet(
        feature_names=list(names),
        feature_set=feature_set,
        timeframe=timeframe,
        x=joined.loc[:, names].to_numpy(dtype=np.float64),
        token=joined["instrument_token"].to_numpy(dtype=np.int64),
        t0=pd.DatetimeIndex(joined["time"]),
        t1=t1,
        labels=side_frames,
        closes=dict(closes or {}),
    )
