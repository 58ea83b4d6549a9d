"""Features of one instrument's history computed chunk after chunk, bit-identical to one ``compute``.

Recursive and cumulative features depend on the anchor (``docs/features.md``, "Anchor"), so a chunk
cannot start from a bounded warm-up: OBV and AD are sums from the anchor and never forget it; the
EMAs, Wilder averages and sliding moments carry rounding from it. A chunk therefore continues from a
:class:`FeatureCarry`, the exact state the previous chunk ended in:

- the compiled step's state (``ist``, ``fst``, ``ring``): the custom kernels, the native TA-Lib
  replicas and the context-bar aggregation continue as if the fold had never stopped;
- the 1m inputs (open, high, low, close, volume; 40 bytes a bar) from the anchor: TA-Lib's stream
  handles cannot be pickled (they live in the C library), so each chunk re-runs TA-Lib's Function API
  over the inputs from the anchor to its own last bar and keeps its own rows. A TA-Lib function's
  output at a bar depends only on the bars from the start of the call up to it, so these rows are the
  very values of the single call over the whole history;
- the finished context bars (5/15/60m) and the 1m row each closed at, for the context calls left to
  TA-Lib (none with the default catalog: the context indicators are in the step's state);
- the last ``len(ffd_w) - 1`` log closes: FFD is a finite window, summed in the same order per output.

The derived features and the warm-up mask take the chunk's bar offset from the anchor. The slot matrix,
the big allocation, is the chunk's only; what grows with the history is the carried inputs and the
context bars (about 45 bytes per 1m bar), and TA-Lib's time: each chunk re-reads the history before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tickwise.core.features import kernels
from tickwise.core.features.calculator import FeatureCalculator, _inputs
from tickwise.core.features.derived import apply_derived
from tickwise.core.features.engine import KernelParams
from tickwise.core.features.ffd import ffd_batch
from tickwise.core.features.layout import INPUT_SLOTS, new_state
from tickwise.core.features.talib_catalog import talib
from tickwise.domain.errors import DataValidationError

__all__ = ["ChunkedFeatures", "FeatureCarry"]


@dataclass(frozen=True)
class FeatureCarry:
    """Where one instrument's feature computation stands after some bars (picklable: numpy only)."""

    bars: int  # bars folded since the anchor
    ist: np.ndarray
    fst: np.ndarray
    ring: np.ndarray
    inputs: np.ndarray  # (5, bars): open, high, low, close, volume from the anchor
    log_tail: np.ndarray  # the last min(bars, len(ffd_w) - 1) log closes
    ctx_bars: tuple[np.ndarray, ...]  # per context timeframe: (k, 5) finished bars from the anchor
    ctx_rows: tuple[np.ndarray, ...]  # per context timeframe: (k,) 1m row (from the anchor) each closed at

    @property
    def nbytes(self) -> int:
        arrays = (self.ist, self.fst, self.ring, self.inputs, self.log_tail, *self.ctx_bars, *self.ctx_rows)
        return sum(int(a.nbytes) for a in arrays)


