"""Live signals of the longer signal timeframes (5m, 15m) and of the ensemble.

A :class:`TimeframeScorer` takes the roll-up bars of its timeframe as the engine's
:class:`~tickwise.core.aggregation.RollupBuilder` closes them (the streaming roll-up proven equal to the
batch ``aggregate_candles``), folds them into that timeframe's feature streams (the calculator of
``core.timeframe_features``, opened on the stored bars of the timeframe from the anchor: exactly what
the batch feature step reads; one :class:`~tickwise.core.features.bank.FeatureBank` per timeframe) and
scores them with that timeframe's model through the same :class:`SignalStep` as 1m. So a live 5m/15m
signal equals the batch one of the same bar.

An :class:`EnsembleStep` keeps each member's scored bars (``core.ensemble.LatestProbabilities``) and,
when a bar of its timeframe closes, combines the members' latest probabilities available at that close
with the stacked layer: the rule and the arithmetic of the batch ensemble, so the same result. The
engine scores a minute's 1m bars, then the roll-ups that minute closed (shortest timeframe first), then
the ensemble, so every member bar closed by the ensemble bar's close is already in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from tickwise.core.ensemble import ENSEMBLE_FEATURE_SET, LatestProbabilities, MemberScore, StackedLogistic
from tickwise.core.features.bank import FeatureBank
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.features.stream import FeatureStream
from tickwise.core.predictor import Predictor
from tickwise.core.regime import layer_of
from tickwise.core.signals import SignalGenerator, signal_ready
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.errors import DataValidationError, ModelError
from tickwise.domain.signal import Signal
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.regimes import LiveRegimes
from tickwise.pipelines.live.stored_bars import StoredBars


@dataclass(frozen=True, slots=True)
class MemberRow:
    """One member of one ensemble signal, queued for ``signal_members``."""

    instrument_token: int
    timeframe: Timeframe
    time: datetime
    model_version: str  # the ensemble version
    mode: str
    member_timeframe: str
    member_version: str
    member_time: datetime
    p_long: float
    p_short: float


class MemberModel:
    """A member's predictor reading its rows in a calculator's column order.

    A member trained with a regime layer (``core.regime``) reads the regime columns too: each
    instrument's rows are extended by the layer's recursion (:class:`LiveRegimes`, which restarts at
    every session open, as batch scoring does), so a member scores what its batch signals scored.
    """

    def __init__(self, predictor: Predictor, names: Sequence[str]) -> None:
        layer = layer_of(predictor.artifact.regime)
        self.regimes = LiveRegimes(layer, names) if layer is not None else None
        extended = [*names, *(layer.columns if layer is not None else ())]
        index = {n: i for i, n in enumerate(extended)}
        missing = [n for n in predictor.feature_names if n not in index]
        if missing:
            raise ModelError(f"member model {predictor.version} needs feature(s) {', '.join(missing[:8])}")
        self.predictor = predictor
        self._idx = np.array([index[n] for n in predictor.feature_names], dtype=np.intp)

    def scores(
        self, tokens: Sequence[int], times: Sequence[datetime], rows: np.ndarray, timeframe: Timeframe
    ) -> list[MemberScore | None]:
        """Each row's probabilities (None where a model feature is not finite: no signal, no member)."""
        full = np.asarray(rows, dtype=np.float64).reshape(len(times), -1)
        if self.regimes is not None:
            full = self.regimes.extend(tokens, times, full)
        x = full[:, self._idx]
        ready = signal_ready(x)
        out: list[MemberScore | None] = [None] * len(times)
        if not ready.any():
            return out
        probs = self.predictor.predict_matrix(x[ready])
        for j, i in enumerate(np.flatnonzero(ready).tolist()):
            t = times[i]
            out[i] = MemberScore(
                t, t + timeframe.delta, self.predictor.version, float(probs[j, 0]), float(probs[j, 1])
            )
        return out


