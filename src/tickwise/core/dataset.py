"""The training set: features joined with the long and short labels of the same bars.

A row is one bar (instrument, timeframe, t0) that has features and a label on *both* sides (the drop
rules of labeling.md §5 do not depend on the side, so this loses nothing in practice). Rows are sorted
by t0 on one timeline shared by all instruments (labeling.md §10). ``t1`` used for purging is the later
of the two sides' first-touch times, so purging on it is conservative for both models.

No row's label horizon reaches past the training window: rows with ``t1 > end`` are dropped.

Built instrument by instrument (issue 15): each instrument's feature rows arrive as one float64 matrix
(``BarsBuilder.add``) and stay as they came; :class:`Bars` sorts only the keys (time, instrument) and
gathers values on demand; the training set gathers its rows (:func:`training_set_of`), joining each
instrument's labels on time with integer positions: no frame of all instruments is concatenated or
merged, and the bars' values are never copied whole. The training set's matrix is a :class:`RowMatrix`:
its rows' bar positions, each fit and score window gathering its own rows (issue 15: memory per training
row is its keys and labels, not its feature values). :func:`build_training_set` (frames in) is the same build, kept for frame callers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

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
    x: FeatureMatrix  # (n, k) float64: in memory, or gathered on demand from the bars (RowMatrix)
    token: np.ndarray  # int64
    t0: pd.DatetimeIndex  # tz-aware (UTC)
    t1: pd.DatetimeIndex  # max of both sides' t1
    labels: dict[int, pd.DataFrame]  # side -> contract label columns (incl. time, t1), aligned to rows
    closes: Mapping[tuple[int, str], pd.Series] = field(default_factory=dict)
    # Each row's position in the Bars it was gathered from (training_set_of), or None (built by hand):
    # what lets the regime columns of every bar reach the rows without a key lookup.
    bar_rows: np.ndarray | None = None

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
            x=self.x.subset(rows) if isinstance(self.x, RowMatrix) else self.x[rows],
            token=self.token[rows],
            t0=self.t0[rows],
            t1=self.t1[rows],
            labels={s: f.iloc[rows].reset_index(drop=True) for s, f in self.labels.items()},
            closes=self.closes,
            bar_rows=None if self.bar_rows is None else self.bar_rows[rows],
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


class KeptRows(Protocol):
    """One instrument's kept feature matrix (in memory, or spilled by ``ports.row_spill.RowSpill``)."""

    def __len__(self) -> int: ...

    def gather(self, local: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """Rows ``local`` (columns ``cols``, default all) as a new float64 array."""
        ...


class ArrayRows:
    """Kept rows in memory: the matrix itself."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def gather(self, local: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        out: np.ndarray = self.values[local] if cols is None else self.values[np.ix_(local, cols)]
        return out


@dataclass(frozen=True)
class Bars:
    """Every loaded feature row ("bar") of one timeframe, all instruments, sorted by (time, instrument).

    The values stay in the instruments' own matrices (``parts``, as read, kept in memory or spilled to
    disk: no sorted copy of all of them is ever made); bar ``i`` is row ``source[i]`` of their
    concatenation, and :meth:`take` gathers the rows a caller needs. ``times``: int64 ns since the epoch (UTC); values float64, NaN where
    missing; ``nan_counts``: missing values per column, counted as the parts arrived.
    """

    token: np.ndarray
    times: np.ndarray
    columns: tuple[str, ...]
    parts: tuple[KeptRows, ...]
    source: np.ndarray
    nan_counts: np.ndarray

    def __len__(self) -> int:
        return int(self.times.shape[0])

    def take(self, rows: np.ndarray | slice = slice(None), cols: np.ndarray | None = None) -> np.ndarray:
        """``(len(rows), len(cols))`` float64 values of bars ``rows`` (sorted positions), columns
        ``cols`` (positions in :attr:`columns`; default all), gathered part by part."""
        wanted = self.source[rows]
        idx = np.arange(len(self.columns)) if cols is None else np.asarray(cols, dtype=np.int64)
        out = np.empty((len(wanted), len(idx)), dtype=np.float64)
        starts = np.cumsum([0, *(len(p) for p in self.parts)])
        part_of = np.searchsorted(starts, wanted, side="right") - 1
        whole = cols is None or np.array_equal(idx, np.arange(len(self.columns)))
        # Grouped by part with one sort (not a mask per part): O(rows log rows) for any number of parts.
        by_part = np.argsort(part_of, kind="stable")
        cuts = np.flatnonzero(np.diff(part_of[by_part])) + 1
        for mine in np.split(by_part, cuts) if len(by_part) else []:
            p = int(part_of[mine[0]])
            out[mine] = self.parts[p].gather(wanted[mine] - starts[p], None if whole else idx)
        return out

    def nan_share(self, name: str) -> float:
        """The share of missing values in column ``name`` (as ``frame[name].isna().mean()``)."""
        return float(self.nan_counts[self.columns.index(name)]) / len(self) if len(self) else float("nan")

    def time_index(self, rows: np.ndarray | slice = slice(None)) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(pd.to_datetime(self.times[rows], utc=True).as_unit("ns"), name="time")

    def frame(
        self,
        rows: np.ndarray | slice = slice(None),
        columns: Sequence[str] | None = None,
        timeframe: str = "",
    ) -> pd.DataFrame:
        """``instrument_token, timeframe, time`` then ``columns`` (default: all) of ``rows``, on the rows'
        positions as index: the frame a features read gives, for the few rows or columns a caller needs."""
        names = list(self.columns) if columns is None else list(columns)
        index = np.arange(len(self))[rows]
        cols = np.array([self.columns.index(n) for n in names], dtype=np.int64)
        frame = pd.DataFrame(self.take(index, cols), columns=names, index=index)
        frame.insert(0, "time", self.time_index(index))
        frame.insert(0, "timeframe", np.full(len(index), timeframe, dtype=object))
        frame.insert(0, "instrument_token", self.token[index])
        return frame


class RowMatrix:
    """A training set's feature matrix, gathered on demand (issue 15): row ``i`` is bar ``bar_rows[i]``
    of ``bars``, columns ``cols`` of the bars then the per-bar columns ``extra`` (e.g. the regime
    layer's, one row per bar). Nothing of size rows x columns is held: a fit, a score window or a
    fold's test rows gather what they use (``m[np.ix_(rows, cols)]``, ``m[rows]``, ``m[rows, j]``,
    :meth:`take`), the same float64 values an in-memory matrix of the same rows would hold, bit for bit.
    ``np.asarray(m)`` gathers the whole matrix (for callers that want one)."""

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(
        self, bars: Bars, bar_rows: np.ndarray, cols: np.ndarray, extra: np.ndarray | None = None
    ) -> None:
        if extra is not None and (extra.ndim != 2 or extra.shape[0] != len(bars)):
            raise ModelError(f"per-bar columns of shape {extra.shape} for {len(bars)} bars")
        self.bars = bars
        self.bar_rows = np.asarray(bar_rows, dtype=np.int64)
        self.cols = np.asarray(cols, dtype=np.int64)
        self.extra = extra

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.bar_rows), len(self.cols) + (0 if self.extra is None else self.extra.shape[1])

    def __len__(self) -> int:
        return len(self.bar_rows)

    def take(self, rows: np.ndarray | slice = slice(None), cols: np.ndarray | None = None) -> np.ndarray:
        """``(len(rows), len(cols))`` float64: rows ``rows`` (positions, a mask or a slice), columns
        ``cols`` (positions; default all)."""
        bar = self.bar_rows[rows]
        k = len(self.cols)
        idx = np.arange(self.shape[1]) if cols is None else np.asarray(cols, dtype=np.int64).ravel()
        if len(idx) and (idx.min() < 0 or idx.max() >= self.shape[1]):
            raise IndexError(f"column positions outside 0..{self.shape[1] - 1}")
        from_bars = idx < k
        if from_bars.all():
            return self.bars.take(bar, self.cols[idx])
        out = np.empty((len(bar), len(idx)), dtype=np.float64)
        if from_bars.any():
            out[:, from_bars] = self.bars.take(bar, self.cols[idx[from_bars]])
        extra = self.extra if self.extra is not None else np.empty((len(self.bars), 0))
        out[:, ~from_bars] = extra[np.ix_(bar, idx[~from_bars] - k)]
        return out

    def __getitem__(self, key: object) -> np.ndarray:
        if isinstance(key, tuple):
            if len(key) != 2:
                raise IndexError(f"a row matrix takes (rows, columns), not {len(key)} indices")
            rows, cols = (np.asarray(k).ravel() if isinstance(k, np.ndarray) else k for k in key)
            if isinstance(cols, (int, np.integer)):
                return self.take(_rows_key(rows), np.array([int(cols)]))[:, 0]
            if isinstance(cols, slice):
                cols = np.arange(self.shape[1])[cols]
            return self.take(_rows_key(rows), np.asarray(cols, dtype=np.int64))
        return self.take(_rows_key(key))

    def __array__(self, dtype: np.dtype[np.generic] | None = None, copy: bool | None = None) -> np.ndarray:
        out = self.take()
        return out if dtype is None else out.astype(dtype)

    def subset(self, rows: np.ndarray) -> RowMatrix:
        return RowMatrix(self.bars, self.bar_rows[rows], self.cols, self.extra)

    def with_columns(self, extra: np.ndarray) -> RowMatrix:
        """This matrix with per-bar columns ``extra`` (one row per bar of :attr:`bars`) appended."""
        joined = extra if self.extra is None else np.hstack([self.extra, extra])
        return RowMatrix(self.bars, self.bar_rows, self.cols, joined)


def _rows_key(key: object) -> np.ndarray | slice:
    if isinstance(key, slice):
        return key
    if isinstance(key, (int, np.integer)):
        raise IndexError("a row matrix gathers rows by positions, a mask or a slice, not one integer")
    return np.asarray(key)


FeatureMatrix = np.ndarray | RowMatrix


class BarsBuilder:
    """Collects one instrument's bars at a time; :meth:`build` sorts their keys, never their values.
    ``keep`` keeps each instrument's matrix (default: in memory; a ``RowSpill``'s ``keep``: on disk)."""

    def __init__(self, columns: Sequence[str], keep: Callable[[np.ndarray], KeptRows] = ArrayRows) -> None:
        self.columns = tuple(columns)
        self._keep = keep
        self._parts: list[tuple[int, np.ndarray, KeptRows]] = []
        self._nan = np.zeros(len(self.columns), dtype=np.int64)

    def add(self, token: int, times: np.ndarray, x: np.ndarray) -> None:
        """``times`` (int64 ns, ascending, unique) and ``x`` ``(len(times), len(columns))`` of one
        instrument; ``x`` is handed to ``keep`` (in memory: kept as it is, not copied)."""
        if x.shape != (len(times), len(self.columns)):
            raise ModelError(f"instrument {token}: {x.shape} feature values for {len(times)} bars")
        self._nan += np.isnan(x).sum(axis=0)
        self._parts.append((int(token), np.asarray(times, dtype=np.int64), self._keep(x)))

    def build(self) -> Bars:
        """The bars sorted by (time, instrument)."""
        parts, self._parts = self._parts, []
        sizes = [len(t) for _, t, _ in parts]
        token = np.repeat(np.array([p[0] for p in parts], dtype=np.int64), sizes)
        times = np.concatenate([t for _, t, _ in parts]) if parts else np.empty(0, dtype=np.int64)
        order = np.lexsort((token, times))
        return Bars(token[order], times[order], self.columns, tuple(x for _, _, x in parts), order, self._nan)


def training_set_of(
    bars: Bars,
    labels: Mapping[int, pd.DataFrame],
    *,
    feature_set: str,
    timeframe: str,
    end: datetime | None = None,
    feature_names: Sequence[str] | None = None,
    closes: Mapping[tuple[int, str], pd.Series] | None = None,
) -> TrainingSet:
    """The bars (of ``feature_names``, default all columns) that have a label on both sides ending by
    ``end``, with those labels: ``labels`` maps an instrument to its stored label rows (both sides).
    Rows keep the bars' (time, instrument) order."""
    names = list(feature_names) if feature_names is not None else list(bars.columns)
    if len(bars) == 0 or not any(len(f) for f in labels.values()):
        raise ModelError("no training data: features or labels are empty for the requested range")
    end_ns = None if end is None else pd.Timestamp(end).tz_convert("UTC").as_unit("ns").value
    by_token = np.argsort(bars.token, kind="stable")  # each instrument's bars, in time order
    cuts = np.flatnonzero(np.diff(bars.token[by_token])) + 1
    rows_of = {int(bars.token[idx[0]]): idx for idx in np.split(by_token, cuts) if len(idx)}
    picked: list[np.ndarray] = []
    sides: dict[int, list[pd.DataFrame]] = {1: [], -1: []}
    t1_parts: list[np.ndarray] = []
    for instrument, lab in labels.items():
        rows = rows_of.get(int(instrument))
        if rows is None or lab.empty:
            continue
        lab_t0 = pd.DatetimeIndex(pd.to_datetime(lab["time"], utc=True)).as_unit("ns").asi8
        lab_t1 = pd.DatetimeIndex(pd.to_datetime(lab["t1"], utc=True)).as_unit("ns").asi8
        keep = np.ones(len(lab), dtype=bool) if end_ns is None else lab_t1 <= end_ns
        side = lab["side"].to_numpy()
        long_, short = np.flatnonzero(keep & (side == 1)), np.flatnonzero(keep & (side == -1))
        both, at_l, at_s = np.intersect1d(lab_t0[long_], lab_t0[short], return_indices=True)
        _, at_bar, at_both = np.intersect1d(bars.times[rows], both, return_indices=True)
        long_, short = long_[at_l[at_both]], short[at_s[at_both]]
        picked.append(rows[at_bar])
        t1_parts.append(np.maximum(lab_t1[long_], lab_t1[short]))
        for s, at in ((1, long_), (-1, short)):
            part = lab.iloc[at].loc[:, LABEL_COLUMNS]
            part["t1"] = pd.to_datetime(part["t1"], utc=True)
            sides[s].append(part)
    rows = np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)
    if len(rows) == 0:
        raise ModelError("no training data: no bar has features and labels on both sides")
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    t0 = bars.time_index(rows)
    token = bars.token[rows]
    side_frames = {}
    for s in (1, -1):
        joined = pd.concat(sides[s], ignore_index=True).iloc[order].reset_index(drop=True)
        # tz-aware columns move as DatetimeArrays: ``to_numpy`` would build a Timestamp object per row
        frame = pd.DataFrame({"instrument_token": token, "timeframe": timeframe, "time": t0.array})
        frame["side"] = np.full(len(token), s, dtype=np.int8)  # side and label: int8, exact (issue 15)
        for col in LABEL_COLUMNS:
            values = joined[col]
            if col == "label":
                frame[col] = _label_codes(values.to_numpy())
            else:
                frame[col] = (
                    values.array if isinstance(values.dtype, pd.DatetimeTZDtype) else values.to_numpy()
                )
        side_frames[s] = frame
    x = RowMatrix(bars, rows, np.array([bars.columns.index(n) for n in names], dtype=np.int64))
    return TrainingSet(
        feature_names=names,
        feature_set=feature_set,
        timeframe=timeframe,
        x=x,
        token=token,
        t0=t0,
        t1=pd.DatetimeIndex(pd.to_datetime(np.concatenate(t1_parts)[order], utc=True).as_unit("ns")),
        labels=side_frames,
        closes=dict(closes or {}),
        bar_rows=rows,
    )


