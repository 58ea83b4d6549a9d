"""The per-bar live path: closed 1m :class:`Bar` -> feature stream -> predictor -> signal, plus roll-ups.

One :class:`InstrumentState` per instrument holds the feature stream opened on the instrument's stored
1m history from its anchor (exactly the candles the batch feature step reads), so every live feature row
equals the batch row of the same bar, and the signal step runs the same
:class:`~tickwise.core.signal_model.SignalModel` scoring as batch prediction (see :class:`SignalStep`).
Roll-ups (5m, 15m, 60m) come from :class:`~tickwise.core.aggregation.RollupBuilder`, the streaming
roll-up proven equal to the batch ``aggregate_candles``. The hot path is plain Python and NumPy (no
pandas per bar). :meth:`LiveEngine.process_many` takes the bars that closed one minute together: every
stream's compiled-step state lives in one :class:`~tickwise.core.features.bank.FeatureBank`, so their
features take one native step, and their signals one batched predict (each row bit-identical to
:meth:`LiveEngine.process` of the same bar, tested).

Longer signal timeframes and the ensemble (``timeframes.py``): the roll-ups a minute closed go, after
that minute's 1m bars were scored, to one :class:`TimeframeScorer` per timeframe (5m before 15m), whose
signals carry that timeframe; then the :class:`EnsembleStep` combines the members' latest probabilities
for each closed bar of its timeframe.

Corrections: a bar that turns out wrong after it was processed (late ticks, a frame lost without a
disconnect) is corrected by :meth:`LiveEngine.rewind`: the stream and the roll-ups are re-opened on the
history plus the session's bars before the wrong one, and the corrected bars are replayed; candles,
features and signals are upserts, so the stored rows end up exactly as if the bars had been right the
first time.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from itertools import repeat

import numpy as np
import pandas as pd
from loguru import logger

from tickwise.core.aggregation import RollupBuilder
from tickwise.core.candles import ClosedBars
from tickwise.core.features.bank import FeatureBank
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.features.stream import FeatureStream, epoch_minute
from tickwise.core.predictor import Predictor
from tickwise.core.regime import layer_of
from tickwise.core.signal_model import SignalModel
from tickwise.core.signals import SignalGenerator
from tickwise.core.tree_eval import scoring_pool
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.candle import Candle
from tickwise.domain.errors import DataValidationError
from tickwise.domain.signal import Signal
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import NullHooks
from tickwise.pipelines.live.columns_gate import Admitted, ColumnsGate
from tickwise.pipelines.live.fast_rows import new_signal, positional
from tickwise.pipelines.live.regimes import LiveRegimes
from tickwise.pipelines.live.session_bars import PACK_EVERY, SessionBars
from tickwise.pipelines.live.stored_bars import StoredBars
from tickwise.pipelines.live.timeframes import EnsembleStep, TimeframeScorer
from tickwise.ports.hooks import PipelineHooks

ROLLUPS = (Timeframe.M5, Timeframe.M15, Timeframe.M60)
_BAR_KEYS = ("time", "open", "high", "low", "close", "volume", "oi", "obi_5")


class SignalStep:
    """A feature row (calculator column order) -> :class:`Signal`, or None while not ready.

    Scoring is :meth:`SignalModel.score` on a one-bar batch: the very step batch prediction runs over
    all bars (readiness rule, predictor, signal generator), so live and batch signals are identical.

    A model with a regime layer (``core.regime``) extends each row with its regime columns first
    (:class:`~tickwise.pipelines.live.regimes.LiveRegimes`, per-instrument state; :meth:`prime`).
    """

    def __init__(
        self,
        predictor: Predictor,
        generator: SignalGenerator,
        names: Sequence[str],
        timeframe: Timeframe = Timeframe.M1,
        mode: str = "live",
    ) -> None:
        self.layer = layer_of(predictor.artifact.regime)
        self.model = SignalModel(predictor, generator, self.layer)
        self.predictor = predictor
        self.timeframe = timeframe
        self.mode = mode
        self._names = list(names)
        self._model_idx, self._regime_idx = self.model.column_indices(self.model.extended_names(names))
        self.regimes = LiveRegimes(self.layer, names) if self.layer is not None else None
        # Compile (and check) the trees now, at start-up, not inside the first minute's scoring.
        _ = predictor.compiled

    def set_generator(self, generator: SignalGenerator) -> None:
        """Score the next bars with ``generator`` (SIGHUP: a new threshold, sizing or regime filter)."""
        model = SignalModel(self.predictor, generator, self.layer)
        self._model_idx, self._regime_idx = model.column_indices(model.extended_names(self._names))
        self.model = model

    def prime(self, token: int, calculator: FeatureCalculator, history: pd.DataFrame) -> None:
        """The engine opened or rewound ``token`` on ``history``: rebuild its regime state (if any)."""
        if self.regimes is not None:
            self.regimes.prime(token, calculator, history)

    def __call__(self, token: int, bar_time: datetime, row: np.ndarray) -> Signal | None:
        """The signal (with its position ``size``) of the bar opened at ``bar_time``, or None (not ready)."""
        return self.many([token], [bar_time], row.reshape(1, -1))[0]

    def many(
        self, tokens: Sequence[int], bar_times: Sequence[datetime], rows: np.ndarray
    ) -> list[Signal | None]:
        """Score the bars of one minute together: ``rows`` holds one feature row per bar.

        One :meth:`SignalModel.score` call, so one ``booster.predict`` per side for the whole minute;
        LightGBM scores each row on its own (the same trees summed in the same order), so every
        signal is bit-identical to scoring its row alone (tested both ways).
        """
        rows = np.asarray(rows, dtype=np.float64).reshape(len(tokens), -1)
        if self.regimes is not None:
            rows = self.regimes.extend(tokens, bar_times, rows)
        regime = {n: rows[:, i] for n, i in self._regime_idx.items()}
        idx = self._model_idx
        # A model that reads every column in the calculator's order (the usual one) takes the rows as
        # they are: the gather would copy them all (about 2.5 ms for a 3,000-bar minute) to no effect.
        whole = len(idx) == rows.shape[1] and bool((idx == np.arange(len(idx))).all())
        scored = self.model.score(rows if whole else rows[:, idx], regime)
        out: list[Signal | None] = [None] * len(tokens)
        batch = scored.batch
        direction = np.asarray(batch.direction, dtype=np.int64).tolist()
        confidence = np.asarray(batch.confidence, dtype=np.float64).tolist()
        size = np.asarray(batch.size, dtype=np.float64).tolist()
        meta_prob = _optional(scored.meta_prob, len(size))
        meta_size = _optional(scored.meta_size, len(size))
        ready = np.flatnonzero(scored.ready).tolist()
        n = len(ready)
        if n == len(tokens):  # every bar scored (the usual minute): the columns as given
            toks, times = tokens, bar_times
        else:
            toks, times = [tokens[i] for i in ready], [bar_times[i] for i in ready]
        delta = self.timeframe.delta
        first = times[0] if n else None
        available: Iterable[datetime]
        # An equality count (list.count, C-level), not a dict of instants: hashing an aware datetime
        # asks its zone for the offset. A minute's bars share their open instant, so one available_at
        # serves them all.
        if first is not None and times.count(first) == n:
            available = repeat(first + delta, n)
        else:
            ats: dict[datetime, datetime] = {}
            available = [ats.setdefault(t, t + delta) for t in times]
        # Signal(...) positional, without the frozen __init__ (fast_rows), mapped over the columns: no
        # Python loop per signal (about 3,000 signals a minute at a shard, before their commit).
        made = map(
            new_signal, toks, repeat(self.timeframe, n), times, available, repeat(self.predictor.version, n),
            direction, confidence, repeat(self.mode, n), repeat(self.predictor.feature_set, n),
            repeat(None, n), size, meta_prob, meta_size,
        )  # fmt: skip
        if n == len(tokens):
            return list(made)
        for i, signal in zip(ready, made, strict=True):
            out[i] = signal
        return out


def _observe_each(observe: Callable[[float], None], value: float, count: int) -> None:
    """``observe(value)`` ``count`` times (one histogram observation per bar)."""
    for _ in range(count):
        observe(value)


def _optional(values: np.ndarray | None, n: int) -> list[float | None]:
    """Per-bar values with NaN (or no array at all) as None, the way signals store them."""
    if values is None or np.isnan(values).all():  # no meta model: no per-value Python
        return [None] * n
    return [None if v != v else float(v) for v in values.tolist()]  # v != v: NaN


# A signal step: (instrument, bar open instant, feature row) -> signal or None while not ready.
Step = Callable[[int, datetime, np.ndarray], Signal | None]


def _scoring_threads(step: Step) -> int:
    """The threads the step's predictor scores a minute on (``live.predict_threads``); 1 without one."""
    predictor = getattr(step, "predictor", None)
    return predictor.threads if isinstance(predictor, Predictor) else 1


