"""Both sides' labels of one instrument's history, chunk by chunk, equal to ``label_both_sides`` of the
whole history (every column, bit for bit).

What ties a label to the whole history, and how a chunk keeps it:

- the ATR at t0 runs from the anchor (TA-Lib's Wilder average): it is computed once over the history's
  high, low and close (8 bytes a bar) and each chunk takes its slice;
- the barrier window needs ``horizon`` bars after t0: a chunk's frame runs ``horizon + 1`` bars past
  its last event, so censoring, session crossings and missing bars are decided on the same bars;
- the warm-up drop (``t0 < warmup_bars``) counts from the anchor: a chunk's spec shifts it by the
  chunk's first bar;
- the sample weight (uniqueness x return attribution) is normalised over the instrument's whole event
  set: a first pass collects every kept event's (t0, t1) bar index (16 bytes an event), the weights are
  computed once over them exactly as ``label_events`` does, and a second pass yields each chunk's rows
  with its slice of them.

What grows with the history is those few arrays; the label frames are a chunk's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from itertools import pairwise

import numpy as np
import pandas as pd
import talib

from tickwise.core.labels.events import label_events
from tickwise.core.labels.spec import LabelSpec
from tickwise.core.sample_weights import event_weights
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.timeframe import Timeframe

__all__ = ["label_chunks"]

_SIDES = (1, -1)


def label_chunks(
    candles: pd.DataFrame,
    starts: Sequence[int],
    spec: LabelSpec,
    timeframe: Timeframe,
    calendar: SessionCalendar | None,
    *,
    instrument_token: int | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield, per chunk, the labels (long rows, then short) of the events whose t0 is in the chunk.

    ``candles``: the instrument's whole history (``time``, ``open``, ``high``, ``low``, ``close``) from
    its anchor; ``starts``: the row where each chunk begins (the first is 0, increasing).
    """
    n = len(candles)
    if not n:
        return
    if not starts or starts[0] != 0 or any(b <= a for a, b in pairwise(starts)):
        raise ValueError("chunk starts must begin at 0 and increase")
    high, low, close = (candles[c].to_numpy(dtype=np.float64) for c in ("high", "low", "close"))
    atr = talib.ATR(high, low, close, timeperiod=spec.atr_period)
    times = pd.DatetimeIndex(candles["time"]).as_unit("ns").asi8
    bounds = [*starts, n]

    def chunk(k: int, side: int) -> tuple[pd.DataFrame, int]:
        s, e = bounds[k], bounds[k + 1]
        stop = min(n, e + spec.horizon + 1)
        local = replace(spec, warmup_bars=max(0, spec.warmup_bars - s))
        frame, _ = label_events(
            candles.iloc[s:stop],
            local,
            side,
            timeframe,
            calendar,
            instrument_token=instrument_token,
            atr=atr[s:stop],
        )
        if e < n:
            frame = frame[pd.DatetimeIndex(frame["time"]).as_unit("ns").asi8 < times[e]]
        return frame.reset_index(drop=True), s

    # Pass 1: every kept event's bar indices, per side, in t0 order (as label_events keeps them).
    t0s: dict[int, list[np.ndarray]] = {side: [] for side in _SIDES}
    t1s: dict[int, list[np.ndarray]] = {side: [] for side in _SIDES}
    for k in range(len(starts)):
        for side in _SIDES:
            frame, _ = chunk(k, side)
            t0s[side].append(np.searchsorted(times, pd.DatetimeIndex(frame["time"]).as_unit("ns").asi8))
            t1s[side].append(np.searchsorted(times, pd.DatetimeIndex(frame["t1"]).as_unit("ns").asi8))
    weights = {side: _weights(np.concatenate(t0s[side]), np.concatenate(t1s[side]), close) for side in _SIDES}
    # Pass 2: the chunks again, each with its slice of the whole history's weights.
    used = dict.fromkeys(_SIDES, 0)
    for k in range(len(starts)):
        frames = []
        for side in _SIDES:
            frame, _ = chunk(k, side)
            m = len(frame)
            frame["weight"] = weights[side][used[side] : used[side] + m]
            used[side] += m
            frames.append(frame)
        yield pd.concat(frames, ignore_index=True)


def _weights(t0: np.ndarray, t1: np.ndarray, close: np.ndarray) -> np.ndarray:
    return event_weights(t0, t1, close) if len(t0) else np.empty(0)
