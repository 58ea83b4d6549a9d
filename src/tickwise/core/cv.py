"""Purged walk-forward cross-validation with embargo (labeling.md §10, AFML ch. 7).

Events of all instruments share one timeline and are purged on **time**, never on row positions. Test blocks
are contiguous ranges of t0 time; a block's label span is ``[T_start, T_end]`` with ``T_start`` = min t0 of
its events (not their t1: taking t1 leaves the last H training events unpurged) and ``T_end`` = max t1.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

IntArray = npt.NDArray[np.int64]
Embargo: TypeAlias = pd.Timedelta | int

# Events read per step by the t0-sorted splits (issue 15): a window's times are never read whole.
CHUNK = 1 << 20
_NAT = np.iinfo(np.int64).min  # NaT as int64 nanoseconds


class SortedEvents(Protocol):
    """Events read in windows (e.g. a training set's time columns at some rows): ``t0``/``t1`` give the
    int64 ns times of positions ``at`` (a slice or positions) of ``0 .. len - 1``."""

    def __len__(self) -> int: ...

    def t0(self, at: slice | np.ndarray) -> np.ndarray: ...

    def t1(self, at: slice | np.ndarray) -> np.ndarray: ...


def position_dtype(n: int) -> type[np.int32] | type[np.int64]:
    """The narrowest exact type of positions ``0 .. n - 1``: int32 below 2**31, else int64 (issue 15:
    a fold's positions are half the bytes; the values, hence every gather and fit, are the same)."""
    return np.int32 if n < 2**31 else np.int64


def chunk_size() -> int:
    """:data:`CHUNK`, read when called (tests read in small chunks to cross their boundaries)."""
    return CHUNK


def chunks(n: int, size: int | None = None) -> Iterator[slice]:
    """``slice(0, size), slice(size, 2 * size), ...`` covering ``0 .. n - 1`` (``size`` default:
    :data:`CHUNK`, read when called)."""
    size = size or CHUNK
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def is_ascending(values: np.ndarray, size: int | None = None) -> bool:
    """Whether ``values`` never decrease, checked ``size`` at a time (no mask of every value)."""
    for part in chunks(max(len(values) - 1, 0), size):
        if not bool(np.all(values[part.start + 1 : part.stop + 1] >= values[part])):
            return False
    return True


def scan_sorted(events: SortedEvents, size: int | None = None) -> bool:
    """Check ``events`` as :func:`_events` does (no missing time, every ``t1 >= t0``: ``ValueError``
    otherwise), ``size`` at a time, and say whether their t0 never decreases (then the splits can be
    computed as time bounds and counts: :meth:`PurgedWalkForward.split_sorted`, :func:`holdout_sorted`).
    No events: False (the general splits decide what that means)."""
    n, last, ordered = len(events), _NAT, True
    for part in chunks(n, size):
        a, b = events.t0(part), events.t1(part)
        if np.any(a == _NAT):
            raise ValueError("t0 contains missing times")
        if np.any(b == _NAT):
            raise ValueError("t1 contains missing times")
        if np.any(b < a):
            raise ValueError("every event needs t1 >= t0")
        ordered = ordered and int(a[0]) >= last and is_ascending(a, size)
        last = int(a[-1])
    return n > 0 and ordered


def _time_at(events: SortedEvents, i: int) -> int:
    return int(events.t0(slice(i, i + 1))[0])


def first_at_least(events: SortedEvents, value: int) -> int:
    """The first position whose t0 is at least ``value`` (t0 sorted): a bisection of single reads."""
    lo, hi = 0, len(events)
    while lo < hi:
        mid = (lo + hi) // 2
        if _time_at(events, mid) < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


def positions_where(
    events: SortedEvents, stop: int, t1_before: int, t0_from: int | None = None, size: int | None = None
) -> np.ndarray:
    """Positions ``< stop`` with ``t1 < t1_before`` (and ``t0 >= t0_from``), ascending, in the narrowest
    exact type: ``np.flatnonzero`` of the whole mask, ``size`` events at a time."""
    dtype = position_dtype(len(events))
    parts = []
    for part in chunks(stop, size):
        mask = events.t1(part) < t1_before
        if t0_from is not None:
            mask &= events.t0(part) >= t0_from
        parts.append((np.flatnonzero(mask) + part.start).astype(dtype))
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def _distinct_sorted(events: SortedEvents, size: int | None = None) -> int:
    count, last = 0, None
    for part in chunks(len(events), size):
        a = events.t0(part)
        count += int(np.count_nonzero(np.diff(a))) + int(last is None or a[0] != last)
        last = a[-1]
    return count


def _as_ns(values: npt.ArrayLike, name: str) -> IntArray:
    """Times as int64 nanoseconds (tz-aware instants compare in UTC); integer input is used as is."""
    if isinstance(values, pd.Index | pd.Series) and values.dtype.kind == "M":
        # A datetime index or column is converted as is: ``np.asarray`` of a tz-aware one builds one
        # Timestamp object per event (about 8 us each), which cost seconds per split of a training set.
        idx = pd.DatetimeIndex(values)
    else:
        arr = np.asarray(values)
        if arr.dtype.kind in "iu":
            return np.asarray(arr, dtype=np.int64)  # no copy: read only here
        idx = pd.DatetimeIndex(values)
    if idx.hasnans:
        raise ValueError(f"{name} contains missing times")
    # the index's own int64 values, not a copy (``as_unit`` copies even to its own unit): nothing here
    # writes to them (issue 15: two copies fewer of every event's times per split)
    return np.asarray((idx if idx.unit == "ns" else idx.as_unit("ns")).asi8, dtype=np.int64)


def _events(t0: npt.ArrayLike, t1: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    a, b = _as_ns(t0, "t0"), _as_ns(t1, "t1")
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("t0 and t1 must be 1-D and of the same length")
    if np.any(b < a):
        raise ValueError("every event needs t1 >= t0")
    return a, b


def _block_starts(t0: IntArray, n_blocks: int) -> IntArray:
    """Start times of ``n_blocks`` contiguous t0-time blocks holding about equal event counts.

    Events sharing a t0 (several instruments at one bar) always land in the same block.
    """
    if n_blocks < 1:
        raise ValueError("need at least one block")
    s = np.sort(t0, kind="stable")
    n = s.size
    cuts = [s[0]] if n else []
    for g in range(1, n_blocks):
        cut = s[min(n - 1, round(g * n / n_blocks))] if n else 0
        if cut > cuts[-1]:
            cuts.append(cut)
    if len(cuts) < n_blocks:
        raise ValueError(f"cannot cut {n_blocks} time blocks from {np.unique(t0).size} distinct t0 times")
    return np.asarray(cuts, dtype=np.int64)


def _embargo_end(t0_unique: IntArray, t_end: int, embargo: Embargo) -> int:
    """Last instant still embargoed after a block ending at ``t_end``."""
    if isinstance(embargo, pd.Timedelta):
        return t_end + int(embargo.as_unit("ns").value)
    if embargo <= 0:
        return t_end
    # ``embargo`` bars = the next ``embargo`` distinct event times after the block, on the shared timeline.
    first_after = int(np.searchsorted(t0_unique, t_end, side="right"))
    last = min(first_after + int(embargo) - 1, t0_unique.size - 1)
    return int(t0_unique[last]) if last >= first_after else t_end


class PurgedWalkForward:
    """Walk-forward splits purged on time, with an optional K-fold-style variant that uses later data.

    ``split(t0, t1)`` yields ``(train_idx, test_idx)`` positions into the given arrays (any order; several
    instruments may share timestamps). Walk-forward cuts the timeline into ``n_splits + 1`` t0-time blocks and
    tests on each block after the first; training events satisfy ``t0 < T_start`` and ``t1 < T_start``
    (expanding, or sliding over the last ``train_period`` of t0 time when ``expanding=False``). With
    ``include_future=True`` the timeline is cut into ``n_splits`` blocks and events after a block also train,
    but only those with ``t0 > T_end + embargo`` (a Timedelta, or a count of distinct event times = bars on the
    shared timeline). Pure walk-forward has nothing after the block, so the embargo changes nothing there.
    Folds with fewer than ``min_train_events`` training events are skipped.
    """

    def __init__(
        self,
        n_splits: int = 5,
        embargo: Embargo = 0,
        min_train_events: int = 1,
        expanding: bool = True,
        train_period: pd.Timedelta | None = None,
        include_future: bool = False,
    ) -> None:
        if n_splits < 1 or (include_future and n_splits < 2):
            raise ValueError(f"n_splits must be >= 1 (>= 2 with include_future), got {n_splits}")
        if not expanding and train_period is None:
            raise ValueError("a sliding window (expanding=False) needs train_period")
        if isinstance(embargo, int) and embargo < 0:
            raise ValueError("embargo must be >= 0")
        self.n_splits = n_splits
        self.embargo = embargo
        self.min_train_events = max(1, min_train_events)
        self.expanding = expanding
        self.train_period = train_period
        self.include_future = include_future

    def get_n_splits(self) -> int:
        return self.n_splits

    def split(self, t0: npt.ArrayLike, t1: npt.ArrayLike) -> Iterator[tuple[IntArray, IntArray]]:
        """Yield ``(train_idx, test_idx)`` for each fold, in time order of the test blocks."""
        a, b = _events(t0, t1)
        n_blocks = self.n_splits if self.include_future else self.n_splits + 1
        starts = _block_starts(a, n_blocks)
        bounds = np.append(starts, np.iinfo(np.int64).max)
        t0_unique = np.unique(a)
        first_test = 0 if self.include_future else 1
        for g in range(first_test, n_blocks):
            test = np.flatnonzero((a >= bounds[g]) & (a < bounds[g + 1]))
            t_start = int(a[test].min())
            t_end = int(b[test].max())
            train_mask = b < t_start  # implies t0 < T_start, since t0 <= t1
            if not self.expanding and self.train_period is not None:
                train_mask &= a >= t_start - int(self.train_period.as_unit("ns").value)
            if self.include_future:
                train_mask |= a > _embargo_end(t0_unique, t_end, self.embargo)
            train = np.flatnonzero(train_mask)
            if train.size >= self.min_train_events:
                yield train, test

    def split_sorted(
        self, events: SortedEvents, size: int | None = None
    ) -> Iterator[tuple[np.ndarray, slice]]:
        """:meth:`split` of events whose t0 never decreases (:func:`scan_sorted`), read ``size`` at a
        time (issue 15): a test block is then the contiguous range of positions ``slice(lo, hi)`` and
        the training events are the positions before it whose ``t1`` is earlier than its first t0, so
        the blocks are cut by time bounds and counts (single reads) and a fold's training positions
        (ascending, int32 when they fit) are made when the fold is reached. The same positions as
        :meth:`split` (``test`` as a range). The blocks are cut here (a ``ValueError`` now); the folds
        come one at a time. ``include_future`` is not supported (no caller sorts those)."""
        if self.include_future:
            raise ValueError("split_sorted does not support include_future")
        n = len(events)
        n_blocks = self.n_splits + 1
        cuts = [_time_at(events, 0)] if n else []
        for g in range(1, n_blocks):
            cut = _time_at(events, min(n - 1, round(g * n / n_blocks))) if n else 0
            if cut > cuts[-1]:
                cuts.append(cut)
        if len(cuts) < n_blocks:
            raise ValueError(
                f"cannot cut {n_blocks} time blocks from {_distinct_sorted(events, size)} distinct t0 times"
            )
        ranges = [first_at_least(events, c) for c in cuts] + [n]
        return self._sorted_folds(events, cuts, ranges, size)

    def _sorted_folds(
        self, events: SortedEvents, cuts: list[int], ranges: list[int], size: int | None
    ) -> Iterator[tuple[np.ndarray, slice]]:
        for g in range(1, len(cuts)):
            t_start, lo = cuts[g], ranges[g]
            period = None
            if not self.expanding and self.train_period is not None:
                period = t_start - int(self.train_period.as_unit("ns").value)
            train = positions_where(events, lo, t_start, period, size)
            if train.size >= self.min_train_events:
                yield train, slice(lo, ranges[g + 1])


class Holdout(NamedTuple):
    """A final test window kept out of tuning (nested walk-forward)."""

    dev_idx: np.ndarray  # events whose label ends before the holdout starts (purged); int64 or int32
    test_idx: np.ndarray  # events with t0 >= start
    start: pd.Timestamp  # T_start of the holdout (min t0 of its events)


def holdout_split(t0: npt.ArrayLike, t1: npt.ArrayLike, fraction: float = 0.2) -> Holdout:
    """Hold out the last ``fraction`` of events (a contiguous t0-time block) for the final test.

    Development events are purged against it: ``t1 < T_start``. Tune and cross-validate on ``dev_idx`` only.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    a, b = _events(t0, t1)
    if a.size < 2:
        raise ValueError("need at least two events to hold one out")
    s = np.sort(a, kind="stable")
    start = int(s[min(a.size - 1, round((1.0 - fraction) * a.size))])
    if start == s[0]:
        raise ValueError("the holdout would start at the first event time; use a smaller fraction")
    test = np.flatnonzero(a >= start)
    dev = np.flatnonzero(b < start)
    return Holdout(dev, test, pd.Timestamp(start, unit="ns", tz="UTC"))


def holdout_sorted(events: SortedEvents, fraction: float = 0.2, size: int | None = None) -> Holdout:
    """:func:`holdout_split` of events whose t0 never decreases (:func:`scan_sorted`), read ``size`` at
    a time (issue 15): the holdout is the range of positions from its start on, the development events
    those before it whose ``t1`` is earlier; the same positions, int32 when they fit."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    n = len(events)
    if n < 2:
        raise ValueError("need at least two events to hold one out")
    start = _time_at(events, min(n - 1, round((1.0 - fraction) * n)))
    if start == _time_at(events, 0):
        raise ValueError("the holdout would start at the first event time; use a smaller fraction")
    lo = first_at_least(events, start)
    dev = positions_where(events, lo, start, None, size)
    test = np.arange(lo, n, dtype=position_dtype(n))
    return Holdout(dev, test, pd.Timestamp(start, unit="ns", tz="UTC"))
