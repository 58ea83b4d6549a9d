"""Feature state of many instruments as arrays (structure of arrays) and one compiled step for all.

A :class:`FeatureBank` holds the compiled-step state of every attached :class:`FeatureStream` in
stacked arrays (``ist[i]``, ``fst[i]``, ``ring[i]``, the slot column ``col[i]`` ...; row ``i`` is one
instrument) and the streams keep views of their row, so a stream updated alone and a stream updated
through the bank share the same memory and the same compiled :func:`kernels.step_derive`.
:meth:`FeatureBank.update_many` folds one bar into each of many streams: each bar is read once (the
only per-bar Python left), all are checked and written into the columns vectorized, then ONE native
call (:func:`kernels.step_many`) runs the custom kernels, native TA-Lib replicas (all 1m TA-Lib calls
with the default catalog), the context bars and their indicators (all context calls with the default
catalog) and derived features of all of them, and the rows come back as one matrix, ready for one
batched predict: no per-instrument Python at a minute that closes 5/15/60-minute bars either.
Row ``j`` is bit-identical to ``streams[j].update(bars[j])`` (tested over many instruments).

A minute's step can run on several threads (:meth:`FeatureBank.run_on`, the live shard's scoring
threads): its rows are split into contiguous blocks and each block is stepped by the same compiled
``step_many``, which releases the GIL. Each row's step reads and writes only its own bank row (the
rows of one call are distinct, checked) and the parameters, which nothing writes, so a row's bits do
not depend on the block it is in (tested: 1, 2 and 3 blocks give the bytes of one).
"""

from __future__ import annotations

import itertools
import math
import operator
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np

from tickwise.core.features import kernels
from tickwise.core.features.engine import KernelParams
from tickwise.core.features.layout import Layout, new_state
from tickwise.core.features.stream import (
    FeatureStream,
    epoch_minute,
    non_finite_message,
    not_after_message,
    read_bar,
)
from tickwise.domain.bar import Bar
from tickwise.domain.errors import DataValidationError

# Fewer rows than this per thread are stepped on the calling thread alone. Handing a block over (a
# future, a wake-up, the GIL taken back) costs 45-90 us, the step 1.5-3.5 us a row; but a row stepped on
# another core is then read cold by the engine thread (the next minute's checks, the gather), and a
# 1,000-instrument minute split in two cost the engine thread no less and all threads more (loaded
# pairs, docs/benchmarks.md, "The bank step on the scoring threads (issue 14, eleventh session)"):
# 3,000 rows split, 1,000 do not.
MIN_ROWS_PER_BLOCK = 512


