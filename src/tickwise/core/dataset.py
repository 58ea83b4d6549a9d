"""The training set: features joined with the long and short labels of the same bars.

A row is one bar (instrument, timeframe, t0) that has features and a label on *both* sides (the drop
rules of labeling.md §5 do not depend on the side, so this loses nothing in practice). Rows are sorted
by t0 on one timeline shared by all instruments (labeling.md §10). ``t1`` used for purging is the later
of the two sides' first-touch times, so purging on it is conservative for both models.

No row's label horizon reaches past the training window: rows with ``t1 > end`` are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from tickwise.core.metrics import TradeOutcomes
from tickwise.domain.errors import ModelError

KEY = ["instrument_token", "timeframe", "time"]
LABEL_COLUMNS = ["label", "t1", "ret", "exit_price", "weight"]
NON_FEATURE_COLUMNS = {"instrument_token", "timeframe", "time", "feature_set", "source", "created_at"}


@dataclass
class TrainingSet:
    """Arrays aligned row by row, sorted by ``t0`` (then instrument)."""

    feature_names: list[str]
    feature_set: str
    timeframe: str
    x: np.ndarray  # (n, k) float64
    token: np.ndarray  # int64
    t0: pd.DatetimeIndex  # tz-aware (UTC)
    t1: pd.DatetimeIndex  # max of both sides' t1
    labels: dict[int, pd.DataFrame]  # side -> contract label columns (incl. time, t1), aligned to rows
    closes: Mapping[tuple[int, str], pd.Series] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def y(self, side: int) -> np.ndarray:
        """1 where the side's label is +1 (the trade hit its profit target first), else 0."""
        y: np.ndarray = (self.labels[side]["label"].to_numpy() == 1).astype(np.int8)
        return y

    def stored_weight(self, side: int) -> np.ndarray:
        w = self.labels[side]["weight"].to_numpy(dtype=np.float64)
        return np.where(np.isfinite(w) & (w > 0), w, 1.0)

    def outcomes(self, rows: np.ndarray | slice = slice(None)) -> TradeOutcomes:
        long_, short = self.labels[1].iloc[rows], self.labels[-1].iloc[rows]
        entry = _entry_price(long_, side=1)
        return TradeOutcomes(
            entry_price=entry,
            long_ret=long_["ret"].to_numpy(dtype=np.float64),
            long_exit=long_["exit_price"].to_numpy(dtype=np.float64),
            long_win=long_["label"].to_numpy() == 1,
            short_ret=short["ret"].to_numpy(dtype=np.float64),
            short_exit=short["exit_price"].to_numpy(dtype=np.float64),
            short_win=short["label"].to_numpy() == 1,
        )

    def subset(self, rows: np.ndarray) -> TrainingSet:
        return TrainingSet(
            feature_names=self.feature_names,
            feature_set=self.feature_set,
            timeframe=self.timeframe,
            x=self.x[rows],
            token=self.token[rows],
            t0=self.t0[rows],
            t1=self.t1[rows],
            labels={s: f.iloc[rows].reset_index(drop=True) for s, f in self.labels.items()},
            closes=self.closes,
        )


def _entry_price(labels: pd.DataFrame, side: int) -> np.ndarray:
    # ret = s * (exit / P0 - 1)  =>  P0 = exit / (1 + s * ret)
    exit_ = labels["exit_price"].to_numpy(dtype=np.float64)
    ret = labels["ret"].to_numpy(dtype=np.float64)
    entry: np.ndarray = exit_ / (1.0 + side * ret)
    return entry


def feature_columns(features: pd.DataFrame) -> list[str]:
    """Feature columns of a features frame, in frame order."""
    return [c for c in features.columns if c not in NON_FEATURE_COLUMNS]


def build_training_set(
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
