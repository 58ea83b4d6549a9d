"""The batch engine: fill the slot matrix for a whole candle history in one pass per producer.

Producers, in order: input copies; TA-Lib on 1m bars (the calls without a compiled replica: none with
the default catalog); the custom fold (:func:`kernels.fold`, which also aggregates the session-aligned
context bars and computes their indicators, held from the row each context bar closed on);
vectorised FFD; TA-Lib on each context series for the context calls without a replica (none by
default), forward-filled onto the 1m rows likewise; derived features and the warm-up mask.
With ``open_handles`` the TA-Lib calls go through ``talib.stream.X.open_and_fill`` so the live handles
come out of the same pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from talib import stream as ta_stream

from tickwise.core.features import kernels
from tickwise.core.features.derived import apply_derived
from tickwise.core.features.ffd import ffd_batch
from tickwise.core.features.layout import Layout, new_state
from tickwise.core.features.talib_catalog import TalibCall, talib


@dataclass(frozen=True)
class KernelParams:
    """The spec as the numpy arrays :func:`kernels.step` takes."""

    hurst_window: int
    hurst_lags: np.ndarray
    zwins: np.ndarray
    zshort: int
    horizons: np.ndarray
    rlags: np.ndarray
    tfs: np.ndarray
    kalman: np.ndarray
    session: np.ndarray

    @classmethod
    def of(cls, layout: Layout) -> KernelParams:
        s = layout.spec
        i64 = np.int64
        return cls(
            hurst_window=s.hurst_window,
            hurst_lags=np.array(s.hurst_lags, dtype=i64),
            zwins=np.array(s.zscore_windows, dtype=i64),
            zshort=s.zscore_short,
            horizons=np.array(s.return_horizons, dtype=i64),
            rlags=np.array(s.return_lags, dtype=i64),
            tfs=np.array(s.timeframes, dtype=i64),
            kalman=np.array([s.kalman_q_level, s.kalman_q_slope, s.kalman_r]),
            session=np.array([s.session_open_minute, s.session_close_minute], dtype=i64),
        )


@dataclass
class Inputs:
    """Validated candle columns: open-time epoch minutes and float64 prices."""

    t_min: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    obi_5: np.ndarray

    def __len__(self) -> int:
        return int(self.t_min.shape[0])

    def column(self, name: str) -> np.ndarray:
        arr: np.ndarray = getattr(self, name)
        return arr


@dataclass
class BatchRun:
    """The slot matrix plus, when requested, everything a live stream continues from."""

    m: np.ndarray
    ist: np.ndarray
    fst: np.ndarray
    ring: np.ndarray
    handles_1m: list[Any] = field(default_factory=list)
    handles_ctx: list[list[Any]] = field(default_factory=list)
    ctx_last: np.ndarray = field(default_factory=lambda: np.empty(0))


_LOOKBACKS: dict[tuple[str, str], int] = {}


def _lookback(call: TalibCall) -> int:
    key = (call.func, repr(sorted(call.params.items())))
    found = _LOOKBACKS.get(key)
    if found is None:
        found = _LOOKBACKS[key] = call.lookback()
    return found


def _call(call: TalibCall, inputs: list[np.ndarray], open_handle: bool) -> tuple[list[np.ndarray], Any]:
    """Run one TA-Lib call; with ``open_handle`` also return its stream handle (or a pending one)."""
    if open_handle:
        try:
            # TA-Lib answers a history of at most `lookback` bars with TA_BAD_PARAM for some functions
            # (ATR on one context bar), not InsufficientHistory: treat both as "not yet".
            if len(inputs[0]) <= _lookback(call):
                raise talib.InsufficientHistory
            handle, out = getattr(ta_stream, call.func).open_and_fill(*inputs, **call.params)
        except talib.InsufficientHistory:
            handle = PendingHandle(call, inputs)
            out = getattr(talib, call.func)(*inputs, **call.params) if len(inputs[0]) else None
    else:
        handle = None
        out = getattr(talib, call.func)(*inputs, **call.params)
    if out is None:
        outs = [np.full(0, np.nan) for _ in range(max(i for _, i in call.outputs) + 1)]
    elif isinstance(out, tuple):
        outs = list(out)
    else:
        outs = [out]
    return outs, handle


class PendingHandle:
    """A stream handle that cannot open yet: it keeps the history and opens once enough bars exist."""

    def __init__(self, call: TalibCall, inputs: list[np.ndarray]) -> None:
        self.call = call
        self.history: list[list[float]] = [list(map(float, arr)) for arr in inputs]
        self.need = call.lookback() + 1
        self.n_out = max(i for _, i in call.outputs) + 1

    def update(self, *values: float) -> Any:
        """Append one bar; return the opened handle's value, or NaN(s) while still too short."""
        for hist, v in zip(self.history, values, strict=True):
            hist.append(v)
        if len(self.history[0]) >= self.need:
            try:
                self.opened = getattr(ta_stream, self.call.func)(
                    *[np.asarray(h, dtype=np.float64) for h in self.history], **self.call.params
                )
            except talib.InsufficientHistory:
                pass
            else:
                return self.opened.value
        return (np.nan,) * self.n_out if self.n_out > 1 else np.nan


