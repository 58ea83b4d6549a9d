"""The training load and training-set build as they were before the per-instrument load (issue 15,
commit 13937af): each instrument's features read as a frame, every instrument's frames concatenated,
merged with both sides' labels, sorted. Kept verbatim as the oracle the array build
(``core.dataset.training_set_of``, ``pipelines.historical.train.load_timeframe``) is tested equal to,
array for array."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd

from tickwise.core.dataset import KEY, LABEL_COLUMNS, TrainingSet, feature_columns
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.training import trainable_features
from tickwise.domain.errors import ModelError
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.context import HistoricalPorts
from tickwise.pipelines.universe import select_universe


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
    return TrainingSet.of_arrays(
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


def assert_same_training_set(got: TrainingSet, expected: TrainingSet) -> None:
    assert got.feature_names == expected.feature_names
    assert (got.feature_set, got.timeframe) == (expected.feature_set, expected.timeframe)
    got_x, expected_x = np.asarray(got.x), np.asarray(expected.x)  # a RowMatrix gathers its rows here
    assert got_x.dtype == expected_x.dtype and np.array_equal(got_x, expected_x, equal_nan=True)
    assert np.array_equal(got_x.view(np.int64), expected_x.view(np.int64))  # bit for bit
    assert got.token.dtype == expected.token.dtype and np.array_equal(got.token, expected.token)
    pd.testing.assert_index_equal(got.t0, expected.t0)
    pd.testing.assert_index_equal(got.t1, expected.t1)
    assert sorted(got.labels) == sorted(expected.labels)
    for side in expected.labels:
        # the training set keeps side and label as int8 (issue 15): the same values, a smaller type
        compact = {"side": np.int8, "label": np.int8}
        pd.testing.assert_frame_equal(got.labels[side], expected.labels[side].astype(compact))
    assert got.closes.keys() == expected.closes.keys()


async def reference_load(
    ctx: HistoricalPorts,
    calculator: FeatureCalculator,
    timeframe: Timeframe,
    start: datetime | None,
    end: datetime | None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple[int, str], pd.Series]]:
    """Features (warm rows only, ``time >= start``), labels (``t1 <= end``) and closes per instrument."""
    tokens = [
        i.instrument_token
        for i in await select_universe(ctx.instruments, ctx.options.symbols, ctx.options.default_symbols)
    ]
    columns = trainable_features(list(calculator.names))
    feats: list[pd.DataFrame] = []
    labs: list[pd.DataFrame] = []
    closes: dict[tuple[int, str], pd.Series] = {}
    for token in tokens:
        f = await ctx.features.read_frame(
            token, timeframe, calculator.feature_set, None, end, columns=columns
        )
        if f.empty:
            continue
        f = f.iloc[calculator.warmup :]
        if start is not None:
            f = f[pd.DatetimeIndex(f["time"]) >= pd.Timestamp(start)]
        lab = await ctx.labels.read_frame(token, timeframe, start, end)
        if f.empty or lab.empty:
            continue
        candles = await ctx.candles.read_frame(token, timeframe, None, end)
        closes[(token, str(timeframe))] = pd.Series(
            candles["close"].to_numpy(dtype=np.float64), index=pd.DatetimeIndex(candles["time"])
        )
        feats.append(f)
        labs.append(lab)
    if not feats:
        raise ModelError(
            "no features and labels to train on; run `tickwise historical` (or backfill first) "
            "so candles, features and labels exist"
        )
    return pd.concat(feats, ignore_index=True), pd.concat(labs, ignore_index=True), closes
