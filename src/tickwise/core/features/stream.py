"""The live path: one :class:`FeatureStream` per instrument, fed one closed 1m bar at a time.

It runs the same producers as the batch engine, one column at a time: the same compiled
:func:`kernels.step` with its carried state (custom kernels, the TA-Lib replicas, the context bars and
their indicators), the same derived / warm-up kernel, and, for TA-Lib calls without a replica (none
with the default catalog), TA-Lib 0.8 stream handles opened on the full history from the anchor
(bit-identical to the Function API).
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from tickwise.core.features import kernels
from tickwise.core.features.derived import apply_derived
from tickwise.core.features.engine import BatchRun, KernelParams, PendingHandle
from tickwise.core.features.layout import Layout
from tickwise.core.features.talib_catalog import abstract
from tickwise.domain.errors import DataValidationError

_INPUT_INDEX = {"open": 0, "high": 1, "low": 2, "close": 3, "volume": 4}


@dataclass
class StreamState:
    """The picklable part of a stream: the custom-kernel state and the last slot column.

    TA-Lib handles cannot be pickled; after a restart, re-open the stream from the anchor
    (persist bars, not handles).
    """

    ist: np.ndarray
    fst: np.ndarray
    ring: np.ndarray
    column: np.ndarray

    @property
    def bars_seen(self) -> int:
        return int(self.ist[kernels.I_COUNT])


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)


def epoch_minute(t: Any) -> int:
    """Epoch minute of a tz-aware instant (datetime, pandas Timestamp or numpy datetime64 in UTC)."""
    if isinstance(t, pd.Timestamp):
        if t.tzinfo is None:
            raise DataValidationError(f"bar time {t!r} is naive; pass a tz-aware instant")
        return int(t.value // 60_000_000_000)
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise DataValidationError(f"bar time {t!r} is naive; pass a tz-aware instant")
        return (t - _EPOCH) // _MINUTE
    if isinstance(t, np.datetime64):
        return int(t.astype("datetime64[m]").astype(np.int64))
    raise DataValidationError(f"bar time {t!r} is not a datetime")


def read_bar(bar: Mapping[str, Any] | Any) -> tuple[Any, int, float, float, float, float, float, float]:
    """Read one bar: ``(raw time, epoch minute, o, h, l, c, v, obi_5 or NaN)``.

    ``bar`` is a mapping or an object with the fields as keys / attributes. A missing or naive time, or
    a non-numeric price or volume, raises :class:`DataValidationError`; values are not checked here
    (see :func:`non_finite_message`).
    """
    if isinstance(bar, Mapping):
        get: Callable[..., Any] = bar.get
    else:
        get = partial(getattr, bar)  # getattr(bar, name, default)
    raw_time = get("time", None)
    t_min = epoch_minute(raw_time)
    try:
        o = float(get("open", None))
        h = float(get("high", None))
        lo = float(get("low", None))
        c = float(get("close", None))
        v = float(get("volume", None))
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"bar at {raw_time} has a non-numeric price/volume: {exc}") from exc
    obi = get("obi_5", None)
    return raw_time, t_min, o, h, lo, c, v, math.nan if obi is None else float(obi)


def non_finite_message(raw_time: Any, values: list[float]) -> str:
    return f"bar at {raw_time} has a non-finite or non-positive price: {values}"


def not_after_message(raw_time: Any) -> str:
    return f"bar at {raw_time} is not after the previous bar"


class FeatureStream:
    """Live feature rows for one instrument; open it with :meth:`FeatureCalculator.open_stream`."""

    def __init__(self, layout: Layout, params: KernelParams, run: BatchRun) -> None:
        self._layout = layout
        self._p = params
        self.names = layout.names
        n_slots = layout.n_slots
        col = run.m[:, -1].copy() if run.m.shape[1] else np.full(n_slots, np.nan)
        self._col = col.reshape(n_slots, 1)
        self._colv = self._col[:, 0]
        self._mv: Any = self._colv.data  # a memoryview of the column
        self._warmup = layout.warmup
        self.state = StreamState(run.ist, run.fst, run.ring, self._col)
        self._n_feat = len(layout.names)
        self._vals = [0.0] * 5
        self._ready: list[Any] = []
        self._pending: list[Any] = []
        for call, handle in zip(layout.talib_1m, run.handles_1m, strict=True):
            self._add(self._ready, self._pending, call, handle)
        self._groups = _group(self._ready)
        self._ctx: list[tuple[list[Any], list[Any], list[Any]]] = []
        for (_, calls), handles in zip(layout.context, run.handles_ctx, strict=True):
            ready: list[Any] = []
            pending: list[Any] = []
            for call, handle in zip(calls, handles, strict=True):
                self._add(ready, pending, call, handle)
            self._ctx.append((ready, pending, _group(ready)))
        n_tf = len(layout.context)
        self._fin_bars = np.empty((n_tf, 2, 5))
        self._fin_count = np.zeros(n_tf, dtype=np.int64)
        self._obi_slot = layout.slots["obi_5"]
        self._in_slots = [layout.slots[k] for k in _INPUT_INDEX]
        self._ctx_slots = np.array(
            [layout.slots[name] for _, calls in layout.context for c in calls for name, _ in c.outputs],
            dtype=np.int64,
        )
        self._ctx_vals = run.ctx_last.copy()
        self._defer = layout.context_talib  # context handles run between the step and derived

    def _add(self, ready: list[Any], pending: list[Any], call: Any, handle: Any) -> None:
        ins = tuple(_INPUT_INDEX[i] for i in call.inputs)
        outs = tuple((self._layout.slots[name], idx) for name, idx in call.outputs)
        # A single-output function answers with a bare number, a multi-output one with a tuple.
        single = outs[0][0] if len(abstract.Function(call.func).output_names) == 1 else -1
        (pending if isinstance(handle, PendingHandle) else ready).append((handle, ins, outs, single))

    @property
    def bars_seen(self) -> int:
        """Bars folded in since the anchor (history plus updates)."""
        return self.state.bars_seen

    def update(self, bar: Mapping[str, Any] | Any) -> np.ndarray:
        """Fold in one newly closed 1m bar; return its feature row (float64, in ``names`` order).

        ``bar`` is a mapping or an object with ``time`` (open instant, tz-aware), ``open``, ``high``,
        ``low``, ``close``, ``volume`` and optionally ``obi_5``. Bars must arrive in time order.
        """
        t_min, o, h, lo, c, v, masking = self.begin(bar)
        p = self._p
        lay = self._layout
        st = self.state
        # One native call: the custom step and, unless a context bar closed, the derived kernel.
        n_fin = kernels.step_derive(
            st.ist, st.fst, st.ring, t_min, o, h, lo, c, v, p.hurst_window, p.hurst_lags, p.zwins,
            p.zshort, p.horizons, p.rlags, p.tfs, p.kalman, p.session, lay.ffd_w, lay.cslots, self._col,
            self._fin_bars, self._fin_count, lay.ops, lay.consts, lay.warm, True, self._defer,
        )  # fmt: skip
        self.finish(n_fin, masking)
        return self._colv[: self._n_feat].copy()

    def begin(self, bar: Mapping[str, Any] | Any) -> tuple[int, float, float, float, float, float, bool]:
        """The part of :meth:`update` before the compiled step: check the bar (nothing changes when it
        is refused), write its inputs and the TA-Lib outputs into the column.

        Returns ``(t_min, o, h, l, c, v, masking)`` for the step and :meth:`finish`. A
        :class:`~tickwise.core.features.bank.FeatureBank` checks and writes many bars at once.
        """
        raw_time, t_min, o, h, lo, c, v, obi = read_bar(bar)
        if not ((o - o) + (h - h) + (lo - lo) + (c - c) + (v - v) == 0.0 and c > 0.0):
            raise DataValidationError(non_finite_message(raw_time, [o, h, lo, c, v]))
        ist = self.state.ist
        bar_index = int(ist[kernels.I_COUNT])
        if bar_index > 0 and t_min <= ist[kernels.I_LAST_TIME]:
            raise DataValidationError(not_after_message(raw_time))
        mv = self._mv
        mv[self._obi_slot] = obi
        in_slots = self._in_slots
        mv[in_slots[0]] = o
        mv[in_slots[1]] = h
        mv[in_slots[2]] = lo
        mv[in_slots[3]] = c
        mv[in_slots[4]] = v
        self.run_talib(o, h, lo, c, v)
        masking = bar_index <= self._warmup
        if masking and self._defer:
            self.restore_context()
        return t_min, o, h, lo, c, v, masking

    @property
    def has_talib(self) -> bool:
        """Whether any 1m TA-Lib handle is left (none with the default catalog: all are native)."""
        return bool(self._ready or self._pending)

    def run_talib(self, o: float, h: float, lo: float, c: float, v: float) -> None:
        """Update the 1m TA-Lib handles not replaced by compiled replicas (if any) with a checked bar."""
        if not (self._ready or self._pending):
            return
        vals = self._vals
        vals[0] = o
        vals[1] = h
        vals[2] = lo
        vals[3] = c
        vals[4] = v
        self._run_handles(self._groups, vals)
        if self._pending:
            self._update_pending(self._ready, self._pending, vals)
            self._groups = _group(self._ready)

    @property
    def has_context_talib(self) -> bool:
        """Whether any context TA-Lib handle is left (none with the default catalog: all are native)."""
        return self._defer

    def restore_context(self) -> None:
        """Context values of TA-Lib handles persist between their bars. Until every feature is warm the
        warm-up mask may blank them in the column, so restore them from the stored copy while that can
        happen (the step does not touch these slots, so restoring before it is the same). The step's
        own context indicators need none of this: it writes them from its state on every bar."""
        self._colv[self._ctx_slots] = self._ctx_vals

    def finish(self, n_fin: int, masking: bool) -> None:
        """The part of :meth:`update` after the compiled step (``n_fin`` context bars closed): the
        context TA-Lib handles and then the derived kernel, which the step skipped in that case (only
        with context calls left to TA-Lib; otherwise nothing is left to do)."""
        if not n_fin or not self._defer:
            return
        for ti in range(self._fin_count.shape[0]):
            for j in range(int(self._fin_count[ti])):
                bar_vals = self._fin_bars[ti, j].tolist()
                ready, pending, groups = self._ctx[ti]
                self._run_handles(groups, bar_vals)
                if pending:
                    self._update_pending(ready, pending, bar_vals)
                    self._ctx[ti] = (ready, pending, _group(ready))
        if masking:
            self._ctx_vals = self._colv[self._ctx_slots]
        lay = self._layout
        # The step already counted this bar: the derived mask is for the bar before the count.
        apply_derived(self._col, lay.ops, lay.consts, lay.warm, int(self.state.ist[kernels.I_COUNT]) - 1)

    def row(self) -> np.ndarray:
        """A view of the current feature row (valid until the next update)."""
        view: np.ndarray = self._colv[: self._n_feat]
        return view

    def bind(
        self, ist: np.ndarray, fst: np.ndarray, ring: np.ndarray, col: np.ndarray, fin_bars: np.ndarray,
        fin_count: np.ndarray,
    ) -> None:  # fmt: skip
        """Move the stream's compiled-step state into the given arrays (rows of a bank), by copy."""
        st = self.state
        ist[...] = st.ist
        fst[...] = st.fst
        ring[...] = st.ring
        col[...] = self._col
        fin_bars[...] = self._fin_bars
        fin_count[...] = self._fin_count
        self._col = col
        self._colv = col[:, 0]
        self._mv = self._colv.data
        self.state = StreamState(ist, fst, ring, col)
        self._fin_bars = fin_bars
        self._fin_count = fin_count

    def _run_handles(self, groups: list[Any], vals: list[float]) -> None:
        colv = self._mv  # memoryview item stores cost a fraction of ndarray.__setitem__
        for getter, single_in, singles, multis in groups:
            if single_in:
                x = getter(vals)
                for upd, slot in singles:
                    colv[slot] = upd(x)
                for upd, outs in multis:
                    res = upd(x)
                    for slot, idx in outs:
                        colv[slot] = res[idx]
            else:
                args = getter(vals)
                for upd, slot in singles:
                    colv[slot] = upd(*args)
                for upd, outs in multis:
                    res = upd(*args)
                    for slot, idx in outs:
                        colv[slot] = res[idx]

    def copy(self) -> FeatureStream:
        """An independent stream at the same bar (TA-Lib handles forked with ``Stream.copy``)."""
        twin = object.__new__(FeatureStream)
        twin.__dict__.update(self.__dict__)
        twin._col = self._col.copy()
        twin._colv = twin._col[:, 0]
        twin._mv = twin._colv.data
        st = self.state
        twin.state = StreamState(st.ist.copy(), st.fst.copy(), st.ring.copy(), twin._col)
        twin._vals = list(self._vals)
        twin._fin_bars = self._fin_bars.copy()
        twin._fin_count = self._fin_count.copy()
        twin._ctx_vals = self._ctx_vals.copy()
        twin._ready, twin._pending = _fork(self._ready, self._pending)
        twin._groups = _group(twin._ready)
        twin._ctx = []
        for ready, pending, _ in self._ctx:
            r, p = _fork(ready, pending)
            twin._ctx.append((r, p, _group(r)))
        return twin

    def update_dict(self, bar: Mapping[str, Any] | Any) -> dict[str, float]:
        """Like :meth:`update`, keyed by feature name."""
        return dict(zip(self.names, self.update(bar).tolist(), strict=True))

    def _update_pending(self, ready: list[Any], pending: list[Any], vals: list[float]) -> None:
        col = self._col
        still: list[Any] = []
        for handle, ins, outs, single in pending:
            res = handle.update(*[vals[i] for i in ins])
            res_t = res if isinstance(res, tuple) else (res,)
            for s, idx in outs:
                col[s, 0] = res_t[idx]
            opened = getattr(handle, "opened", None)
            if opened is not None:
                ready.append((opened, ins, outs, single))
            else:
                still.append((handle, ins, outs, single))
        pending[:] = still


def _fork(ready: list[Any], pending: list[Any]) -> tuple[list[Any], list[Any]]:
    return (
        [(h.copy(), ins, outs, single) for h, ins, outs, single in ready],
        [(copy.deepcopy(h), ins, outs, single) for h, ins, outs, single in pending],
    )


def _group(ready: list[Any]) -> list[Any]:
    """Bind handles for the hot loop: per input signature, a getter and (update, slot) pairs."""
    by_ins: dict[tuple[int, ...], tuple[list[Any], list[Any]]] = {}
    for handle, ins, outs, single in ready:
        singles, multis = by_ins.setdefault(ins, ([], []))
        if single >= 0:
            singles.append((handle.update, single))
        else:
            multis.append((handle.update, outs))
    return [(operator.itemgetter(*ins), len(ins) == 1, s, m) for ins, (s, m) in by_ins.items()]
