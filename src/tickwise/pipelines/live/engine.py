"""The per-bar live path: closed 1m candle -> feature stream -> predictor -> signal, plus roll-ups.

One :class:`InstrumentState` per instrument holds the feature stream opened on the instrument's stored
1m history from its anchor (exactly the candles the batch feature step reads), so every live feature row
equals the batch row of the same bar, and the signal step runs the same
:class:`~tickwise.core.signal_model.SignalModel` scoring as batch prediction (see :class:`SignalStep`). The hot path is plain Python
and NumPy on one row (no pandas per bar).

Corrections: a bar that turns out wrong after it was processed (late ticks, a frame lost without a
disconnect) is corrected by :meth:`LiveEngine.rewind`: the stream is re-opened on the history plus the
session's bars before the wrong one, and the corrected bars are replayed; candles, features and signals
are upserts, so the stored rows end up exactly as if the bars had been right the first time.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
import pandas as pd
from loguru import logger

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.features.stream import FeatureStream
from tickwise.core.predictor import Predictor
from tickwise.core.signal_model import SignalModel
from tickwise.core.signals import SignalGenerator
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.candle import Candle
from tickwise.domain.errors import DataValidationError
from tickwise.domain.signal import Signal
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

ROLLUPS = (Timeframe.M5, Timeframe.M15, Timeframe.M60)
_BAR_KEYS = ("time", "open", "high", "low", "close", "volume", "oi", "obi_5")


class SignalStep:
    """A feature row (calculator column order) -> :class:`Signal`, or None while not ready.

    Scoring is :meth:`SignalModel.score` on a one-bar batch: the very step batch prediction runs over
    all bars (readiness rule, predictor, signal generator), so live and batch signals are identical.
    """

    def __init__(
        self,
        predictor: Predictor,
        generator: SignalGenerator,
        names: Sequence[str],
        timeframe: Timeframe = Timeframe.M1,
        mode: str = "live",
    ) -> None:
        self.model = SignalModel(predictor, generator)
        self.predictor = predictor
        self.timeframe = timeframe
        self.mode = mode
        self._model_idx, self._regime_idx = self.model.column_indices(names)

    def __call__(self, token: int, bar_time: datetime, row: np.ndarray) -> tuple[Signal, float] | None:
        """The signal of the bar opened at ``bar_time`` and its position size, or None (not ready)."""
        regime = {n: row[i : i + 1] for n, i in self._regime_idx.items()}
        scored = self.model.score(row[self._model_idx], regime)
        if not scored.ready[0]:
            return None
        batch = scored.batch
        signal = Signal(
            instrument_token=token,
            timeframe=self.timeframe,
            time=bar_time,
            available_at=bar_time + self.timeframe.delta,
            model_version=self.predictor.version,
            direction=int(batch.direction[0]),
            confidence=float(batch.confidence[0]),
            mode=self.mode,
            feature_set=self.predictor.feature_set,
            latency_ms=None,
            size=float(batch.size[0]),
        )
        return signal, float(batch.size[0])


@dataclass(slots=True)
class PendingSignal:
    """A signal waiting to be written, with the real (wall) instant its bar was closed."""

    signal: Signal
    closed_at: float  # unix seconds (real time)


@dataclass
class InstrumentState:
    token: int
    history: pd.DataFrame  # stored 1m candles from the anchor up to the session start
    stream: FeatureStream | None
    last_time: datetime | None  # open instant of the newest bar folded in
    session: list[dict[str, Any]] = field(default_factory=list)  # bars processed since start

    def frame_before(self, t: datetime) -> pd.DataFrame:
        """History plus the session bars opened before ``t`` (what the stream must be opened on)."""
        bars = [b for b in self.session if b["time"] < t]
        hist = self.history
        if len(hist):
            hist = hist[hist["time"] < pd.Timestamp(t)]
            hist = hist.assign(time=pd.to_datetime(hist["time"], utc=True))
        if not bars:
            return hist.reset_index(drop=True)
        cols = list(_BAR_KEYS) if hist.empty else [c for c in _BAR_KEYS if c in hist.columns]
        records = ([] if hist.empty else hist[cols].to_dict("records")) + [
            {c: b.get(c) for c in cols} for b in bars
        ]
        frame = pd.DataFrame.from_records(records, columns=cols)
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        for col in ("open", "high", "low", "close", "volume", "obi_5"):
            if col in frame.columns:
                frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
        return frame


def candle_bar(candle: Candle, obi_5: float = math.nan) -> dict[str, Any]:
    return {
        "time": candle.time,
        "open": candle.open,
        "high": candle.high,
        "low": candle.low,
        "close": candle.close,
        "volume": candle.volume,
        "oi": candle.oi,
        "obi_5": obi_5,
    }


def bar_candle(token: int, bar: dict[str, Any], timeframe: Timeframe = Timeframe.M1) -> Candle:
    return Candle(
        instrument_token=token,
        timeframe=timeframe,
        time=bar["time"],
        open=bar["open"],
        high=bar["high"],
        low=bar["low"],
        close=bar["close"],
        volume=int(bar["volume"]),
        oi=bar["oi"],
        source="live",
    )


def same_bar(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[k] == b[k] for k in ("time", "open", "high", "low", "close", "volume"))


class LiveEngine:
    """Processes closed 1m bars in time order per instrument and queues every output row."""

    def __init__(
        self,
        calculator: FeatureCalculator,
        step: SignalStep,
        put: Callable[[str, Sequence[Any]], None],
        *,
        hooks: Any = None,
        calendar: SessionCalendar = NSE,
        rollups: Sequence[Timeframe] = ROLLUPS,
        on_signal: Callable[[Signal, float], None] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.calculator = calculator
        self.step = step
        self.put = put
        self.hooks = hooks
        self.calendar = calendar
        self.rollups = tuple(rollups)
        self.on_signal = on_signal
        self.wall = wall
        self.states: dict[int, InstrumentState] = {}
        self.bars = 0
        self.signals = 0
        self.duplicates = 0
        self.rewinds = 0
        self.errors = 0

    # -- set-up ----------------------------------------------------------------------------------
    def open_instrument(self, token: int, history: pd.DataFrame) -> InstrumentState:
        """Open the stream of ``token`` on its stored 1m history (from the anchor, oldest first)."""
        history = history.reset_index(drop=True)
        stream = self.calculator.open_stream(history) if len(history) else None
        last = history["time"].iloc[-1].to_pydatetime() if len(history) else None
        state = InstrumentState(token, history, stream, last)
        self.states[token] = state
        return state

    # -- the hot path ----------------------------------------------------------------------------
    def process(self, token: int, bar: dict[str, Any], closed_at: float | None = None) -> Signal | None:
        """Fold one closed 1m bar of ``token`` in; queue candle, roll-ups, features and signal.

        A bar at or before the instrument's newest bar is a duplicate and ignored (counted).
        """
        state = self.states.get(token)
        if state is None:
            state = self.open_instrument(token, pd.DataFrame(columns=list(_BAR_KEYS)))
        if state.last_time is not None and bar["time"] <= state.last_time:
            self.duplicates += 1
            return None
        closed_at = self.wall() if closed_at is None else closed_at
        began = time.perf_counter()
        try:
            row = self._features(state, bar)
        except DataValidationError as exc:  # a bad bar must never stop the pipeline
            self.errors += 1
            self._hook("on_tick_rejected", f"bar:{type(exc).__name__}")
            return None
        state.last_time = bar["time"]
        state.session.append(bar)
        self.bars += 1
        self.put("candles", [(bar_candle(token, bar), bar["obi_5"])])
        try:
            self._rollups(state, bar)
        except Exception:  # a roll-up is a by-product: it must never cost the bar its features or signal
            self.errors += 1
            logger.exception("live: roll-ups of {} at {} failed", token, bar["time"])
        self.put("features", [(token, bar["time"], row)])
        t_feat = time.perf_counter()
        self._hook("on_features", t_feat - began)
        made = self.step(token, bar["time"], row)
        self._hook("on_prediction", time.perf_counter() - t_feat)
        if made is None:
            return None
        signal = made[0]
        self.signals += 1
        self.put("signals", [PendingSignal(signal, closed_at)])
        if self.on_signal is not None:
            self.on_signal(signal, closed_at)
        return signal

    def _features(self, state: InstrumentState, bar: dict[str, Any]) -> np.ndarray:
        if state.stream is None:
            frame = pd.DataFrame([bar], columns=list(_BAR_KEYS))
            frame["time"] = pd.to_datetime(frame["time"], utc=True).dt.tz_convert(IST)
            state.stream = self.calculator.open_stream(frame)
            return cast(np.ndarray, self.calculator.compute(frame).iloc[0, 1:].to_numpy(dtype=np.float64))
        return state.stream.update(bar)

    # -- corrections -----------------------------------------------------------------------------
    def rewind(self, token: int, bars: Sequence[dict[str, Any]], closed_at: float | None = None) -> int:
        """Replace the instrument's bars from the first bar of ``bars`` on (sorted, corrected) and replay.

        Returns the number of bars replayed. Bars of the session after the replaced range that are not
        in ``bars`` are dropped: the caller passes the full corrected sequence from that instant.
        """
        if not bars:
            return 0
        state = self.states[token]
        first = bars[0]["time"]
        frame = state.frame_before(first)
        state.session = [b for b in state.session if b["time"] < first]
        state.stream = self.calculator.open_stream(frame) if len(frame) else None
        state.last_time = frame["time"].iloc[-1].to_pydatetime() if len(frame) else None
        self.rewinds += 1
        for bar in bars:
            self.process(token, bar, closed_at)
        return len(bars)

    # -- roll-ups --------------------------------------------------------------------------------
    def _rollups(self, state: InstrumentState, bar: dict[str, Any]) -> None:
        """Emit the 5/15/60m candles this bar completes (same rule as ``core.aggregation``)."""
        t: datetime = bar["time"]
        day = t.astimezone(IST).date()
        close = self.calendar.session_close(day)
        out = []
        for tf in self.rollups:
            open_t = self.calendar.bar_open(t, tf)
            end = min(open_t + tf.delta, close)
            if t + timedelta(minutes=1) < end:
                continue
            members = [b for b in state.session[-tf.minutes :] if open_t <= b["time"] < end]
            if state.history is not None and len(state.history) and len(members) < tf.minutes:
                members = self._history_members(state, open_t, end) + members
            if not members:
                continue
            out.append(
                Candle(
                    instrument_token=state.token,
                    timeframe=tf,
                    time=open_t,
                    open=members[0]["open"],
                    high=max(b["high"] for b in members),
                    low=min(b["low"] for b in members),
                    close=members[-1]["close"],
                    volume=int(sum(int(b["volume"]) for b in members)),
                    oi=members[-1]["oi"],
                    source="live",
                )
            )
        if out:
            self.put("candles", [(c, math.nan) for c in out])

    @staticmethod
    def _history_members(state: InstrumentState, open_t: datetime, end: datetime) -> list[dict[str, Any]]:
        h = state.history
        first_session = state.session[0]["time"] if state.session else end
        part = h[(h["time"] >= open_t) & (h["time"] < min(end, first_session))]
        out = []
        for rec in part.itertuples(index=False):
            d = rec._asdict()
            oi = d.get("oi")
            out.append(
                {
                    "time": d["time"].to_pydatetime(),
                    "open": float(d["open"]),
                    "high": float(d["high"]),
                    "low": float(d["low"]),
                    "close": float(d["close"]),
                    "volume": int(d["volume"]),
                    # Stored history comes back with a nullable integer column: pd.NA, not None/NaN.
                    "oi": None if oi is None or pd.isna(oi) else int(oi),
                }
            )
        return out

    def _hook(self, name: str, *args: Any) -> None:
        if self.hooks is not None:
            with contextlib.suppress(Exception):  # metrics must never break the hot path
                getattr(self.hooks, name)(*args)