@dataclass(frozen=True, slots=True)
class PendingSignal:
    """A signal waiting to be written, with the real (wall) instant its bar was closed."""

    signal: Signal
    closed_at: float  # unix seconds (real time)


_new_pending = positional(PendingSignal)  # PendingSignal(...) without the frozen __init__ (fast_rows)


@dataclass(frozen=True, slots=True)
class FeatureRow:
    """One bar's feature values (calculator column order), queued for the ``features`` table."""

    instrument_token: int
    time: datetime
    values: np.ndarray


_new_feature_row = positional(FeatureRow)  # FeatureRow(...) without the frozen __init__ (fast_rows)


@dataclass
class InstrumentState:
    token: int
    history: StoredBars  # stored 1m candles from the anchor up to the session start (compact)
    stream: FeatureStream | None
    last_time: datetime | None  # open instant of the newest bar folded in
    # bars processed since start, as columns (objects built when read: pipelines/live/session_bars.py)
    session: SessionBars = field(default_factory=SessionBars)
    pack_phase: int = (
        0  # the session bars are packed in the minutes m with (m + pack_phase) % PACK_EVERY == 0
    )

    def frame_before(self, t: datetime) -> pd.DataFrame:
        """History plus the session bars opened before ``t`` (what the stream must be opened on)."""
        bars = self.session.bars(0, self.session.before(t))
        hist = self.history.frame(self.history.before(t))
        if not bars:
            return hist.reset_index(drop=True)
        cols = list(_BAR_KEYS) if hist.empty else [c for c in _BAR_KEYS if c in hist.columns]
        records = ([] if hist.empty else hist[cols].to_dict("records")) + [
            {c: getattr(b, c) for c in cols} for b in bars
        ]
        frame = pd.DataFrame.from_records(records, columns=cols)
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        for col in ("open", "high", "low", "close", "volume", "obi_5"):
            if col in frame.columns:
                frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
        return frame

    def candles_before(self, t: datetime, n: int) -> list[Candle]:
        """The last ``n`` 1m candles (stored history, then session bars) opened before ``t``."""
        k = self.session.before(t)
        session = self.session.candles(k - n, k)
        if len(session) >= n or not len(self.history):
            return session
        stop = self.history.before(t)
        return self.history.candles(self.token, stop - (n - len(session)), stop) + session


def history_candles(token: int, frame: pd.DataFrame) -> list[Candle]:
    """Stored 1m candle rows (as the candle repository returns them) -> domain candles."""
    out = []
    for rec in frame.itertuples(index=False):
        oi = getattr(rec, "oi", None)
        out.append(
            Candle(
                instrument_token=token,
                timeframe=Timeframe.M1,
                time=pd.Timestamp(rec.time).to_pydatetime(),
                open=float(rec.open),
                high=float(rec.high),
                low=float(rec.low),
                close=float(rec.close),
                volume=int(rec.volume),
                # Stored history comes back with a nullable integer column: pd.NA, not None/NaN.
                oi=None if oi is None or pd.isna(oi) else int(oi),
                source=str(getattr(rec, "source", "historical")),
            )
        )
    return out