class FeatureBank:
    """The compiled-step state of many streams, one row each; grown as streams are attached."""

    def __init__(self, layout: Layout, capacity: int = 64) -> None:
        self._layout = layout
        self._p = KernelParams.of(layout)
        self._n_feat = len(layout.names)
        self._streams: list[FeatureStream | None] = []
        self._row_of: dict[int, int] = {}  # key (instrument) -> row
        slots = layout.slots
        # the column slots update_many writes a bar's o, h, l, c, v and obi_5 into
        self._in_slots = np.array([slots[n] for n in ("open", "high", "low", "close", "volume", "obi_5")])
        self._threads = 1
        self._pool: Executor | None = None
        self._alloc(max(capacity, 1))

    def _alloc(self, capacity: int) -> None:
        lay = self._layout
        ist, fst, ring = new_state(lay)
        n_tf = len(lay.context)
        self.ist = np.zeros((capacity, ist.shape[0]), dtype=np.int64)
        self.fst = np.zeros((capacity, fst.shape[0]))
        self.ring = np.zeros((capacity, *ring.shape))
        self.col = np.full((capacity, lay.n_slots, 1), np.nan)
        self.fin_bars = np.zeros((capacity, n_tf, 2, 5))
        self.fin_count = np.zeros((capacity, n_tf), dtype=np.int64)
        self._has_talib = np.zeros(capacity, dtype=bool)  # row's stream still has a 1m TA-Lib handle

    @property
    def capacity(self) -> int:
        return int(self.ist.shape[0])

    def __len__(self) -> int:
        return len(self._row_of)

    @property
    def threads(self) -> int:
        """The threads a step may use (:meth:`run_on`); 1: the calling thread alone."""
        return self._threads

    def run_on(self, threads: int, pool: Executor | None) -> None:
        """Step the rows of a call in up to ``threads`` contiguous blocks (each of at least
        :data:`MIN_ROWS_PER_BLOCK` rows), the calling thread taking the first and ``pool`` (at least
        ``threads - 1`` workers) the others: the same bits as one block. ``threads`` 1 needs no pool."""
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if threads > 1 and pool is None:
            raise ValueError(f"{threads} threads need a pool for the blocks after the first")
        self._threads = threads
        self._pool = pool if threads > 1 else None

    def attach(self, key: int, stream: FeatureStream) -> int:
        """Move ``stream``'s state into the bank row of ``key`` (a new row for a new key); return it.

        A stream re-opened for the same key (a rewind) takes over the old stream's row.
        """
        row = self._row_of.get(key)
        if row is None:
            row = len(self._streams)
            if row >= self.capacity:
                self._grow(max(2 * self.capacity, row + 1))
            self._streams.append(None)
            self._row_of[key] = row
        self._bind(row, stream)
        self._streams[row] = stream
        self._has_talib[row] = stream.has_talib
        return row

    def holds(self, keys: Sequence[int], streams: Sequence[FeatureStream | None]) -> bool:
        """Whether every key has a row and that row holds that very stream (``streams[j]`` for
        ``keys[j]``): a whole minute's check in C-level maps, not a :meth:`stream` call per key."""
        try:
            rows = list(map(self._row_of.__getitem__, keys))
        except KeyError:
            return False
        return len(rows) == len(streams) and all(
            map(operator.is_, map(self._streams.__getitem__, rows), streams)
        )

    def stream(self, key: int) -> FeatureStream | None:
        row = self._row_of.get(key)
        return None if row is None else self._streams[row]

    def row(self, key: int) -> int | None:
        """The bank row of ``key`` (rows never move once given), or None."""
        return self._row_of.get(key)

    def _bind(self, row: int, stream: FeatureStream) -> None:
        stream.bind(
            self.ist[row], self.fst[row], self.ring[row], self.col[row], self.fin_bars[row],
            self.fin_count[row],
        )  # fmt: skip

    def _grow(self, capacity: int) -> None:
        old = (self.ist, self.fst, self.ring, self.col, self.fin_bars, self.fin_count, self._has_talib)
        self._alloc(capacity)
        new = (self.ist, self.fst, self.ring, self.col, self.fin_bars, self.fin_count, self._has_talib)
        for a, b in zip(old, new, strict=True):
            b[: a.shape[0]] = a
        # The streams hold views of the old arrays: re-point them (the values were copied above).
        for row, stream in enumerate(self._streams):
            if stream is not None:
                self._bind(row, stream)

    def update_many(
        self, keys: Sequence[int], bars: Sequence[Any]
    ) -> tuple[np.ndarray, list[DataValidationError | None]]:
        """Fold ``bars[j]`` into the stream of ``keys[j]`` (each key at most once); one compiled step.

        Returns the feature rows (``(len(keys), n_features)``, NaN rows for refused bars) and per bar
        the :class:`DataValidationError` that refused it (the stream is then unchanged) or None.
        """
        if len(set(keys)) != len(keys):
            raise ValueError("update_many takes at most one bar per instrument per call")
        k = len(keys)
        errors: list[DataValidationError | None] = [None] * k
        # The bars as arrays (one comprehension per field for the live path's Bars, else one read per
        # bar); the checks below are vectorized.
        got = _bar_arrays(bars)
        if got is not None:
            raw_times, t_min, vals = got
            parsed = np.ones(k, dtype=bool)
        else:
            t_min = np.zeros(k, dtype=np.int64)
            vals = np.full((k, 6), np.nan)  # o, h, l, c, v, obi_5
            raw_times = [None] * k
            parsed = np.ones(k, dtype=bool)
            for j, bar in enumerate(bars):
                try:
                    raw_times[j], t_min[j], *vals[j] = read_bar(bar)
                except DataValidationError as exc:
                    errors[j] = exc
                    parsed[j] = False
        rows = np.fromiter(map(self._row_of.__getitem__, keys), dtype=np.int64, count=k)
        return self._update(rows, raw_times, t_min, vals, parsed, errors)

    def update_columns(
        self, keys: Sequence[int], times: Sequence[Any], t_min: np.ndarray, values: np.ndarray
    ) -> tuple[np.ndarray, list[DataValidationError | None]]:
        """:meth:`update_many` of bars given as columns: ``times`` (each bar's open instant, for the
        messages), ``t_min`` their epoch minutes and ``values`` the ``(n, 6)`` o, h, l, c, volume,
        obi_5 block (what :meth:`update_many` reads from the bars): the same checks, step and rows."""
        if len(set(keys)) != len(keys):
            raise ValueError("update_columns takes at most one bar per instrument per call")
        k = len(keys)
        if len(times) != k or t_min.shape != (k,) or values.shape != (k, 6):
            raise ValueError(f"{k} keys need {k} times, epoch minutes and value rows")
        rows = np.fromiter(map(self._row_of.__getitem__, keys), dtype=np.int64, count=k)
        return self._update(rows, times, t_min, values, np.ones(k, dtype=bool), [None] * k)

    def update_rows(
        self, rows: np.ndarray, times: Sequence[Any], t_min: np.ndarray, values: np.ndarray
    ) -> tuple[np.ndarray, list[DataValidationError | None]]:
        """:meth:`update_columns` of bars given by bank row (:meth:`row` of each key) rather than by
        key: the caller has the rows already (the live engine keeps them between minutes), so no
        lookup per bar. The same checks, step and rows."""
        k = rows.shape[0]
        if rows.ndim != 1 or len(times) != k or t_min.shape != (k,) or values.shape != (k, 6):
            raise ValueError(f"{k} rows need {k} times, epoch minutes and value rows")
        if k and (int(rows.min()) < 0 or int(rows.max()) >= len(self._streams)):
            raise ValueError("update_rows takes rows the bank has given")
        if np.unique(rows).shape[0] != k:
            raise ValueError("update_rows takes at most one bar per instrument (bank row) per call")
        return self._update(
            rows.astype(np.int64, copy=False), times, t_min, values, np.ones(k, dtype=bool), [None] * k
        )

    def _update(
        self,
        rows: np.ndarray,
        raw_times: Sequence[Any],
        t_min: np.ndarray,
        vals: np.ndarray,
        parsed: np.ndarray,
        errors: list[DataValidationError | None],
    ) -> tuple[np.ndarray, list[DataValidationError | None]]:
        k = rows.shape[0]
        ohlcv = vals[:, :5]
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(ohlcv).all(axis=1) & (ohlcv[:, 3] > 0.0)
        for j in np.flatnonzero(parsed & ~finite).tolist():
            errors[j] = DataValidationError(non_finite_message(raw_times[j], ohlcv[j].tolist()))
        ist = self.ist[rows]
        seen = ist[:, kernels.I_COUNT]
        late = parsed & finite & (seen > 0) & (t_min <= ist[:, kernels.I_LAST_TIME])
        for j in np.flatnonzero(late).tolist():
            errors[j] = DataValidationError(not_after_message(raw_times[j]))
        ok = np.flatnonzero(parsed & finite & ~late)
        if ok.shape[0] == 0:
            return np.full((k, self._n_feat), np.nan), errors
        r_ok = rows[ok]
        lay = self._layout
        self.col[r_ok[:, None], self._in_slots, 0] = vals[ok]
        masking = seen[ok] <= lay.warmup
        streams = self._streams
        defer = lay.context_talib
        # Only streams with a TA-Lib handle left (none with the default catalog) need Python per
        # stream: 1m handles, or context handles (values to restore while warming up).
        for n in np.flatnonzero((masking & defer) | self._has_talib[r_ok]).tolist():
            stream = streams[int(r_ok[n])]
            assert stream is not None
            o, h, lo, c, v = ohlcv[ok[n]].tolist()
            stream.run_talib(o, h, lo, c, v)
            if masking[n] and defer:
                stream.restore_context()
        n_fin = np.zeros(ok.shape[0], dtype=np.int64)
        o_ok = np.ascontiguousarray(ohlcv[ok].T)
        self._step(r_ok, t_min[ok], o_ok, n_fin)
        # With context TA-Lib handles, the instruments that closed a context bar need Python again.
        for n in np.flatnonzero(n_fin if defer else ()).tolist():
            stream = streams[int(r_ok[n])]
            assert stream is not None
            stream.finish(int(n_fin[n]), bool(masking[n]))
        if ok.shape[0] == k:  # every bar accepted (the usual minute): the gather is the result
            every: np.ndarray = self.col[r_ok, : self._n_feat, 0]
            return every, errors
        out = np.full((k, self._n_feat), np.nan)
        out[ok] = self.col[r_ok, : self._n_feat, 0]
        return out, errors

    def _step(self, rows: np.ndarray, t_min: np.ndarray, ohlcv: np.ndarray, n_fin: np.ndarray) -> None:
        """The compiled step of bank rows ``rows`` with bars ``t_min[j]``, ``ohlcv[:, j]`` (o, h, l, c,
        v), in contiguous blocks on the threads of :meth:`run_on` when the rows are enough."""
        n = rows.shape[0]
        blocks = min(self._threads, n // MIN_ROWS_PER_BLOCK)
        if blocks <= 1 or self._pool is None:
            self._step_block(rows, t_min, ohlcv, n_fin)
            return
        edges = [n * b // blocks for b in range(blocks + 1)]
        rest = [
            self._pool.submit(self._step_counted, rows[lo:hi], t_min[lo:hi], ohlcv[:, lo:hi], n_fin[lo:hi])
            for lo, hi in itertools.pairwise(edges[1:])
        ]
        try:
            self._step_block(rows[: edges[1]], t_min[: edges[1]], ohlcv[:, : edges[1]], n_fin[: edges[1]])
        finally:
            for done in rest:  # every block has ended before the rows are read (or an error raised)
                done.result()

    def _step_counted(
        self, rows: np.ndarray, t_min: np.ndarray, ohlcv: np.ndarray, n_fin: np.ndarray
    ) -> None:
        cpu0 = time.thread_time()
        try:
            self._step_block(rows, t_min, ohlcv, n_fin)
        finally:
            spent = time.thread_time() - cpu0
            with _BLOCK_CPU_LOCK:
                _BLOCK_CPU_S[0] += spent

    def _step_block(self, rows: np.ndarray, t_min: np.ndarray, ohlcv: np.ndarray, n_fin: np.ndarray) -> None:
        # A row of a column slice of the C-contiguous (5, n) block is itself C-contiguous: the kernel's
        # one compiled signature, whatever the block.
        o, h, lo, c, v = ohlcv
        p, lay = self._p, self._layout
        kernels.step_many(
            rows, t_min, o, h, lo, c, v, p.hurst_window, p.hurst_lags, p.zwins, p.zshort, p.horizons,
            p.rlags, p.tfs, p.kalman, p.session, lay.ffd_w, lay.cslots, self.ist, self.fst, self.ring,
            self.col, self.fin_bars, self.fin_count, lay.ops, lay.consts, lay.warm, n_fin,
            lay.context_talib,
        )  # fmt: skip


def block_cpu_s() -> float:
    """CPU seconds the pool's threads have spent on bank blocks in this process (not the calling
    threads' first blocks): a caller that times its own thread's CPU adds this to count a threaded step."""
    with _BLOCK_CPU_LOCK:
        return _BLOCK_CPU_S[0]


_BLOCK_CPU_S = [0.0]
_BLOCK_CPU_LOCK = threading.Lock()


def _bar_arrays(bars: Sequence[Any]) -> tuple[list[Any], np.ndarray, np.ndarray] | None:
    """``(times, epoch minutes, (k, 6) o/h/l/c/v/obi_5)`` of live :class:`Bar` objects read field by
    field across all bars (the values :func:`read_bar` gives, to the bit); None when a bar is not a
    ``Bar`` or a field does not read as a number or an aware time (the per-bar path then says which)."""
    if not all(type(b) is Bar for b in bars):
        return None
    candles = [b.candle for b in bars]
    times = [c.time for c in candles]
    try:
        minute_of = {t: epoch_minute(t) for t in set(times)}  # a minute's bars share one time
        vals = np.empty((len(bars), 6))
        vals[:, 0] = [c.open for c in candles]
        vals[:, 1] = [c.high for c in candles]
        vals[:, 2] = [c.low for c in candles]
        vals[:, 3] = [c.close for c in candles]
        vals[:, 4] = [c.volume for c in candles]
        vals[:, 5] = [math.nan if b.obi_5 is None else b.obi_5 for b in bars]
    except (DataValidationError, TypeError, ValueError):
        return None
    t_min = np.fromiter((minute_of[t] for t in times), dtype=np.int64, count=len(times))
    return times, t_min, vals