class ChunkedFeatures:
    """``compute`` of one :class:`FeatureCalculator`, fed one chunk of consecutive bars at a time.

    >>> chunked = ChunkedFeatures(calc)
    >>> carry = chunked.start()
    >>> frame, carry = chunked.compute(first_chunk, carry)   # doctest: +SKIP
    >>> frame, carry = chunked.compute(next_chunk, carry)    # doctest: +SKIP

    The concatenated frames equal ``calc.compute`` of all the chunks together, bit for bit.
    """

    def __init__(self, calculator: FeatureCalculator) -> None:
        self._calc = calculator
        self._layout = calculator.layout
        self._params = KernelParams.of(self._layout)

    def start(self) -> FeatureCarry:
        """The carry at the anchor: nothing seen yet."""
        ist, fst, ring = new_state(self._layout)
        n_tf = len(self._layout.context)
        return FeatureCarry(
            bars=0,
            ist=ist,
            fst=fst,
            ring=ring,
            inputs=np.empty((len(INPUT_SLOTS), 0)),
            log_tail=np.empty(0),
            ctx_bars=tuple(np.empty((0, 5)) for _ in range(n_tf)),
            ctx_rows=tuple(np.empty(0, dtype=np.int64) for _ in range(n_tf)),
        )

    def compute(self, candles: pd.DataFrame, carry: FeatureCarry) -> tuple[pd.DataFrame, FeatureCarry]:
        """The feature rows of ``candles`` (the bars right after ``carry``'s), and the carry after them.

        ``carry`` is not modified, so a chunk can be recomputed from the same carry.
        """
        layout = self._layout
        p = self._params
        x = _inputs(candles)
        n = len(x)
        if n and carry.bars and x.t_min[0] <= carry.ist[kernels.I_LAST_TIME]:
            raise DataValidationError("a chunk's first candle must be after the previous chunk's last")
        base = carry.bars
        sl = layout.slots
        m = np.empty((layout.n_slots, n))
        for name in (*INPUT_SLOTS, "obi_5"):
            m[sl[name]] = x.column(name)
        inputs = np.concatenate([carry.inputs, np.stack([x.column(s) for s in INPUT_SLOTS])], axis=1)
        history = dict(zip(INPUT_SLOTS, inputs, strict=True))

        for call in layout.talib_1m:
            outs = _outputs(getattr(talib, call.func)(*[history[i] for i in call.inputs], **call.params))
            for name, idx in call.outputs:
                m[sl[name]] = outs[idx][base:] if len(outs[idx]) == base + n else np.nan

        ist, fst, ring = carry.ist.copy(), carry.fst.copy(), carry.ring.copy()
        n_tf = len(layout.context)
        htf_bars = np.empty((n_tf, n + 1, 5))
        htf_rows = np.empty((n_tf, n + 1), dtype=np.int64)
        htf_n = np.zeros(n_tf, dtype=np.int64)
        kernels.fold(
            ist, fst, ring, x.t_min, x.open, x.high, x.low, x.close, x.volume, p.hurst_window, p.hurst_lags,
            p.zwins, p.zshort, p.horizons, p.rlags, p.tfs, p.kalman, p.session, layout.ffd_w,
            layout.cslots, m, htf_bars, htf_rows, htf_n, *kernels.fold_scratch(n_tf),
        )  # fmt: skip

        logclose = np.concatenate([carry.log_tail, m[sl["logclose"]]])
        ffd = np.empty_like(logclose)
        # The tail starts at the anchor (early chunks) or holds a full window: either way every output
        # the chunk keeps sums exactly the terms, in the order, of the single pass.
        ffd_batch(logclose, layout.ffd_w, ffd)
        m[layout.cslots[kernels.K_FFD]] = ffd[len(carry.log_tail) :]

        rows = base + np.arange(n)
        ctx_bars, ctx_rows = [], []
        for ti, (_, calls) in enumerate(layout.context):
            if not calls:  # computed by the fold, from its carried state: no bars to keep
                ctx_bars.append(carry.ctx_bars[ti])
                ctx_rows.append(carry.ctx_rows[ti])
                continue
            k_new = int(htf_n[ti])
            bars = np.concatenate([carry.ctx_bars[ti], htf_bars[ti, :k_new]])
            closed = np.concatenate([carry.ctx_rows[ti], htf_rows[ti, :k_new] + base])
            ctx_bars.append(bars)
            ctx_rows.append(closed)
            k = len(bars)
            cols = {name: np.ascontiguousarray(bars[:, i]) for i, name in enumerate(INPUT_SLOTS)}
            last = np.searchsorted(closed, rows, side="right") - 1
            for call in calls:
                outs = (
                    _outputs(getattr(talib, call.func)(*[cols[i] for i in call.inputs], **call.params))
                    if k
                    else []
                )
                for name, idx in call.outputs:
                    row = m[sl[name]]
                    if k:
                        series = outs[idx] if len(outs[idx]) == k else np.full(k, np.nan)
                        np.take(series, last, out=row, mode="clip")
                        row[last < 0] = np.nan
                    else:
                        row[:] = np.nan

        apply_derived(m, layout.ops, layout.consts, layout.warm, base)
        keep = min(base + n, len(layout.ffd_w) - 1)
        after = FeatureCarry(
            bars=base + n,
            ist=ist,
            fst=fst,
            ring=ring,
            inputs=inputs,
            log_tail=logclose[len(logclose) - keep :].copy(),
            ctx_bars=tuple(ctx_bars),
            ctx_rows=tuple(ctx_rows),
        )
        n_feat = len(layout.names)
        frame = pd.DataFrame(m[:n_feat].T, columns=self._calc.names, copy=False)
        frame.insert(0, "time", candles["time"].array)
        return frame, after


def _outputs(out: object) -> list[np.ndarray]:
    if isinstance(out, tuple):
        return [np.asarray(o) for o in out]
    return [np.asarray(out)]