class TimeframeScorer:
    """One longer signal timeframe, live: roll-up bars -> feature streams (one bank) -> its model."""

    def __init__(
        self,
        timeframe: Timeframe,
        calculator: FeatureCalculator,
        step: object | None = None,
    ) -> None:
        if timeframe is Timeframe.M1:
            raise ValueError("the 1m timeframe is the engine's own")
        self.timeframe = timeframe
        self.calculator = calculator
        # A SignalStep (``many(tokens, times, rows)``) of this timeframe, or None: features only.
        self.step = step
        self.bank = FeatureBank(calculator.layout)
        # The stored bars each stream was opened on, packed (a repository frame is ~200 B a bar).
        self._history: dict[int, StoredBars] = {}
        self._session: dict[int, list[Bar]] = {}
        self._last: dict[int, datetime] = {}
        self.errors = 0

    def open_instrument(self, token: int, history: pd.DataFrame) -> tuple[datetime, np.ndarray] | None:
        """Open ``token``'s stream on its stored bars of this timeframe (from the anchor, oldest first);
        returns the last stored bar's open and feature row (the row batch computes for it), if any."""
        history = history.reset_index(drop=True)
        self._history[token] = StoredBars.of(history)
        self._session[token] = []
        self._last.pop(token, None)
        if not len(history):
            return None
        stream = self.calculator.open_stream(history)
        row = stream.row().copy()  # before the bank takes the stream's state over
        self.bank.attach(token, stream)
        last = pd.Timestamp(history["time"].iloc[-1]).to_pydatetime()
        self._last[token] = last
        return last, row

    def rewind(self, token: int, since: datetime) -> None:
        """Forget the session bars of buckets holding minutes from ``since`` on and re-open the stream
        on the rest (the corrected 1m bars replayed through the roll-up bring them back)."""
        keep = [b for b in self._session.get(token, []) if b.time + self.timeframe.delta <= since]
        stored = self._history.get(token)
        frame = _frame(stored.frame() if stored is not None else pd.DataFrame(), keep)
        self._session[token] = keep
        self._last.pop(token, None)
        if len(frame):
            self.bank.attach(token, self.calculator.open_stream(frame))
            self._last[token] = pd.Timestamp(frame["time"].iloc[-1]).to_pydatetime()

    def fold(self, bars: Sequence[Bar]) -> list[tuple[Bar, np.ndarray]]:
        """Feature rows of ``bars`` (closed bars of this timeframe, at most one per instrument)."""
        fresh = [
            b for b in bars if b.instrument_token not in self._last or b.time > self._last[b.instrument_token]
        ]
        banked = [b for b in fresh if self.bank.stream(b.instrument_token) is not None]
        out: list[tuple[Bar, np.ndarray]] = []
        if banked:
            matrix, errors = self.bank.update_many([b.instrument_token for b in banked], banked)
            for j, bar in enumerate(banked):
                if errors[j] is not None:
                    self.errors += 1
                    continue
                out.append((bar, matrix[j]))
        for bar in fresh:
            if self.bank.stream(bar.instrument_token) is None:  # no stored bar of this timeframe yet
                try:
                    out.append((bar, self._first(bar)))
                except DataValidationError:
                    self.errors += 1
        for bar, _ in out:
            self._session.setdefault(bar.instrument_token, []).append(bar)
            self._last[bar.instrument_token] = bar.time
        return out

    def _first(self, bar: Bar) -> np.ndarray:
        frame = _frame(pd.DataFrame(), [bar])
        stream: FeatureStream = self.calculator.open_stream(frame)
        self.bank.attach(bar.instrument_token, stream)
        values = self.calculator.compute(frame).iloc[0, 1:].to_numpy(dtype=np.float64)
        return np.asarray(values, dtype=np.float64)

    def signals(self, folded: Sequence[tuple[Bar, np.ndarray]]) -> list[Signal | None]:
        """This timeframe's signals of the folded bars (one batched predict), or Nones without a model."""
        many = getattr(self.step, "many", None)
        if many is None or not folded:
            return [None] * len(folded)
        rows = np.stack([r for _, r in folded])
        result: list[Signal | None] = many(
            [b.instrument_token for b, _ in folded], [b.time for b, _ in folded], rows
        )
        return result


_KEYS = ("time", "open", "high", "low", "close", "volume", "obi_5")


