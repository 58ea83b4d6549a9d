"""The feature calculator: one definition of every feature, used by the batch trainer and the live stream.

Point-in-time rules (enforced by the engine, proven by tests/unit/features):

- A 1m candle stamped ``t`` (its open) closes at ``t + 1m``; its feature row uses that candle and
  earlier ones only.
- Context timeframes (5/15/60m by default) are aggregated inside the calculator from the 1m input,
  aligned to the 09:15 IST session open (the last 60m bar, 15:15-15:30, is partial). A context bar is
  usable from the 1m candle that closes it: the 1m candle whose close equals the bucket's end, or, if that
  minute is missing, the first later candle. So the 15m features of the 1m candle stamped 10:07 use the
  15m bar 09:45-10:00 (closed by the 09:59 candle), never the forming 10:00-10:15 bar.
- Every feature declares a warm-up (bars from the anchor); it is NaN before that bar.
- Recursive and cumulative features (EMA, RSI, ATR, ADX, OBV, Kalman, ...) are functions of the bars
  from the anchor = the instrument's first stored candle; both paths start there.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from tickwise.core.features.engine import Inputs, KernelParams, SlotBuffer, batch
from tickwise.core.features.layout import Layout, build_layout
from tickwise.core.features.spec import FeatureSpec
from tickwise.core.features.stream import FeatureStream, StreamState
from tickwise.domain.errors import DataValidationError

__all__ = ["FeatureCalculator", "FeatureSpec", "FeatureStream", "SlotBuffer", "StreamState"]

_REQUIRED = ("time", "open", "high", "low", "close", "volume")


def _inputs(candles: pd.DataFrame) -> Inputs:
    missing = [c for c in _REQUIRED if c not in candles.columns]
    if missing:
        raise DataValidationError(f"candles lack column(s) {missing}; need {list(_REQUIRED)}")
    time = candles["time"]
    if not isinstance(time.dtype, pd.DatetimeTZDtype):
        raise DataValidationError(f"candles.time must be tz-aware datetimes, got dtype {time.dtype}")
    t_ns = time.dt.tz_convert("UTC").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    t_min = t_ns // 60_000_000_000
    if len(t_min) and (t_ns % 60_000_000_000).any():
        raise DataValidationError("candles.time must fall on whole minutes (1m candle open instants)")
    if len(t_min) > 1 and not (np.diff(t_min) > 0).all():
        raise DataValidationError("candles.time must be strictly increasing (one instrument, sorted, unique)")

    def col(name: str) -> np.ndarray:
        return np.ascontiguousarray(candles[name].to_numpy(dtype=np.float64, na_value=np.nan))

    o, h, lo, c, v = col("open"), col("high"), col("low"), col("close"), col("volume")
    bad = ~(np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & np.isfinite(v))
    if bad.any():
        first = int(np.argmax(bad))
        raise DataValidationError(f"candle {first} ({time.iloc[first]}) has a non-finite price or volume")
    if (c <= 0).any():
        raise DataValidationError("candles hold a non-positive close (log prices need close > 0)")
    obi = col("obi_5") if "obi_5" in candles.columns else np.full(len(c), np.nan)
    return Inputs(np.ascontiguousarray(t_min), o, h, lo, c, v, obi)


class FeatureCalculator:
    """Compute the feature set of one :class:`FeatureSpec` in batch or live.

    >>> calc = FeatureCalculator()
    >>> frame = calc.compute(candles)            # doctest: +SKIP
    >>> stream = calc.open_stream(candles)       # doctest: +SKIP
    >>> row = stream.update(next_closed_bar)     # doctest: +SKIP
    """

    def __init__(self, spec: FeatureSpec | None = None, *, layout: Layout | None = None) -> None:
        """``layout``: one built by :func:`build_layout` from ``spec`` with another TA-Lib catalog
        (calls without a compiled replica run through TA-Lib; for tests and research)."""
        self.spec = spec if spec is not None else FeatureSpec()
        if layout is not None and layout.spec != self.spec:
            raise ValueError("the layout was built for another FeatureSpec")
        self._layout: Layout = layout if layout is not None else build_layout(self.spec)
        self._params = KernelParams.of(self._layout)

    @property
    def names(self) -> list[str]:
        """Feature names, in output column order."""
        return list(self._layout.names)

    @property
    def feature_set(self) -> str:
        """Stable id of (engine version, spec, names, TA-Lib version), e.g. ``fs1-1a2b3c4d``."""
        return self._layout.feature_set

    @property
    def warmup(self) -> int:
        """Bars from the anchor before every feature is warm."""
        return self._layout.warmup

    @cached_property
    def warmups(self) -> dict[str, int]:
        """Per feature: the first bar index (from the anchor) at which it may be non-NaN."""
        return {n: int(w) for n, w in zip(self._layout.names, self._layout.warm, strict=True)}

    @property
    def layout(self) -> Layout:
        return self._layout

    def compute(self, candles: pd.DataFrame, buffer: SlotBuffer | None = None) -> pd.DataFrame:
        """Return ``time`` plus one float64 column per feature, one row per input candle.

        ``candles``: ONE instrument's 1m candles from its anchor (first stored candle), sorted by
        ``time`` (tz-aware open instant), columns open, high, low, close, volume, optionally oi and
        obi_5 (order-book imbalance; NaN when absent).

        ``buffer`` (a :class:`SlotBuffer` reused instrument after instrument): the frame's columns
        then live in the buffer and are valid only until its next use: write or copy the frame
        before computing the next instrument. Values are identical with or without it.
        """
        x = _inputs(candles)
        run = batch(self._layout, self._params, x, buffer=buffer)
        n_feat = len(self._layout.names)
        frame = pd.DataFrame(run.m[:n_feat].T, columns=self.names, copy=False)
        frame.insert(0, "time", candles["time"].array)
        return frame

    def open_stream(self, history: pd.DataFrame) -> FeatureStream:
        """Open a live stream on ``history`` (the full 1m history from the anchor, as for compute).

        The compiled step is folded over the whole history (custom kernels, TA-Lib replicas, context
        bars and their indicators); TA-Lib handles, for calls without a replica, are opened on it
        (``open_and_fill``); each later :meth:`FeatureStream.update` yields exactly the row ``compute`` would give.
        """
        x = _inputs(history)
        run = batch(self._layout, self._params, x, open_handles=True)
        return FeatureStream(self._layout, self._params, run)

    def describe(self) -> dict[str, Any]:
        """The spec, feature_set id, names and warm-ups (for model bundles and docs)."""
        return {
            "feature_set": self.feature_set,
            "spec": self.spec.to_dict(),
            "names": self.names,
            "warmup": self.warmup,
            "warmups": self.warmups,
        }