def _label_codes(values: np.ndarray) -> np.ndarray:
    """Triple-barrier labels (-1, 0, +1) as int8, the values unchanged; anything else is an error."""
    values = np.asarray(values)
    if not np.isin(values, (-1, 0, 1)).all():  # NaN, 0.5, 2, ... are not labels
        raise ModelError("labels outside -1, 0, +1: not triple-barrier labels")
    return values.astype(np.int8)


def bars_of_frame(features: pd.DataFrame, names: Sequence[str]) -> Bars:
    """The :class:`Bars` of a features frame (key columns + ``names``; instruments in any order)."""
    builder = BarsBuilder(names)
    times = pd.DatetimeIndex(pd.to_datetime(features["time"], utc=True)).as_unit("ns").asi8
    tokens = features["instrument_token"].to_numpy(dtype=np.int64)
    x = features.loc[:, list(names)].to_numpy(dtype=np.float64)
    for token in pd.unique(tokens):
        mine = np.flatnonzero(tokens == token)
        builder.add(int(token), times[mine], np.ascontiguousarray(x[mine]))
    return builder.build()


def labels_by_instrument(labels: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """A labels frame of several instruments, split per instrument (first-seen order)."""
    tokens = labels["instrument_token"].to_numpy(dtype=np.int64)
    return {int(t): labels[tokens == t] for t in pd.unique(tokens)}


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
    sides) on (instrument_token, timeframe, time). Rows whose label ends after ``end`` are dropped.
    The frame form of :func:`training_set_of` (same rows, same values)."""
    if features.empty or labels.empty:
        raise ModelError("no training data: features or labels are empty for the requested range")
    names = feature_names or feature_columns(features)
    ts = training_set_of(
        bars_of_frame(features, names),
        labels_by_instrument(labels),
        feature_set=feature_set,
        timeframe=timeframe,
        end=end,
        feature_names=names,
        closes=closes,
    )
    # positions in a Bars the caller never sees; the matrix gathered (the Bars is this call's own)
    return replace(ts, x=np.asarray(ts.x), bar_rows=None)