class LiveEngine:
    """Processes closed 1m bars in time order per instrument and queues every output row.

    ``freeze_gc``: pause the cyclic garbage collector during each minute's :meth:`process_many` and
    move everything alive after it out of the collector's generations (``gc.freeze``), so no minute
    pays a full collection of the session's objects (``tickwise live`` and ``bench live`` set it).

    ``put(table, rows)`` receives :class:`Bar` rows for ``candles`` (1m bars and roll-ups, the latter
    with ``obi_5 = NaN``), :class:`FeatureRow` rows for ``features`` and :class:`PendingSignal` rows for
    ``signals``.
    """

    def __init__(
        self,
        calculator: FeatureCalculator,
        step: Step,
        put: Callable[[str, Sequence[object]], None],
        *,
        hooks: PipelineHooks | None = None,
        calendar: SessionCalendar = NSE,
        rollups: Sequence[Timeframe] = ROLLUPS,
        on_signal: Callable[[Signal, float], None] | None = None,
        wall: Callable[[], float] = time.time,
        timeframes: Sequence[TimeframeScorer] = (),
        ensemble: EnsembleStep | None = None,
        freeze_gc: bool = False,
    ) -> None:
        self.calculator = calculator
        self.freeze_gc = freeze_gc
        self.step = step
        self.put = put
        self.hooks: PipelineHooks = hooks if hooks is not None else NullHooks()
        self.calendar = calendar
        self.rollup = RollupBuilder(rollups, calendar, source="live")
        # A bucket never holds more 1m bars than its timeframe has minutes: enough to re-open it.
        self._rollup_span = max((tf.minutes for tf in rollups), default=0)
        self.on_signal = on_signal
        self.wall = wall
        missing = [str(sc.timeframe) for sc in timeframes if sc.timeframe not in rollups]
        if missing:
            raise ValueError(f"signal timeframe(s) {', '.join(missing)} need their roll-ups")
        self.timeframes = tuple(sorted(timeframes, key=lambda sc: sc.timeframe.minutes))
        self.ensemble = ensemble
        self._rolled: list[Bar] = []  # roll-ups closed by this minute's bars, for the timeframe scorers
        # The rest of minutes processed with ``defer=True``, in order: see :meth:`process_many`.
        self._deferred: list[Callable[[], None]] = []
        self._in_minute = False
        self._wave_matrix: np.ndarray | None = None  # set by _fold_wave's fast path (see there)
        self._states: dict[int, InstrumentState] = {}
        # Every instrument's compiled-step state in one set of arrays: process_many steps them at once.
        self.bank = FeatureBank(calculator.layout)
        threads = _scoring_threads(step)
        if threads > 1:
            # The minute's step in row blocks on the predictor's own pool of scoring threads (the
            # process's, one per worker count), so a shard never starts a second pool.
            self.bank.run_on(threads, scoring_pool(threads - 1))
        # The columns path's admission check as arrays, kept as instruments open, rewind and fold bars
        # (columns_gate.py).
        self._gate: ColumnsGate[InstrumentState] = ColumnsGate()
        self._bank_loaded = False  # whether the bank's compiled step ran once (_load_bank_step)
        self.bars = 0
        self.signals = 0
        self.rewinds = 0
        self.errors = 0

    # -- set-up ----------------------------------------------------------------------------------
    def open_instrument(self, token: int, history: pd.DataFrame) -> InstrumentState:
        """Open the stream of ``token`` on its stored 1m history (from the anchor, oldest first)."""
        self.settle()
        history = history.reset_index(drop=True)
        stream = self.calculator.open_stream(history) if len(history) else None
        last = history["time"].iloc[-1].to_pydatetime() if len(history) else None
        if stream is not None:
            if self.ensemble is not None and last is not None:
                # A restart mid-session: the last stored bar is the 1m member's latest (batch's rule)
                self.ensemble.add(str(Timeframe.M1), [token], [last], stream.row().copy()[None, :])
            self.bank.attach(token, stream)
            if not self._bank_loaded:
                self._load_bank_step(stream, last, float(history["close"].iloc[-1]))
        state = InstrumentState(
            token, StoredBars.of(history), stream, last, pack_phase=len(self._states) % PACK_EVERY
        )
        self._states[token] = state
        self._gate_put(state)
        self._prime(token, history)
        if last is not None and self._rollup_span:
            # A restart mid-bucket: the stored bars of the open buckets count toward their roll-ups.
            self.rollup.restore(token, history_candles(token, history.tail(self._rollup_span)))
        return state

    def _gate_put(self, state: InstrumentState) -> None:
        """The columns gate takes ``state``'s instrument as it is now (opened, rewound, stream opened)."""
        token = state.token
        banked = state.stream is not None and self.bank.stream(token) is state.stream
        self._gate.put(token, state, self.bank.row(token), banked, state.last_time)

    def _load_bank_step(self, stream: FeatureStream, last: datetime | None, close: float) -> None:
        """Run the bank's compiled step once, now, on a copy of ``stream`` in a scratch bank.

        numba loads a cached kernel at its first call; for the bank's step that is a large module whose
        bitcode takes a noticeable time to load (the first live minute paid it: about 13 % of the
        profile of a 5-minute run at 1,000 instruments). Opening the engine pays it instead. The copy
        and the scratch bank are dropped; no state of the engine changes.
        """
        if last is None:
            return
        self._bank_loaded = True
        scratch = FeatureBank(self.calculator.layout, capacity=1)
        scratch.attach(0, stream.copy())
        price = close if np.isfinite(close) and close > 0.0 else 1.0  # any bar the step accepts
        after = last + Timeframe.M1.delta
        scratch.update_many([0], [Bar(Candle(0, Timeframe.M1, after, price, price, price, price, 0))])

    def open_timeframe(self, timeframe: Timeframe, token: int, history: pd.DataFrame) -> None:
        """Open ``token`` in the scorer of ``timeframe`` on its stored bars (``timeframes.stored_history``);
        the last of them seeds the ensemble's member, as after :meth:`open_instrument`."""
        scorer = next((sc for sc in self.timeframes if sc.timeframe is timeframe), None)
        if scorer is None:
            raise ValueError(f"no {timeframe} scorer in this engine")
        self.settle()
        opened = scorer.open_instrument(token, history)
        if opened is not None and self.ensemble is not None:
            self.ensemble.add(str(timeframe), [token], [opened[0]], opened[1][None, :])

    def _prime(self, token: int, frame: pd.DataFrame) -> None:
        """A step that carries per-instrument state (a regime layer) rebuilds it from ``frame``."""
        prime = getattr(self.step, "prime", None)
        if prime is not None:
            prime(token, self.calculator, frame)

    # -- what has been processed -------------------------------------------------------------------
    def last_time(self, token: int) -> datetime | None:
        """Open instant of the newest bar of ``token`` folded in (history or session), if any."""
        self.settle()  # a minute folded from columns records its bars in its deferred rest
        state = self._states.get(token)
        return state.last_time if state is not None else None

    def session_bars(self, token: int) -> tuple[Bar, ...]:
        """The bars of ``token`` processed in this session, oldest first."""
        self.settle()  # a minute folded from columns records its bars in its deferred rest
        state = self._states.get(token)
        return tuple(state.session.bars()) if state is not None else ()

    def resume_from(self) -> datetime | None:
        """The oldest newest-bar over all opened instruments (where a restart must backfill from)."""
        self.settle()  # a minute folded from columns records its bars in its deferred rest
        return min((s.last_time for s in self._states.values() if s.last_time is not None), default=None)

    # -- the hot path ----------------------------------------------------------------------------
    def process(self, bar: Bar, closed_at: float | None = None) -> Signal | None:
        """Fold one closed 1m bar in; queue candle, roll-ups, features and signal.

        A bar at or before the instrument's newest bar is a duplicate and ignored.
        """
        self.settle()
        closed_at = self.wall() if closed_at is None else closed_at
        folded = self._fold(bar)
        if folded is None:
            return None
        signal = self._score([folded], [folded[2]])[0]
        emitted = self._emit(signal, closed_at)
        self._longer([folded], closed_at)
        return emitted

    def process_many(
        self, bars: Sequence[Bar], closed_at: float | None = None, *, defer: bool = False
    ) -> list[Signal | None]:
        """Fold in the bars that closed one minute (one per instrument) and score them together.

        Each bar is folded exactly as :meth:`process` folds it (features, candles, roll-ups queued in
        the order given); then every bar that got a feature row is scored in ONE call of the step's
        ``many`` (one ``booster.predict`` per side for the minute, bit-identical per row). Returns one
        entry per input bar: its signal, or None (duplicate, rejected or not ready). Two bars of one
        instrument in ``bars`` are folded in order; each is scored with its own row.

        ``defer``: return as soon as the 1m signals are queued, and leave the rest of the minute (the
        candles, roll-ups and feature rows, the longer timeframes' scorers and the ensemble) to
        :meth:`settle`, so the caller can let the writer commit the signals first (the candle close ->
        signal latency does not wait for work no 1m signal needs). Nothing is skipped or reordered
        within a table: every entry point (this one included) settles what is pending first, and the
        caller settles once the signals are written (:meth:`TickConsumer.settle`).
        """
        self.settle()
        closed_at = self.wall() if closed_at is None else closed_at
        with self._minute():
            out = self._process_many(bars, closed_at)
            if not defer:
                self._run_deferred()
        return out

    @property
    def deferred(self) -> bool:
        """Whether a minute processed with ``defer=True`` still has its rest to run (:meth:`settle`)."""
        return bool(self._deferred)

    def settle(self) -> None:
        """Run the deferred rest of the minutes processed with ``defer=True`` (see :meth:`process_many`).

        Every part runs even if one raises; the first exception is raised at the end.
        """
        if not self._deferred:
            return
        with self._minute():
            self._run_deferred()

    def _run_deferred(self) -> None:
        failed: BaseException | None = None
        while self._deferred:
            work = self._deferred.pop(0)
            try:
                work()
            except Exception as exc:  # the rest still runs; the caller hears of the first failure
                failed = failed or exc
        if failed is not None:
            raise failed

    @contextmanager
    def _minute(self) -> Iterator[None]:
        """The minute's rows go to the writer in one put per table (same rows, same order per table)
        rather than three puts per bar: each put costs the writer's bookkeeping. With ``freeze_gc``,
        the cyclic collector is paused meanwhile and what the process keeps is frozen after."""
        if self._in_minute:  # nested (a settle inside the minute): the outer one puts and freezes
            yield
            return
        put = self.put
        queued: dict[str, list[object]] = {}
        self.put = lambda table, rows: queued.setdefault(table, []).extend(rows)
        self._in_minute = True
        settle = self.freeze_gc and gc.isenabled()
        if settle:
            gc.disable()
        try:
            yield
        finally:
            self.put = put
            self._in_minute = False
            for table, rows in queued.items():
                put(table, rows)
            if settle:
                # What the process holds after the minute (the history, the session's bars: acyclic
                # frozen dataclasses and arrays, held for the session) leaves the collector's
                # generations. Otherwise a full collection walks all of it inside some minute, and
                # the minute pays it (measured: 241 ms CPU, 787 ms wall at load 9, one minute in five
                # at 1,000 instruments). The price: cyclic garbage still unreachable-but-uncollected
                # at this instant is never collected (``bench live`` reports how much that was).
                gc.freeze()
                gc.enable()

    def _process_columns(self, block: ClosedBars, closed_at: float) -> list[Signal | None] | None:
        """The usual minute from the candle builder's columns (:class:`ClosedBars`): every bar's
        instrument has a banked stream and this bar is newer than its last, and the bank accepts
        every bar. Then the features take one step from the columns, the signals are scored and
        queued, and the :class:`Bar` objects, the session state (:meth:`_record`), the candles,
        roll-ups and feature rows come after the signals, in the minute's deferred rest: the same
        rows in the same order as :meth:`_process_many` of the same bars (tested).

        None (nothing changed) when the minute is not the usual one: the caller takes the per-bar
        path. A bar the bank refuses (not finite) goes through the per-bar path's refusal.
        """
        tokens, times = block.tokens, block.times
        if not tokens:
            return None
        instant = block.instant
        if instant is None:  # bars of several instants (rare): the checks bar by bar
            return self._process_mixed_columns(block, closed_at)
        gate = self._gate
        try:
            minute = epoch_minute(instant)
        except DataValidationError:
            return None  # the per-bar path says which bar
        admitted = gate.admit(tokens, instant)
        if admitted is None:
            return None  # a token twice, a new or unbanked instrument, or a duplicate: the per-bar path
        t_min = np.full(len(tokens), minute, dtype=np.int64)
        began = time.perf_counter()
        matrix, errors = self.bank.update_rows(admitted.rows, times, t_min, block.values)
        share = (time.perf_counter() - began) / len(tokens)
        if errors.count(None) != len(errors):  # rare: the per-bar path's refusal, on the bank's result
            return self._after_refusals(block, gate.held(admitted), matrix, errors, share, closed_at)
        held = partial(self._gated_held, gate, admitted, instant)
        return self._columns_folded(block, held, matrix, share, closed_at)

    def _gated_held(
        self, gate: ColumnsGate[InstrumentState], admitted: Admitted, instant: datetime
    ) -> list[InstrumentState]:
        """The states of a minute the gate admitted (in the minute's deferred rest, off the signals'
        path); its bars become their instruments' newest in the gate as they do in the states."""
        gate.record(admitted, instant)
        return gate.held(admitted)

    def _process_mixed_columns(self, block: ClosedBars, closed_at: float) -> list[Signal | None] | None:
        """:meth:`_process_columns` of bars that do not share one open instant: each bar checked."""
        tokens, times = block.tokens, block.times
        if len(set(tokens)) != len(tokens):
            return None  # two bars of an instrument: the per-bar path folds them in waves
        # The checks as C-level maps over the minute, not a Python loop per bar.
        try:
            held: list[InstrumentState] = list(map(self._states.__getitem__, tokens))
        except KeyError:
            return None  # a new instrument: opened by the per-bar path
        if not self.bank.holds(tokens, [state.stream for state in held]):
            return None  # no banked stream yet: opened by the per-bar path
        lasts = [state.last_time for state in held]
        if any(last is not None and t <= last for t, last in zip(times, lasts, strict=True)):
            return None
        try:
            t_min = np.fromiter(map(epoch_minute, times), dtype=np.int64, count=len(times))
        except DataValidationError:
            return None  # the per-bar path says which bar
        began = time.perf_counter()
        matrix, errors = self.bank.update_columns(tokens, times, t_min, block.values)
        share = (time.perf_counter() - began) / len(tokens)
        if errors.count(None) != len(errors):  # rare: the per-bar path's refusal, on the bank's result
            return self._after_refusals(block, held, matrix, errors, share, closed_at)
        return self._columns_folded(block, partial(self._mixed_held, held, times), matrix, share, closed_at)

    def _mixed_held(self, held: list[InstrumentState], times: Sequence[datetime]) -> list[InstrumentState]:
        """The states of a minute :meth:`_process_mixed_columns` folded; the gate records its bars."""
        for state, t in zip(held, times, strict=True):
            self._gate.record_one(state.token, t)
        return held

    def _columns_folded(
        self,
        block: ClosedBars,
        held: Callable[[], list[InstrumentState]],
        matrix: np.ndarray,
        share: float,
        closed_at: float,
    ) -> list[Signal | None]:
        """A minute the bank stepped from the columns: its signals now, the rest deferred."""
        n = len(block.tokens)
        self._deferred.append(partial(_observe_each, self.hooks.on_features, share, n))
        self._deferred.append(partial(self._settle_columns, block, held, matrix))
        signals = self._emit_many(
            self._score_columns(block.tokens, block.times, matrix, report_later=True), closed_at
        )
        self._deferred.append(partial(self._longer_columns, block, matrix, closed_at))
        return list(signals)

    def _settle_columns(
        self, block: ClosedBars, held_of: Callable[[], list[InstrumentState]], matrix: np.ndarray
    ) -> None:
        """The rest of a minute :meth:`_process_columns` folded: its bars become their instruments'
        newest, then their candles, roll-ups and feature rows are queued: the rows of :meth:`_record`
        and :meth:`_commit_many` on the same bars (tested), read from the columns where they can be.

        Where the minute shares one instant and closes no roll-up (four minutes in five), the candle
        rows are the bars as they are and the feature rows are mapped over the columns, with no
        per-bar Python besides the session state; otherwise :meth:`_commit_many`'s loop does it."""
        bars = block.bars()
        held = held_of()
        for state, t, bar in zip(held, block.times, bars, strict=True):  # _record, from the columns
            state.last_time = t
            state.session.push(bar)
        self.bars += len(bars)
        instant = block.instant
        if instant is None:
            self._commit_many(list(zip(held, bars, matrix, strict=True)))
            return
        rolled = self._rolled_up(bars)
        if any(rolled):
            self._queue(list(zip(held, bars, matrix, strict=True)), rolled)
            return
        minute = int(instant.timestamp()) // 60
        for state in held:
            if (minute + state.pack_phase) % PACK_EVERY == 0:  # off the hot path, staggered
                state.session.pack()
        self.put("candles", list(bars))
        self.put("features", list(map(_new_feature_row, block.tokens, block.times, matrix)))

    def _longer_columns(self, block: ClosedBars, matrix: np.ndarray, closed_at: float) -> None:
        if self.ensemble is None:  # the folded rows feed the ensemble only: none to build
            self._longer((), closed_at)
            return
        self._longer(list(zip(block.tokens, block.times, matrix, strict=True)), closed_at)

    def _after_refusals(
        self,
        block: ClosedBars,
        held: Sequence[InstrumentState],
        matrix: np.ndarray,
        errors: Sequence[DataValidationError | None],
        share: float,
        closed_at: float,
    ) -> list[Signal | None]:
        """:meth:`_process_many`'s handling of bars the bank refused, after a columns step: the refused
        bars are counted and dropped, the others recorded and scored as one wave."""
        bars = block.bars()
        on_features = self.hooks.on_features
        done: list[tuple[InstrumentState, Bar, np.ndarray]] = []
        where: list[int] = []
        for k, (state, bar) in enumerate(zip(held, bars, strict=True)):
            if errors[k] is not None:
                self.errors += 1
                self.hooks.on_tick_rejected(f"bar:{type(errors[k]).__name__}")
                continue
            on_features(share)
            done.append((state, bar, matrix[k]))
            where.append(k)
        self._record(done)
        if done:
            self._deferred.append(partial(self._commit_many, done))
        folded = [(bar.instrument_token, bar.time, row) for _, bar, row in done]
        out: list[Signal | None] = [None] * len(bars)
        if folded:
            rows = np.stack([f[2] for f in folded])
            signals = self._emit_many(self._score(folded, rows, report_later=True), closed_at)
            for k, signal in zip(where, signals, strict=True):
                out[k] = signal
        self._deferred.append(partial(self._longer, folded, closed_at))
        return out

    def _process_many(self, bars: Sequence[Bar], closed_at: float) -> list[Signal | None]:
        if isinstance(bars, ClosedBars):
            fast = self._process_columns(bars, closed_at)
            if fast is not None:
                return fast
            bars = bars.bars()
        folded: list[tuple[int, datetime, np.ndarray]] = []
        where: list[int] = []
        pending = list(enumerate(bars))
        waves = 0
        self._wave_matrix = None
        while pending:
            waves += 1
            # Waves of at most one bar per instrument (in the given order): one compiled step each.
            wave: list[tuple[int, Bar]] = []
            rest: list[tuple[int, Bar]] = []
            if len({b.candle.instrument_token for _, b in pending}) == len(pending):
                wave = pending  # the usual minute: one bar per instrument, one wave
            else:
                seen: set[int] = set()
                for k, bar in pending:
                    (rest if bar.instrument_token in seen else wave).append((k, bar))
                    seen.add(bar.instrument_token)
            got, done = self._fold_wave(wave)
            folded += [f for _, f in got]
            where += [k for k, _ in got]
            if done:
                self._deferred.append(partial(self._commit_many, done))
            pending = rest
        out: list[Signal | None] = [None] * len(bars)
        if folded:
            block, self._wave_matrix = (self._wave_matrix if waves == 1 else None), None
            # One wave through the bank's fast path: its matrix holds the folded rows in order already.
            rows = (
                block if block is not None and len(block) == len(folded) else np.stack([f[2] for f in folded])
            )
            signals = self._emit_many(self._score(folded, rows, report_later=True), closed_at)
            if waves == 1 and len(where) == len(bars):  # one wave, every bar folded: in the given order
                out = list(signals)
            else:
                for k, signal in zip(where, signals, strict=True):
                    out[k] = signal
        self._deferred.append(partial(self._longer, folded, closed_at))
        return out

    def _longer(self, folded: Sequence[tuple[int, datetime, np.ndarray]], closed_at: float) -> None:
        """After a minute's 1m bars: the ensemble's 1m member, the longer timeframes' bars that minute
        closed (features, signals, members), then the ensemble's signals (see the module docstring)."""
        ensemble = self.ensemble
        if ensemble is not None and folded:
            ensemble.add(
                str(Timeframe.M1),
                [f[0] for f in folded],
                [f[1] for f in folded],
                np.stack([f[2] for f in folded]),
            )
        closing: list[tuple[int, datetime]] = []
        if ensemble is not None and ensemble.timeframe is Timeframe.M1:
            closing = [(f[0], f[1]) for f in folded]
        pending, self._rolled = self._rolled, []
        for scorer in self.timeframes:
            bars = [b for b in pending if b.candle.timeframe is scorer.timeframe]
            while bars:
                wave: list[Bar] = []
                rest: list[Bar] = []
                seen: set[int] = set()
                for bar in bars:  # at most one bar per instrument per bank step
                    (rest if bar.instrument_token in seen else wave).append(bar)
                    seen.add(bar.instrument_token)
                bars = rest
                done = scorer.fold(wave)
                if not done:
                    continue
                table = f"features:{scorer.timeframe}"
                self.put(table, [FeatureRow(b.instrument_token, b.time, r) for b, r in done])
                for signal in scorer.signals(done):
                    self._emit(signal, closed_at)
                if ensemble is not None:
                    ensemble.add(
                        str(scorer.timeframe),
                        [b.instrument_token for b, _ in done],
                        [b.time for b, _ in done],
                        np.stack([r for _, r in done]),
                    )
                    if ensemble.timeframe is scorer.timeframe:
                        closing += [(b.instrument_token, b.time) for b, _ in done]
        if ensemble is not None and closing:
            for item in ensemble.signals([c[0] for c in closing], [c[1] for c in closing]):
                if item is not None:
                    self._emit(item[0], closed_at)
                    self.put("signal_members", item[1])

    def _fold_wave(
        self, wave: Sequence[tuple[int, Bar]]
    ) -> tuple[
        list[tuple[int, tuple[int, datetime, np.ndarray]]], list[tuple[InstrumentState, Bar, np.ndarray]]
    ]:
        """Fold bars of distinct instruments: the features of those with a banked stream in one
        :meth:`FeatureBank.update_many`, the others (no stream yet) one by one; each bar becomes the
        instrument's newest (:meth:`_record`). Returns the folded bars and what :meth:`_commit_many`
        still has to queue for them (candle, roll-ups, feature row, in the given order)."""
        # Per-bar Python here runs for every instrument between the candle close and the signal:
        # locals, and the candle read once per bar (Bar's properties are one call each).
        admitted: list[tuple[int, Bar, InstrumentState]] = []
        states = self._states
        for k, bar in wave:
            candle = bar.candle
            state = states.get(candle.instrument_token)
            if state is None:
                state = self._admit(bar)  # a new instrument: opened empty
                if state is None:
                    continue
            last = state.last_time
            if last is not None and candle.time <= last:
                continue  # a duplicate
            admitted.append((k, bar, state))
        stream_of = self.bank.stream
        rows: dict[int, np.ndarray | DataValidationError] = {}
        share = 0.0
        if admitted and all(
            state.stream is not None and stream_of(state.token) is state.stream for _, _, state in admitted
        ):
            # The usual minute: every admitted bar has a banked stream. Its lists are built by zips
            # and comprehensions over the minute, not per-bar appends (about 3,000 bars at a shard).
            keys, bars, held = (list(c) for c in zip(*admitted, strict=True))
            tokens = [state.token for state in held]
            began = time.perf_counter()
            matrix, errors = self.bank.update_many(tokens, bars)
            share = (time.perf_counter() - began) / len(bars)
            if errors.count(None) == len(errors):  # every bar accepted: rows in the given order
                values = list(matrix)  # one row view per bar
                whole = list(zip(held, bars, values, strict=True))
                times = [bar.candle.time for bar in bars]
                folded = list(zip(keys, zip(tokens, times, values, strict=True), strict=True))
                # One observation per bar, as before, but with the rest of the minute: a Prometheus
                # histogram costs about 0.9 us per observation, 1 ms per 1,000 bars before the signals.
                self._deferred.append(partial(_observe_each, self.hooks.on_features, share, len(whole)))
                self._record(whole)
                self._wave_matrix = matrix  # the wave's rows, in order: no stack before the predict
                return folded, whole
            banked = [(k, bar) for k, bar, _ in admitted]
        else:
            banked = [
                (k, bar)
                for k, bar, state in admitted
                if state.stream is not None and stream_of(state.token) is state.stream
            ]
            if banked:
                began = time.perf_counter()
                matrix, errors = self.bank.update_many(
                    [b.candle.instrument_token for _, b in banked], [b for _, b in banked]
                )
                share = (time.perf_counter() - began) / len(banked)
        if banked:
            for j, (k, _) in enumerate(banked):
                err = errors[j]
                rows[k] = err if err is not None else matrix[j]
        self._wave_matrix = None
        out: list[tuple[int, tuple[int, datetime, np.ndarray]]] = []
        done: list[tuple[InstrumentState, Bar, np.ndarray]] = []
        on_features = self.hooks.on_features
        for k, bar, state in admitted:
            got = rows.get(k)
            if got is not None and not isinstance(got, DataValidationError):  # the bank's row
                on_features(share)
            else:
                began = time.perf_counter()
                try:
                    if isinstance(got, DataValidationError):
                        raise got
                    got = self._features(state, bar)
                except DataValidationError as exc:  # a bad bar must never stop the pipeline
                    self.errors += 1
                    self.hooks.on_tick_rejected(f"bar:{type(exc).__name__}")
                    continue
                on_features(time.perf_counter() - began)
            done.append((state, bar, got))
            out.append((k, (bar.instrument_token, bar.time, got)))
        self._record(done)
        return out, done

    def _score(
        self,
        folded: Sequence[tuple[int, datetime, np.ndarray]],
        rows: Sequence[np.ndarray] | np.ndarray,
        *,
        report_later: bool = False,
    ) -> list[Signal | None]:
        tokens, times = [f[0] for f in folded], [f[1] for f in folded]
        return self._score_columns(tokens, times, rows, report_later=report_later)

    def _score_columns(
        self,
        tokens: Sequence[int],
        times: Sequence[datetime],
        rows: Sequence[np.ndarray] | np.ndarray,
        *,
        report_later: bool = False,
    ) -> list[Signal | None]:
        """The signals of bars given as columns (instrument, open instant, feature row per bar)."""
        began = time.perf_counter()
        many = getattr(self.step, "many", None)
        if many is not None and len(tokens) > 1:
            matrix = rows if isinstance(rows, np.ndarray) else np.stack(list(rows))
            signals: list[Signal | None] = many(tokens, times, matrix)
        else:  # a plain step callable (tests, custom steps): one call per bar
            signals = [self.step(t, bt, row) for t, bt, row in zip(tokens, times, rows, strict=True)]
        spent = time.perf_counter() - began
        # The histogram counts bars: each bar gets its share of the batched call.
        report = partial(_observe_each, self.hooks.on_prediction, spent / len(tokens), len(tokens))
        if report_later:  # with the rest of the minute, after the signals (see _fold_wave)
            self._deferred.append(report)
        else:
            report()
        return signals

    def _emit_many(self, signals: Sequence[Signal | None], closed_at: float) -> Sequence[Signal | None]:
        """:meth:`_emit` of each signal, their rows queued in one put (same rows, same order)."""
        fired = [s for s in signals if s is not None]
        if fired:
            self.signals += len(fired)
            self.put("signals", list(map(_new_pending, fired, repeat(closed_at, len(fired)))))
            if self.on_signal is not None:
                for signal in fired:
                    self.on_signal(signal, closed_at)
        return signals

    def _emit(self, signal: Signal | None, closed_at: float) -> Signal | None:
        if signal is None:
            return None
        self.signals += 1
        self.put("signals", [PendingSignal(signal, closed_at)])
        if self.on_signal is not None:
            self.on_signal(signal, closed_at)
        return signal

    def _admit(self, bar: Bar) -> InstrumentState | None:
        """The instrument's state (opened empty for a new one), or None for a duplicate bar."""
        token = bar.instrument_token
        state = self._states.get(token)
        if state is None:
            state = self.open_instrument(token, pd.DataFrame(columns=list(_BAR_KEYS)))
        if state.last_time is not None and bar.time <= state.last_time:
            return None
        return state

    def _fold(self, bar: Bar) -> tuple[int, datetime, np.ndarray] | None:
        """Features, candle and roll-ups of one bar, queued; (token, bar time, feature row) or None."""
        state = self._admit(bar)
        if state is None:
            return None
        began = time.perf_counter()
        try:
            row = self._features(state, bar)
        except DataValidationError as exc:  # a bad bar must never stop the pipeline
            self.errors += 1
            self.hooks.on_tick_rejected(f"bar:{type(exc).__name__}")
            return None
        self._commit(state, bar, row)
        self.hooks.on_features(time.perf_counter() - began)
        return bar.instrument_token, bar.time, row

    def _commit(self, state: InstrumentState, bar: Bar, row: np.ndarray) -> None:
        """Record a folded bar: session state, candle, roll-ups and feature row queued."""
        self._record([(state, bar, row)])
        self._commit_many([(state, bar, row)])

    def _record(self, done: Sequence[tuple[InstrumentState, Bar, np.ndarray]]) -> None:
        """Folded bars (at most one per instrument) become their instruments' newest: the next bar's
        duplicate check and a rewind read this at once, even while the rest is deferred."""
        record = self._gate.record_one
        for state, bar, _ in done:
            state.last_time = bar.candle.time
            state.session.push(bar)
            record(state.token, state.last_time)
        self.bars += len(done)

    def _commit_many(self, done: Sequence[tuple[InstrumentState, Bar, np.ndarray]]) -> None:
        """Queue what folded bars (at most one per instrument, already :meth:`_record`-ed) produce:
        candles, roll-ups (one :meth:`RollupBuilder.on_candles` call for all of them) and feature
        rows, in the given order per table."""
        if not done:
            return
        self._queue(done, self._rolled_up([bar for _, bar, _ in done]))

    def _rolled_up(self, bars: Sequence[Bar]) -> list[list[Candle]]:
        """The roll-ups each bar closes (one :meth:`RollupBuilder.on_candles` call for all of them)."""
        try:
            return self.rollup.on_candles([bar.candle for bar in bars])
        except Exception:  # the builder checks its input before it changes any bucket: retry one by one
            return [self._rollups_of(bar) for bar in bars]

    def _queue(
        self, done: Sequence[tuple[InstrumentState, Bar, np.ndarray]], rolled: Sequence[Sequence[Candle]]
    ) -> None:
        """:meth:`_commit_many`'s rows, the roll-ups each bar closed given."""
        candles: list[object] = []
        days: dict[datetime, date] = {}  # a minute's bars and roll-ups share a few instants

        def day_of(t: datetime) -> date:
            day = days.get(t)
            if day is None:
                day = days[t] = t.astimezone(IST).date()
            return day

        minutes: dict[datetime, int] = {}  # whole minutes since the epoch, once per instant

        for (state, bar, _), closed in zip(done, rolled, strict=True):
            candles.append(bar)
            minute = minutes.get(bar.time)
            if minute is None:
                minute = minutes[bar.time] = int(bar.time.timestamp()) // 60
            if (minute + state.pack_phase) % PACK_EVERY == 0:  # off the hot path, staggered
                state.session.pack()
            if not closed:
                continue
            # A bucket left open at the end of an earlier day of the stored history (its last minutes
            # had no trades) is closed by this day's first bar; that day's roll-ups are the historical
            # mode's, already stored: only this day's are written here. The timeframe scorers get every
            # closed bar: they opened on the stored bars before the bucket still open (stored_history).
            day = day_of(bar.time)
            bars = [Bar(c) for c in closed]
            candles += [b for b in bars if day_of(b.candle.time) == day]
            if self.timeframes:
                self._rolled.extend(bars)
        self.put("candles", candles)
        self.put("features", [FeatureRow(bar.instrument_token, bar.time, row) for _, bar, row in done])

    def _rollups_of(self, bar: Bar) -> list[Candle]:
        try:
            return self.rollup.on_candle(bar.candle)
        except Exception:  # a roll-up is a by-product: it must never cost the bar its features or signal
            self.errors += 1
            logger.exception("live: roll-ups of {} at {} failed", bar.instrument_token, bar.time)
            return []

    def _features(self, state: InstrumentState, bar: Bar) -> np.ndarray:
        if state.stream is None:
            frame = pd.DataFrame([{k: getattr(bar, k) for k in _BAR_KEYS}], columns=list(_BAR_KEYS))
            frame["time"] = pd.to_datetime(frame["time"], utc=True).dt.tz_convert(IST)
            state.stream = self.calculator.open_stream(frame)
            self.bank.attach(state.token, state.stream)
            self._gate_put(state)
            values = self.calculator.compute(frame).iloc[0, 1:].to_numpy(dtype=np.float64)
            return np.asarray(values, dtype=np.float64)
        return state.stream.update(bar)

    # -- corrections -----------------------------------------------------------------------------
    def rewind(
        self,
        token: int,
        bars: Sequence[Bar],
        closed_at: float | None = None,
        *,
        since: datetime | None = None,
    ) -> int:
        """Replace the instrument's bars from ``since`` (default: the first of ``bars``) on and replay.

        ``bars`` is the full corrected sequence from that instant (sorted); session bars from then on
        that are not in it are dropped (a bar REST does not have). Returns the number of bars replayed.
        """
        if since is None:
            if not bars:
                return 0
            since = bars[0].time
        self.settle()  # the minutes before the correction are complete first (roll-ups, scorers)
        state = self._states[token]
        first = since
        frame = state.frame_before(first)
        if self._rollup_span:
            self.rollup.restore(token, state.candles_before(first, self._rollup_span))
        state.session.truncate(state.session.before(first))
        state.stream = self.calculator.open_stream(frame) if len(frame) else None
        if state.stream is not None:
            self.bank.attach(token, state.stream)  # the re-opened stream takes over the bank row
        state.last_time = frame["time"].iloc[-1].to_pydatetime() if len(frame) else None
        self._gate_put(state)
        self._prime(token, frame)
        self.rewinds += 1
        for scorer in self.timeframes:
            scorer.rewind(token, first)
        for bar in bars:
            self.process(bar, closed_at)
        return len(bars)
