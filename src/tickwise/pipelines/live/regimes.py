"""Live regime columns: each instrument's regime-layer state (``core.regime``), carried bar by bar.

:class:`LiveRegimes` extends the feature rows the signal step scores with the regime columns, stepping
each instrument's recursion by its bar (the recursion batch scoring runs over the day's bars, so the
values are bit-identical). :meth:`LiveRegimes.prime` rebuilds an instrument's state when the engine
opens it on stored history or rewinds it: lazily, because the recursion restarts at each session's open,
the history's features are computed (one batch pass) only if the instrument's next bar is in the same
session as its last stored bar (a restart or a rewind mid-session), never for a start before the open.

Until an instrument's first bar decides that, its history waits as :class:`StoredBars` (about 14 bytes a
bar, every value given back bit for bit), not as the frame it was given: the candle repository's frame is
about 200 bytes a bar (300 KB for 1,500 bars), and an instrument that does not trade early in the session
kept it for as long (docs/benchmarks.md, "Live memory per shard (issue 14, sixth session)").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.regime import RegimeLayer, RegimeState, session_day
from tickwise.pipelines.live.stored_bars import StoredBars


class LiveRegimes:
    """The regime columns of live feature rows laid out as ``names`` (the calculator's order)."""

    def __init__(self, layer: RegimeLayer, names: Sequence[str]) -> None:
        self.layer = layer
        self._inputs = np.array([list(names).index(n) for n in layer.inputs], dtype=np.intp)
        self._states: dict[int, RegimeState] = {}
        self._pending: dict[int, tuple[FeatureCalculator, StoredBars]] = {}

    def prime(self, token: int, calculator: FeatureCalculator, history: pd.DataFrame) -> None:
        """``token``'s state is the one after the last bar of its 1m ``history`` (from the anchor)."""
        self._states.pop(token, None)
        self._pending.pop(token, None)
        if len(history):
            self._pending[token] = (calculator, StoredBars.of(history))

    def _state(self, token: int, bar_time: datetime) -> RegimeState:
        state = self._states.get(token)
        if state is not None:
            return state
        pending = self._pending.pop(token, None)
        if pending is not None:
            calculator, stored = pending
            last = stored.last_time()
            if last is not None and session_day(last) == session_day(bar_time):
                rows = calculator.compute(stored.frame())
                inputs = rows.loc[:, list(self.layer.inputs)].to_numpy(dtype=np.float64)
                state = self.layer.replay(pd.DatetimeIndex(rows["time"]), inputs)
        if state is None:
            state = self.layer.new_state()
        self._states[token] = state
        return state

    def extend(self, tokens: Sequence[int], bar_times: Sequence[datetime], rows: np.ndarray) -> np.ndarray:
        """``rows`` (one per bar, in order) extended by the regime columns; each instrument's state is
        stepped by its bar."""
        width = rows.shape[1]
        out = np.empty((rows.shape[0], width + len(self.layer.columns)), dtype=np.float64)
        out[:, :width] = rows
        for i, token in enumerate(tokens):
            state = self._state(token, bar_times[i])
            day = np.array([session_day(bar_times[i])], dtype=np.int64)
            out[i, width:] = self.layer.step_days(state, day, rows[i, self._inputs])[0]
        return out