class SlotBuffer:
    """One reusable block of memory for slot matrices, grown to the largest history seen.

    A fresh ``(n_slots, n)`` matrix per instrument is fresh memory each time (page faults on first
    touch: ~150 float64 rows per bar), which made the first batch run in a process several times
    slower than a warm one. Handing the same buffer to instrument after instrument touches the pages
    once. A matrix taken from the buffer is valid until the buffer's next use.
    """

    def __init__(self) -> None:
        self._flat = np.empty(0)

    def matrix(self, rows: int, cols: int) -> np.ndarray:
        """A C-contiguous ``(rows, cols)`` float64 view of the buffer (contents undefined)."""
        need = rows * cols
        if self._flat.shape[0] < need:
            self._flat = np.empty(max(need, self._flat.shape[0] * 5 // 4))
        view: np.ndarray = self._flat[:need].reshape(rows, cols)
        return view

    @property
    def nbytes(self) -> int:
        return int(self._flat.nbytes)


def batch(
    layout: Layout,
    params: KernelParams,
    x: Inputs,
    open_handles: bool = False,
    buffer: SlotBuffer | None = None,
) -> BatchRun:
    """Fill the slot matrix for the whole history ``x`` (rows = bars from the anchor).

    With ``buffer`` the matrix lives in it (valid until the buffer's next use) instead of fresh memory.
    """
    n = len(x)
    m = np.empty((layout.n_slots, n)) if buffer is None else buffer.matrix(layout.n_slots, n)
    sl = layout.slots
    for name in ("open", "high", "low", "close", "volume", "obi_5"):
        m[sl[name]] = x.column(name)

    run_handles: list[Any] = []
    for call in layout.talib_1m:
        outs, handle = _call(call, [x.column(i) for i in call.inputs], open_handles)
        for name, idx in call.outputs:
            m[sl[name]] = outs[idx] if len(outs[idx]) == n else np.nan
        run_handles.append(handle)

    ist, fst, ring = new_state(layout)
    n_tf = len(layout.context)
    htf_bars = np.empty((n_tf, n + 1, 5))
    htf_rows = np.empty((n_tf, n + 1), dtype=np.int64)
    htf_n = np.zeros(n_tf, dtype=np.int64)
    p = params
    # The fold writes each custom output straight into its row of the slot matrix: ~25 sequential
    # write streams cost no more than a bar-major buffer, and skip its 200 MB and the transposing copy.
    kernels.fold(
        ist, fst, ring, x.t_min, x.open, x.high, x.low, x.close, x.volume, p.hurst_window, p.hurst_lags,
        p.zwins, p.zshort, p.horizons, p.rlags, p.tfs, p.kalman, p.session, layout.ffd_w,
        layout.cslots, m, htf_bars, htf_rows, htf_n, *kernels.fold_scratch(n_tf),
    )  # fmt: skip
    ffd_slot = layout.cslots[kernels.K_FFD]
    ffd_batch(m[sl["logclose"]], layout.ffd_w, m[ffd_slot])

    ctx_handles: list[list[Any]] = []
    rows = np.arange(n)
    for ti, (_, calls) in enumerate(layout.context):
        if not calls:  # every indicator of this timeframe ran in the fold
            ctx_handles.append([])
            continue
        k = int(htf_n[ti])
        bars = htf_bars[ti, :k]
        cols = {"open": bars[:, 0], "high": bars[:, 1], "low": bars[:, 2], "close": bars[:, 3]}
        cols["volume"] = bars[:, 4]
        # Context bar j is usable from the 1m row where it closed: index of the last closed bar per row.
        last = np.searchsorted(htf_rows[ti, :k], rows, side="right") - 1
        handles: list[Any] = []
        for call in calls:
            ins = [np.ascontiguousarray(cols[i]) for i in call.inputs]
            outs, handle = _call(call, ins, open_handles) if k else ([], PendingHandle(call, ins))
            for name, idx in call.outputs:
                row = m[sl[name]]
                if k:
                    series = outs[idx] if len(outs[idx]) == k else np.full(k, np.nan)
                    np.take(series, last, out=row, mode="clip")
                    row[last < 0] = np.nan
                else:
                    row[:] = np.nan
            handles.append(handle)
        ctx_handles.append(handles)

    ctx_slots = [sl[name] for _, calls in layout.context for c in calls for name, _ in c.outputs]
    ctx_last = m[ctx_slots, -1].copy() if n else np.full(len(ctx_slots), np.nan)
    apply_derived(m, layout.ops, layout.consts, layout.warm, 0)
    return BatchRun(m, ist, fst, ring, run_handles, ctx_handles, ctx_last)