def stored_history(
    bars: pd.DataFrame, last_minute: datetime | None, timeframe: Timeframe, calendar: SessionCalendar
) -> pd.DataFrame:
    """The stored bars of ``timeframe`` a scorer opens on, given the engine's 1m history ends with the
    minute ``last_minute``: every bar before the bucket holding that minute, and that bucket too when
    the minute completed it. An incomplete bucket is left out: the engine's roll-up re-opens it on the
    1m history and hands the bar over when it closes (later today, or on the next session's first bar),
    as it does for every bar after it."""
    if last_minute is None or bars.empty:
        return bars.iloc[:0]
    bucket = calendar.bar_open(last_minute, timeframe)
    end = min(bucket + timeframe.delta, calendar.session_close(bucket.astimezone(IST).date()))
    times = pd.DatetimeIndex(pd.to_datetime(bars["time"], utc=True))
    complete = last_minute + Timeframe.M1.delta >= end
    keep = times <= pd.Timestamp(bucket) if complete else times < pd.Timestamp(bucket)
    return bars[np.asarray(keep)].reset_index(drop=True)


def _frame(history: pd.DataFrame, bars: Sequence[Bar]) -> pd.DataFrame:
    """Stored bars plus session bars as the calculator's input frame."""
    records = [{k: getattr(b, k) for k in _KEYS} for b in bars]
    extra = pd.DataFrame.from_records(records, columns=list(_KEYS))
    if len(extra):
        extra["time"] = pd.to_datetime(extra["time"], utc=True)
    if not len(history):
        frame = extra
    else:
        cols = [c for c in _KEYS if c in history.columns]
        hist = history.loc[:, cols].assign(time=pd.to_datetime(history["time"], utc=True))
        frame = pd.concat([hist, extra.loc[:, cols]], ignore_index=True) if len(extra) else hist
    for col in ("open", "high", "low", "close", "volume", "obi_5"):
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
    return frame.reset_index(drop=True)


class EnsembleStep:
    """The ensemble, live: members' scored bars in, one signal per closed bar of its timeframe out."""

    def __init__(
        self,
        version: str,
        layer: StackedLogistic,
        generator: SignalGenerator,
        timeframe: Timeframe,
        members: Mapping[str, MemberModel],
        mode: str = "live",
    ) -> None:
        if tuple(members) != layer.members:
            raise ModelError(
                f"ensemble {version} combines {', '.join(layer.members)}, got members {', '.join(members)}"
            )
        self.version = version
        self.layer = layer
        self.generator = generator
        self.timeframe = timeframe
        self.members = dict(members)
        self.mode = mode
        self.latest = LatestProbabilities(layer.members)

    def add(self, member: str, tokens: Sequence[int], times: Sequence[datetime], rows: np.ndarray) -> None:
        """Score a member's bars (its feature rows) and keep their probabilities."""
        model = self.members.get(member)
        if model is None or not len(tokens):
            return
        for token, score in zip(tokens, model.scores(tokens, times, rows, Timeframe(member)), strict=True):
            if score is not None:
                self.latest.add(member, token, score)

    def signals(
        self, tokens: Sequence[int], times: Sequence[datetime]
    ) -> list[tuple[Signal, list[MemberRow]] | None]:
        """The ensemble signal (and its member rows) of each closed bar, or None (a member is missing)."""
        found: list[tuple[int, list[MemberScore]]] = []
        for i, (token, t) in enumerate(zip(tokens, times, strict=True)):
            got = self.latest.at(token, t, t + self.timeframe.delta)
            if got is not None:
                found.append((i, got))
        out: list[tuple[Signal, list[MemberRow]] | None] = [None] * len(tokens)
        if not found:
            return out
        probs = np.array(
            [[v for s in got for v in (s.p_long, s.p_short)] for _, got in found], dtype=np.float64
        )
        p = self.layer.predict(probs)
        batch = self.generator.generate(p[:, 0], p[:, 1])
        for j, (i, got) in enumerate(found):
            token, t = tokens[i], times[i]
            signal = Signal(
                instrument_token=token,
                timeframe=self.timeframe,
                time=t,
                available_at=t + self.timeframe.delta,
                model_version=self.version,
                direction=int(batch.direction[j]),
                confidence=float(batch.confidence[j]),
                mode=self.mode,
                feature_set=ENSEMBLE_FEATURE_SET,
                latency_ms=None,
                size=float(batch.size[j]),
            )
            rows = [
                MemberRow(
                    token,
                    self.timeframe,
                    t,
                    self.version,
                    self.mode,
                    m,
                    s.model_version,
                    s.time,
                    s.p_long,
                    s.p_short,
                )
                for m, s in zip(self.layer.members, got, strict=True)
            ]
            out[i] = (signal, rows)
        return out
