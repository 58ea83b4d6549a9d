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
its rows' bar positions, each fit and score window gathering its own rows. Its keys and both sides'
labels are kept columns (:class:`KeptColumn`: typed 1-D arrays, in memory or spilled with the matrix)
read when used, and so are each instrument's labels (:class:`KeptLabels`): a spilled training set holds
no array of its rows (issue 15). :func:`build_training_set` (frames in) is the same build, kept for
frame callers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

import numpy as np
import pandas as pd

from tickwise.core.cv import chunk_size, chunks, is_ascending, position_dtype
from tickwise.core.metrics import TradeOutcomes
from tickwise.core.sample_weights import instrument_fold_weights
from tickwise.domain.errors import ModelError

KEY = ["instrument_token", "timeframe", "time"]
LABEL_COLUMNS = ["label", "t1", "ret", "exit_price", "weight"]
NON_FEATURE_COLUMNS = {"instrument_token", "timeframe", "time", "feature_set", "source", "created_at"}


class KeptColumn(Protocol):
    """One kept 1-D typed array (in memory, or spilled by ``ports.row_spill.RowSpill.keep_column``)."""

    def __len__(self) -> int: ...

    def read(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Values ``rows`` (positions, a mask or a slice; default all) in the kept dtype."""
        ...


class ArrayColumn:
    """A kept column in memory: the array itself (reads of a slice are read-only views)."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def read(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        out: np.ndarray = self.values[rows]
        if isinstance(rows, slice):
            out = out.view()
            out.flags.writeable = False  # a view of the kept values: not for writing through
        return out


KeepColumn = Callable[[np.ndarray], KeptColumn]


class JoinedColumn:
    """One kept column made of kept pieces, end to end (issue 15: a load reads an instrument's history a
    date-range chunk at a time and keeps each chunk's column as it comes, so no whole-history array of
    one instrument is made to keep it). Reads give the values of the pieces' concatenation, bit for bit."""

    def __init__(self, pieces: Sequence[KeptColumn]) -> None:
        flat: list[KeptColumn] = []
        for piece in pieces:  # joining joined columns keeps one level of pieces
            flat.extend(piece.pieces if isinstance(piece, JoinedColumn) else (piece,))
        if not flat:
            raise ValueError("a joined column needs at least one piece")
        self.pieces: tuple[KeptColumn, ...] = tuple(flat)
        self._starts = np.cumsum([0, *(len(p) for p in self.pieces)], dtype=np.int64)
        self._dtype: np.dtype[np.generic] | None = None

    def __len__(self) -> int:
        return int(self._starts[-1])

    def read(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        if isinstance(rows, slice):
            lo, hi, step = rows.indices(len(self))
            if step == 1:  # a range: each piece's part of it, one read per piece
                first = int(np.searchsorted(self._starts, lo, side="right")) - 1
                parts = []
                for p in range(max(first, 0), len(self.pieces)):
                    a, b = int(self._starts[p]), int(self._starts[p + 1])
                    if a >= hi:
                        break
                    parts.append(self.pieces[p].read(slice(max(lo, a) - a, min(hi, b) - a)))
                return parts[0] if len(parts) == 1 else np.concatenate(parts or [self._empty()])
        return self._gather(_positions(rows, len(self)))

    def _empty(self) -> np.ndarray:
        return np.empty(0, dtype=self.dtype)

    @property
    def dtype(self) -> np.dtype[np.generic]:
        """The pieces' dtype (the first piece's; a load keeps every chunk's column in the same one)."""
        if self._dtype is None:
            self._dtype = self.pieces[0].read(slice(0, 0)).dtype
        return self._dtype

    def _gather(self, pos: np.ndarray) -> np.ndarray:
        """Values at positions ``pos`` (in ``0..len-1``), in their order: one read per piece."""
        out = np.empty(len(pos), dtype=self.dtype)
        piece_of = np.searchsorted(self._starts, pos, side="right") - 1
        for p in np.unique(piece_of).tolist():
            mine = piece_of == p
            out[mine] = self.pieces[p].read(pos[mine] - self._starts[p])
        return out


def joined(pieces: Sequence[KeptColumn]) -> KeptColumn:
    """``pieces`` as one kept column: the piece itself when there is one."""
    return pieces[0] if len(pieces) == 1 else JoinedColumn(pieces)


_NAT = np.iinfo(np.int64).min  # NaT as int64 nanoseconds
# A side's label columns as a training set keeps them (issue 15): the narrowest exact type of each.
_LABEL_DTYPES: dict[str, type[np.generic]] = {
    "label": np.int8,
    "t1": np.int64,  # ns since the epoch, UTC; NaT as numpy's minimum int64
    "ret": np.float64,
    "exit_price": np.float64,
    "weight": np.float64,
}


def _ns(values: object) -> np.ndarray:
    """tz-aware (or naive UTC) times as int64 ns since the epoch, NaT as the minimum int64."""
    idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    ns: np.ndarray = (idx if idx.unit == "ns" else idx.as_unit("ns")).asi8  # as_unit copies, even to ns
    return ns


def _times(ns: np.ndarray, name: str | None = None) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(ns, utc=True), name=name)  # int64 ns in: ns out, no copy


@dataclass
class TrainingSet:
    """Arrays aligned row by row, sorted by ``t0`` (then instrument).

    The per-row arrays (issue 15) are kept columns (:class:`KeptColumn`, in memory or spilled), read
    when used: ``token``, ``t0``, ``t1`` (the later of both sides' t1), ``bar_rows`` (each row's
    position in the :class:`Bars` it was gathered from: what lets the regime columns of every bar reach
    the rows without a key lookup) and each side's label columns ``"<side>:<name>"``
    (:data:`_LABEL_DTYPES`). :meth:`of_arrays` builds one by hand from arrays and label frames."""

    feature_names: list[str]
    feature_set: str
    timeframe: str
    x: FeatureMatrix  # (n, k) float64: in memory, or gathered on demand from the bars (RowMatrix)
    columns: Mapping[str, KeptColumn]
    closes: Mapping[tuple[int, str], pd.Series] = field(default_factory=dict)

    @classmethod
    def of_arrays(
        cls,
        *,
        feature_names: list[str],
        feature_set: str,
        timeframe: str,
        x: FeatureMatrix,
        token: np.ndarray,
        t0: pd.DatetimeIndex,
        t1: pd.DatetimeIndex,
        labels: Mapping[int, pd.DataFrame],
        closes: Mapping[tuple[int, str], pd.Series] | None = None,
        bar_rows: np.ndarray | None = None,
        keep: KeepColumn = ArrayColumn,
    ) -> TrainingSet:
        """A training set of in-memory arrays: ``labels`` maps a side to its label frame aligned to the
        rows (any of the columns of :data:`_LABEL_DTYPES`; the others are not kept)."""
        columns: dict[str, KeptColumn] = {
            "token": keep(np.asarray(token, dtype=np.int64)),
            "t0": keep(_ns(t0)),
            "t1": keep(_ns(t1)),
        }
        if bar_rows is not None:
            columns["bar_rows"] = keep(np.asarray(bar_rows, dtype=np.int64))
        for side, frame in labels.items():
            for name, dtype in _LABEL_DTYPES.items():
                if name not in frame.columns:
                    continue
                values = frame[name]
                if name == "label":
                    columns[f"{side}:{name}"] = keep(_label_codes(values.to_numpy()))
                elif name == "t1":
                    columns[f"{side}:{name}"] = keep(_ns(values))
                else:
                    columns[f"{side}:{name}"] = keep(values.to_numpy(dtype=dtype))
        return cls(feature_names, feature_set, timeframe, x, columns, dict(closes or {}))

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def read(self, name: str, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Kept column ``name`` (see the class) at ``rows``."""
        try:
            column = self.columns[name]
        except KeyError:
            raise KeyError(f"the training set keeps no column {name!r}") from None
        return column.read(rows)

    def label(self, side: int, name: str, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Side ``side``'s label column ``name`` (label int8, t1 int64 ns, ret/exit_price/weight
        float64) at ``rows``."""
        return self.read(f"{side}:{name}", rows)

    @property
    def token(self) -> np.ndarray:
        return self.read("token")

    @property
    def t0(self) -> pd.DatetimeIndex:
        return _times(self.read("t0"), name="time")

    @property
    def t1(self) -> pd.DatetimeIndex:
        return _times(self.read("t1"))

    @property
    def bar_rows(self) -> np.ndarray | None:
        return self.read("bar_rows") if "bar_rows" in self.columns else None

    @property
    def labels(self) -> dict[int, pd.DataFrame]:
        """Each side's label rows as a frame (``instrument_token``, ``timeframe``, ``time``, ``side``
        and the kept label columns): built on each call from the kept columns, for readers that want a
        frame of every row; changing it changes nothing here."""
        sides = sorted({int(n.split(":")[0]) for n in self.columns if ":" in n}, reverse=True)
        out = {}
        for side in sides:
            token, t0 = self.token, self.t0
            frame = pd.DataFrame({"instrument_token": token, "timeframe": self.timeframe, "time": t0.array})
            frame["side"] = np.full(len(token), side, dtype=np.int8)
            for name in _LABEL_DTYPES:
                if f"{side}:{name}" in self.columns:
                    values = self.label(side, name)
                    frame[name] = _times(values).array if name == "t1" else values
            out[side] = frame
        return out

    def y(self, side: int, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """1 where the side's label is +1 (the trade hit its profit target first), else 0 (of ``rows``:
        only those are read)."""
        y: np.ndarray = (self.label(side, "label", rows) == 1).astype(np.int8)
        return y

    def stored_weight(self, side: int, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        w = self.label(side, "weight", rows).astype(np.float64, copy=False)
        return np.where(np.isfinite(w) & (w > 0), w, 1.0)

    def events(self, rows: np.ndarray | None = None) -> RowEvents:
        """The times of ``rows`` (default: every row) as ``core.cv.SortedEvents``: read in windows."""
        return RowEvents(self, rows)

    @property
    def t0_sorted(self) -> bool:
        """Whether the rows' t0 never decreases (a built training set's always does: its rows keep the
        bars' (time, instrument) order), checked once, :data:`core.cv.CHUNK` rows at a time."""
        known: bool | None = self.__dict__.get("_t0_sorted")
        if known is None:
            known, last = True, np.iinfo(np.int64).min
            for part in chunks(len(self.columns["t0"])):
                t0 = self.read("t0", part)
                if int(t0[0]) < last or not is_ascending(t0):
                    known = False
                    break
                last = int(t0[-1])
            self.__dict__["_t0_sorted"] = known
        return known

    def time_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(t0.min(), t1.max())`` (missing times skipped, as a DatetimeIndex's min and max do), read
        :data:`core.cv.CHUNK` rows at a time."""
        first, last = None, None
        for part in chunks(len(self)):
            t0, t1 = self.read("t0", part), self.read("t1", part)
            t0, t1 = t0[t0 != _NAT], t1[t1 != _NAT]
            if t0.size:
                first = int(t0.min()) if first is None else min(first, int(t0.min()))
            if t1.size:
                last = int(t1.max()) if last is None else max(last, int(t1.max()))
        if first is None or last is None:
            raise ModelError("a training set without event times")
        return pd.Timestamp(first, unit="ns", tz="UTC"), pd.Timestamp(last, unit="ns", tz="UTC")

    def tokens(self) -> list[int]:
        """The distinct instrument tokens of the rows, ascending (``sorted(set(token.tolist()))``,
        without a Python int per row), read :data:`core.cv.CHUNK` rows at a time."""
        seen = np.empty(0, dtype=np.int64)
        for part in chunks(len(self)):
            seen = np.union1d(seen, self.read("token", part))
        return [int(t) for t in seen]

    def outcomes(self, rows: np.ndarray | slice = slice(None)) -> TradeOutcomes:
        long_ret, long_exit = self.label(1, "ret", rows), self.label(1, "exit_price", rows)
        return TradeOutcomes(
            entry_price=_entry_price(long_exit, long_ret, side=1),
            long_ret=long_ret,
            long_exit=long_exit,
            long_win=self.label(1, "label", rows) == 1,
            short_ret=self.label(-1, "ret", rows),
            short_exit=self.label(-1, "exit_price", rows),
            short_win=self.label(-1, "label", rows) == 1,
        )

    def window_weights(self, side: int, rows: np.ndarray) -> np.ndarray:
        """``fold_weights`` of side ``side``'s labels of ``rows``, the fold ending at their latest t1
        (``core.fitting.window_weights`` of this side's label frame), from the kept columns: the same
        values bit for bit, reading only the window's rows."""
        rows = np.asarray(rows)
        n = len(rows)
        out = np.full(n, np.nan, dtype=np.float64)
        train_end = None
        for part in chunks(n):  # the fold ends at the window's latest known t1 of this side
            t1 = self.label(side, "t1", rows[part])
            t1 = t1[t1 != _NAT]
            if t1.size:
                train_end = int(t1.max()) if train_end is None else max(train_end, int(t1.max()))
        if train_end is None:
            return out
        # Each instrument's in-fold window positions (ascending, int32 when they fit), gathered a
        # chunk at a time: no token, t0 or t1 of every window row is read at once (issue 15).
        dtype = position_dtype(n)
        groups: dict[int, list[np.ndarray]] = {}
        for part in chunks(n):
            t1 = self.label(side, "t1", rows[part])
            mine = np.flatnonzero((t1 <= train_end) & (t1 != _NAT))
            if not mine.size:
                continue
            token = self.read("token", rows[part][mine])
            order = np.argsort(token, kind="stable")
            cuts = np.flatnonzero(np.diff(token[order])) + 1
            for at in np.split(order, cuts):
                groups.setdefault(int(token[at[0]]), []).append((mine[at] + part.start).astype(dtype))
        for tok in list(groups):
            pos = np.concatenate(groups.pop(tok))
            grid = close_grid(self.closes, (tok, self.timeframe))
            if grid is None:
                raise KeyError(f"no bars given for instrument {tok}")
            r = rows[pos]
            out[pos] = instrument_fold_weights(*grid, self.read("t0", r), self.label(side, "t1", r), tok)
        return out

    def subset(self, rows: np.ndarray) -> TrainingSet:
        """Rows ``rows`` as a training set of in-memory columns."""
        columns: dict[str, KeptColumn] = {n: ArrayColumn(c.read(rows)) for n, c in self.columns.items()}
        x = self.x.subset(rows) if isinstance(self.x, RowMatrix) else self.x[rows]
        return replace(self, x=x, columns=columns)


class RowEvents:
    """A training set's times at ``rows`` (default: every row) as ``core.cv.SortedEvents``: each read
    is of the positions asked for, so a split or a holdout never holds every row's times."""

    def __init__(self, ts: TrainingSet, rows: np.ndarray | None = None) -> None:
        self._ts, self._rows = ts, rows

    def __len__(self) -> int:
        return len(self._ts) if self._rows is None else len(self._rows)

    def _at(self, at: slice | np.ndarray) -> np.ndarray | slice:
        return at if self._rows is None else self._rows[at]

    def t0(self, at: slice | np.ndarray) -> np.ndarray:
        return self._ts.read("t0", self._at(at))

    def t1(self, at: slice | np.ndarray) -> np.ndarray:
        return self._ts.read("t1", self._at(at))


def _entry_price(exit_: np.ndarray, ret: np.ndarray, side: int) -> np.ndarray:
    # ret = s * (exit / P0 - 1)  =>  P0 = exit / (1 + s * ret)
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
    concatenation, and :meth:`take` gathers the rows a caller needs. The bars' keys are kept columns
    (``keys``: ``token``, ``times``: int64 ns since the epoch (UTC), ``source``), in memory or spilled
    with the matrices (issue 15), read when used (:meth:`key`; :attr:`token`, :attr:`times` and
    :attr:`source` read them whole). Values float64, NaN where missing; ``nan_counts``: missing values
    per column, counted as the parts arrived.
    """

    keys: Mapping[str, KeptColumn]
    columns: tuple[str, ...]
    parts: tuple[KeptRows, ...]
    nan_counts: np.ndarray

    def __len__(self) -> int:
        return len(self.keys["times"])

    def key(self, name: str, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Key ``name`` (``token``, ``times`` or ``source``) of bars ``rows``."""
        return self.keys[name].read(rows)

    @property
    def token(self) -> np.ndarray:
        return self.key("token")

    @property
    def times(self) -> np.ndarray:
        return self.key("times")

    @property
    def source(self) -> np.ndarray:
        return self.key("source")

    def take(self, rows: np.ndarray | slice = slice(None), cols: np.ndarray | None = None) -> np.ndarray:
        """``(len(rows), len(cols))`` float64 values of bars ``rows`` (sorted positions), columns
        ``cols`` (positions in :attr:`columns`; default all), gathered part by part."""
        wanted = self.key("source", rows)
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
        return pd.DatetimeIndex(pd.to_datetime(self.key("times", rows), utc=True).as_unit("ns"), name="time")

    def frame(
        self,
        rows: np.ndarray | slice = slice(None),
        columns: Sequence[str] | None = None,
        timeframe: str = "",
    ) -> pd.DataFrame:
        """``instrument_token, timeframe, time`` then ``columns`` (default: all) of ``rows``, on the rows'
        positions as index: the frame a features read gives, for the few rows or columns a caller needs."""
        names = list(self.columns) if columns is None else list(columns)
        index = _positions(rows, len(self))
        cols = np.array([self.columns.index(n) for n in names], dtype=np.int64)
        frame = pd.DataFrame(self.take(index, cols), columns=names, index=index)
        frame.insert(0, "time", self.time_index(index))
        frame.insert(0, "timeframe", np.full(len(index), timeframe, dtype=object))
        frame.insert(0, "instrument_token", self.key("token", index))
        return frame


def _positions(rows: np.ndarray | slice, n: int) -> np.ndarray:
    """``np.arange(n)[rows]`` without an array of all ``n`` positions (a slice's range, a mask's
    positions, or the positions given, negative ones counted from the end)."""
    if isinstance(rows, slice):
        return np.arange(*rows.indices(n), dtype=np.int64)
    rows = np.asarray(rows)
    if rows.dtype == bool:
        if rows.shape != (n,):
            raise IndexError(f"a mask of shape {rows.shape} for {n} bars")
        return np.flatnonzero(rows)
    if rows.dtype.kind not in "iu":
        raise IndexError(f"bars are picked by positions, a mask or a slice, not {rows.dtype} values")
    pos = rows.astype(np.int64).ravel()
    if pos.size and (pos.min() < -n or pos.max() >= n):
        raise IndexError(f"bar positions outside 0..{n - 1}")
    out: np.ndarray = np.where(pos < 0, pos + n, pos)
    return out


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
        self,
        bars: Bars,
        bar_rows: np.ndarray | KeptColumn,
        cols: np.ndarray,
        extra: np.ndarray | None = None,
    ) -> None:
        if extra is not None and (extra.ndim != 2 or extra.shape[0] != len(bars)):
            raise ModelError(f"per-bar columns of shape {extra.shape} for {len(bars)} bars")
        self.bars = bars
        # The rows' bar positions: an array, or a kept column read window by window (issue 15)
        self.rows: KeptColumn = (
            ArrayColumn(np.asarray(bar_rows, dtype=np.int64))
            if isinstance(bar_rows, np.ndarray)
            else bar_rows
        )
        self.cols = np.asarray(cols, dtype=np.int64)
        self.extra = extra

    @property
    def bar_rows(self) -> np.ndarray:
        return self.rows.read()

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.cols) + (0 if self.extra is None else self.extra.shape[1])

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, rows: np.ndarray | slice = slice(None), cols: np.ndarray | None = None) -> np.ndarray:
        """``(len(rows), len(cols))`` float64: rows ``rows`` (positions, a mask or a slice), columns
        ``cols`` (positions; default all)."""
        bar = self.rows.read(rows)
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
        return RowMatrix(self.bars, self.rows.read(rows), self.cols, self.extra)

    def with_columns(self, extra: np.ndarray) -> RowMatrix:
        """This matrix with per-bar columns ``extra`` (one row per bar of :attr:`bars`) appended."""
        joined = extra if self.extra is None else np.hstack([self.extra, extra])
        return RowMatrix(self.bars, self.rows, self.cols, joined)


def _rows_key(key: object) -> np.ndarray | slice:
    if isinstance(key, slice):
        return key
    if isinstance(key, (int, np.integer)):
        raise IndexError("a row matrix gathers rows by positions, a mask or a slice, not one integer")
    return np.asarray(key)


FeatureMatrix = np.ndarray | RowMatrix


@dataclass(frozen=True)
class KeptPart:
    """One date-range chunk of an instrument's bars as :meth:`BarsBuilder.keep_part` kept it."""

    times: KeptColumn
    rows: KeptRows
    nan_counts: np.ndarray  # missing values per column


class BarsBuilder:
    """Collects one instrument's bars at a time; :meth:`build` sorts their keys, never their values.
    ``keep`` keeps each instrument's matrix and ``keep_column`` the sorted keys (default: in memory; a
    ``RowSpill``'s ``keep`` and ``keep_column``: on disk)."""

    def __init__(
        self,
        columns: Sequence[str],
        keep: Callable[[np.ndarray], KeptRows] = ArrayRows,
        keep_column: KeepColumn = ArrayColumn,
    ) -> None:
        self.columns = tuple(columns)
        self._keep = keep
        self._keep_column = keep_column  # where the bars' keys go (a RowSpill's keep_column: on disk)
        self._parts: list[tuple[int, KeptColumn, KeptRows]] = []
        self._nan = np.zeros(len(self.columns), dtype=np.int64)

    def add(self, token: int, times: np.ndarray, x: np.ndarray) -> None:
        """``times`` (int64 ns, ascending, unique) and ``x`` ``(len(times), len(columns))`` of one
        instrument; ``x`` is handed to ``keep`` (in memory: kept as it is, not copied)."""
        self.add_kept(token, [self.keep_part(token, times, x)])

    def keep_part(self, token: int, times: np.ndarray, x: np.ndarray) -> KeptPart:
        """Keep one date-range chunk of an instrument's bars (``times`` and ``x`` as :meth:`add` takes
        them) without adding it yet: a load adds an instrument's parts (:meth:`add_kept`) once it knows
        the instrument has labels too."""
        if x.shape != (len(times), len(self.columns)):
            raise ModelError(f"instrument {token}: {x.shape} feature values for {len(times)} bars")
        nan = np.isnan(x).sum(axis=0)
        # the times are kept like the keys (spilled: not held in memory while the load goes on)
        kept_times = self._keep_column(np.asarray(times, dtype=np.int64))
        return KeptPart(kept_times, self._keep(x), nan)

    def add_kept(self, token: int, parts: Sequence[KeptPart]) -> None:
        """Add instrument ``token``'s kept parts, oldest first (each part's times after the previous
        part's): the bars are those of one part of their concatenation, bit for bit (the sorted keys,
        the positions, the values :meth:`Bars.take` gathers and the missing-value counts)."""
        for part in parts:
            self._nan += part.nan_counts
            self._parts.append((int(token), part.times, part.rows))

    def build(self) -> Bars:
        """The bars sorted by (time, instrument): ``np.lexsort((token, times))`` of the parts in the
        order they came, merged one time window of about :data:`core.cv.CHUNK` bars at a time (issue
        15): each key of every bar is made once, one key after the other, and kept before the next, so
        the build holds one key of every bar besides the parts' times (not five arrays of every bar)."""
        parts, self._parts = self._parts, []
        tokens = [token for token, _, _ in parts]
        times = [t for _, t, _ in parts]
        starts = np.cumsum([0, *(len(t) for t in times)])
        n = int(starts[-1])
        windows = _time_windows(times)
        # each part's bars in each window [w_i, w_i+1): positions in its times, one read per part
        bounds = [
            np.searchsorted(t.read(), windows) if len(t) else np.zeros(len(windows), np.int64) for t in times
        ]
        keep = self._keep_column
        keys = {}
        for name in ("token", "times", "source"):
            out = np.empty(n, dtype=np.int64)
            at = 0
            for w in range(len(windows) - 1):
                ranges = [(int(b[w]), int(b[w + 1])) for b in bounds]
                # the parts' bars in the window, in the parts' order: lexsort's ties keep that order
                key_token = np.concatenate(
                    [np.full(b - a, tok, dtype=np.int64) for tok, (a, b) in zip(tokens, ranges, strict=True)]
                )
                key_time = np.concatenate(
                    [t.read(slice(a, b)) for t, (a, b) in zip(times, ranges, strict=True)]
                )
                order = np.lexsort((key_token, key_time))
                if name == "token":
                    values = key_token[order]
                elif name == "times":
                    values = key_time[order]
                else:
                    values = np.concatenate(
                        [np.arange(s + a, s + b) for s, (a, b) in zip(starts[:-1], ranges, strict=True)]
                    )[order]
                out[at : at + len(values)] = values
                at += len(values)
            keys[name] = keep(out)
            del out
        return Bars(keys, self.columns, tuple(x for _, _, x in parts), self._nan)


def _time_windows(times: Sequence[KeptColumn]) -> np.ndarray:
    """Ascending bounds ``[w0, w1, ..., wk]`` of time windows ``[w_i, w_i+1)`` that cover every time of
    ``times`` (each ascending, read one at a time) with about :data:`core.cv.CHUNK` of them in each: cut
    at every CHUNK-th of a 1-in-64 sample of them (the sample is a 64th of the times)."""
    stride = 64
    samples, last = [], None
    for kept in times:
        if len(kept):
            t = kept.read()
            samples.append(np.array(t[::stride], dtype=np.int64))
            last = int(t[-1]) if last is None else max(last, int(t[-1]))
            del t
    if last is None:
        return np.empty(0, dtype=np.int64)
    cuts = np.unique(np.sort(np.concatenate(samples))[:: max(chunk_size() // stride, 1)])
    return np.append(cuts, last + 1)


class KeptLabels:
    """One instrument's stored label rows (both sides) as a load keeps them (issue 15): the columns a
    training set reads (:data:`KEPT_LABELS`), each a kept column (in memory, or spilled), so an
    instrument's labels are read when a training set or a score window needs them, not held per row.
    ``time`` and ``t1`` are int64 ns since the epoch (UTC; NaT as the minimum int64); the others keep
    the dtype they were given (a load gives side and label as int8: ``train.compact_labels``)."""

    def __init__(self, columns: Mapping[str, KeptColumn]) -> None:
        missing = [c for c in KEPT_LABELS if c not in columns]
        if missing:
            raise ModelError(f"kept labels without the columns {missing}")
        self.columns = dict(columns)

    @classmethod
    def of_frame(cls, frame: pd.DataFrame, keep: KeepColumn = ArrayColumn) -> KeptLabels:
        """Kept labels of ``frame`` (stored label rows of one instrument, at least :data:`KEPT_LABELS`)."""
        return cls(
            {
                name: keep(_ns(frame[name]) if name in ("time", "t1") else frame[name].to_numpy())
                for name in KEPT_LABELS
            }
        )

    @classmethod
    def joined(cls, parts: Sequence[KeptLabels]) -> KeptLabels:
        """The labels of ``parts`` (one instrument's, oldest first) end to end, as one instrument's."""
        if not parts:
            raise ModelError("no kept labels to join")
        return cls({name: joined([p.columns[name] for p in parts]) for name in KEPT_LABELS})

    def __len__(self) -> int:
        return len(self.columns["time"])

    def read(self, name: str, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        return self.columns[name].read(rows)

    def frame(self, rows: np.ndarray | slice = slice(None)) -> pd.DataFrame:
        """Rows ``rows`` as a frame of the kept columns, ``time`` and ``t1`` tz-aware (UTC, ns)."""
        out = pd.DataFrame({"time": _times(self.read("time", rows)).array})
        for name in KEPT_LABELS[1:]:
            values = self.read(name, rows)
            out[name] = _times(values).array if name == "t1" else values
        return out


class KeptCloses(Mapping[tuple[int, str], pd.Series]):
    """Each instrument's closes (``(token, timeframe)`` -> close by bar open time), kept as two columns
    (int64 ns times, float64 closes; in memory or spilled), the Series built when one is asked for
    (issue 15: a load holds no close of every bar). The same index values and closes as the Series
    given to :meth:`add`, bit for bit; the index is tz-aware (UTC, ns) and named ``time``."""

    def __init__(self, keep: KeepColumn = ArrayColumn) -> None:
        self._keep = keep
        self._kept: dict[tuple[int, str], tuple[KeptColumn, KeptColumn]] = {}

    def add(self, key: tuple[int, str], closes: pd.Series) -> None:
        values = closes.to_numpy(dtype=np.float64)
        self._kept[key] = (self._keep(_ns(closes.index)), self._keep(values))

    def extend(self, key: tuple[int, str], closes: pd.Series) -> None:
        """Append ``closes`` (later bars than those kept for ``key``) to ``key``'s: a load keeps an
        instrument's closes a date-range chunk at a time (issue 15), and reads give them end to end."""
        before = self._kept.get(key)
        self.add(key, closes)
        if before is not None:
            times, values = self._kept[key]
            self._kept[key] = (joined([before[0], times]), joined([before[1], values]))

    def __getitem__(self, key: tuple[int, str]) -> pd.Series:
        times, closes = self._kept[key]
        return pd.Series(closes.read(), index=_times(times.read(), name="time"))

    def grid(self, key: tuple[int, str]) -> tuple[np.ndarray, np.ndarray] | None:
        """The kept int64 ns times and float64 closes of ``key`` as they are (``None`` if not kept):
        what ``self[key]``'s index and values give through ``_ns``, without building the Series."""
        kept = self._kept.get(key)
        return None if kept is None else (kept[0].read(), kept[1].read())

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return iter(self._kept)

    def __len__(self) -> int:
        return len(self._kept)


def close_grid(
    closes: Mapping[tuple[int, str], pd.Series], key: tuple[int, str]
) -> tuple[np.ndarray, np.ndarray] | None:
    """An instrument's closes as (int64 ns bar times, float64 closes), or ``None``: kept columns are
    read as they are (a window's weights ask for every instrument's grid per fold; building a Series
    and converting its index back cost a fifth of a run's training time)."""
    if isinstance(closes, KeptCloses):
        return closes.grid(key)
    close = closes.get(key)
    return None if close is None else (_ns(close.index), close.to_numpy(dtype=np.float64))


# The label columns a training set reads of each instrument's stored labels.
KEPT_LABELS = ("time", "side", "label", "t1", "ret", "exit_price", "weight")


def training_set_of(
    bars: Bars,
    labels: Mapping[int, pd.DataFrame | KeptLabels],
    *,
    feature_set: str,
    timeframe: str,
    end: datetime | None = None,
    feature_names: Sequence[str] | None = None,
    closes: Mapping[tuple[int, str], pd.Series] | None = None,
    keep: KeepColumn = ArrayColumn,
) -> TrainingSet:
    """The bars (of ``feature_names``, default all columns) that have a label on both sides ending by
    ``end``, with those labels: ``labels`` maps an instrument to its stored label rows (both sides; a
    frame or :class:`KeptLabels`). Rows keep the bars' (time, instrument) order. The training set's
    columns are handed to ``keep`` one at a time as they are built (a ``RowSpill``'s ``keep_column``:
    on disk), so at most one column of all rows is in memory besides the rows' positions."""
    names = list(feature_names) if feature_names is not None else list(bars.columns)
    if len(bars) == 0 or not any(len(f) for f in labels.values()):
        raise ModelError("no training data: features or labels are empty for the requested range")
    end_ns = None if end is None else pd.Timestamp(end).tz_convert("UTC").as_unit("ns").value
    rows_of = _rows_by_token(bars)
    picked: list[np.ndarray] = []  # each instrument's rows: their bar positions, ascending
    # each instrument's label rows per side, kept (spilled) until the columns are written
    sources: list[tuple[KeptLabels, dict[int, KeptColumn]]] = []
    for instrument, given in labels.items():
        rows = rows_of.pop(int(instrument), None)
        if rows is None or len(given) == 0:
            continue
        lab = given if isinstance(given, KeptLabels) else KeptLabels.of_frame(given)
        lab_t0, lab_t1 = lab.read("time"), lab.read("t1")
        kept = np.ones(len(lab), dtype=bool) if end_ns is None else lab_t1 <= end_ns
        side = lab.read("side")
        long_, short = np.flatnonzero(kept & (side == 1)), np.flatnonzero(kept & (side == -1))
        both, at_l, at_s = np.intersect1d(lab_t0[long_], lab_t0[short], return_indices=True)
        _, at_bar, at_both = np.intersect1d(bars.key("times", rows), both, return_indices=True)
        label_rows = position_dtype(len(lab))
        long_, short = long_[at_l[at_both]].astype(label_rows), short[at_s[at_both]].astype(label_rows)
        picked.append(rows[at_bar])
        sources.append((lab, {1: keep(long_), -1: keep(short)}))
        del long_, short
    del rows_of
    n = sum(len(p) for p in picked)
    if n == 0:
        raise ModelError("no training data: no bar has features and labels on both sides")
    # The rows in the bars' order: their positions sorted (each bar is one instrument's: no ties), and
    # each instrument's rows' places in it, so every column is written in place a part at a time
    # (issue 15: no argsort of every row and no concatenation of a column before its reorder).
    rows = np.concatenate(picked).astype(np.int64)
    rows.sort()
    dests = []  # kept (spilled) like the label rows: read back one instrument at a time
    while picked:
        dests.append(keep(np.searchsorted(rows, picked.pop(0)).astype(position_dtype(n))))
    columns: dict[str, KeptColumn] = {
        "token": keep(bars.key("token", rows)),
        "t0": keep(bars.key("times", rows)),
    }
    bar_rows = keep(rows)
    del rows
    t1 = np.empty(n, dtype=np.int64)
    for (lab, at), dest in zip(sources, dests, strict=True):
        t1[dest.read()] = np.maximum(lab.read("t1", at[1].read()), lab.read("t1", at[-1].read()))
    columns["t1"] = keep(t1)
    del t1
    for s in (1, -1):
        for name, dtype in _LABEL_DTYPES.items():
            out: np.ndarray | None = None
            for (lab, at), dest in zip(sources, dests, strict=True):
                part = lab.read(name, at[s].read())
                part = _label_codes(part) if name == "label" else np.asarray(part, dtype=dtype)
                if out is None:
                    out = np.empty(n, dtype=part.dtype)
                out[dest.read()] = part
            assert out is not None  # n > 0: some instrument has rows
            columns[f"{s}:{name}"] = keep(out)
            del out
    columns["bar_rows"] = bar_rows
    del sources, dests
    x = RowMatrix(bars, columns["bar_rows"], np.array([bars.columns.index(n) for n in names], dtype=np.int64))
    # the closes as given (a KeptCloses stays one: no Series of every instrument is built here)
    return TrainingSet(names, feature_set, timeframe, x, columns, {} if closes is None else closes)


def _rows_by_token(bars: Bars) -> dict[int, np.ndarray]:
    """Each instrument's bar positions (ascending, int32 when they fit), its tokens read
    :data:`core.cv.CHUNK` bars at a time (no token or sort of every bar at once)."""
    dtype = position_dtype(len(bars))
    groups: dict[int, list[np.ndarray]] = {}
    for part in chunks(len(bars)):
        token = bars.key("token", part)
        order = np.argsort(token, kind="stable")
        cuts = np.flatnonzero(np.diff(token[order])) + 1
        for at in np.split(order, cuts):
            groups.setdefault(int(token[at[0]]), []).append((at + part.start).astype(dtype))
    return {tok: np.concatenate(parts) for tok, parts in groups.items()}


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
    columns = {n: c for n, c in ts.columns.items() if n != "bar_rows"}
    return replace(ts, x=np.asarray(ts.x), columns=columns)
