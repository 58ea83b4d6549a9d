"""`tickwise bench live`: candle-close -> signal latency and sustained ticks/s of the live pipeline.

Self-contained and reproducible (no broker account; a database only with ``db=True``):

* **Market.** The simulator's own market model (:class:`Universe` of N equities, :class:`Market` with
  a fixed seed) provides each instrument's 1m candles of the previous trading days (the stored history
  the streams are opened on, >= ``calculator.warmup`` bars) and the full-mode snapshots of the measured
  minutes of the next day. It is built in a spawned child (:mod:`tickwise.bench.live_market`), which also
  trains the model and encodes the frames, and hands them over in scratch files read one instrument's
  history and one frame at a time: the process that runs the engine holds what a live shard holds, so
  its RSS figures (``rss_process: "engine"``) are a shard's. ``market_in_process`` builds it in this
  process instead and holds the frames in memory (``rss_process: "engine+market"``, close to the fifth
  session's layout: the market is released once its files are written, before the engine opens).
* **Feed.** The snapshots are grouped per exchange second and encoded into one binary Kite frame per
  second with the real codec (as the WebSocket batches them); frames are encoded before timing.
* **Pipeline.** Each frame is decoded with :func:`decode_frame` and handed, as one batch, to the real
  consumer step :meth:`TickConsumer.consume_batch` (``TickValidator`` -> ``CandleBuilder`` ->
  :class:`LiveEngine`: feature stream update, roll-ups, :class:`SignalStep` prediction and signal rule)
  with the real :class:`BufferedWriter` (signals flushed at once and ahead of the bulk tables) behind it.
* **Sinks.** ``db=True`` (``tickwise bench live``, ``--db``): the live pipeline's own table sinks
  (:func:`tickwise.pipelines.live.sinks.table_sinks`: ticks, candles, features and signals through the
  Timescale repositories) write into the real hypertables, and a bar's latency ends when its signal is
  COMMITTED (as the live ``signals.latency_ms``). The bench's rows are isolated by time: the measured
  session is a day of 1989 (``BENCH_DAY``) and every row it writes lies in ``DB_WINDOW``
  (1989-06-01 .. 1989-09-01 UTC; no market data that old exists, and the ingest bench's 1990 window is
  disjoint), which is emptied (``drop_chunks``, then ``DELETE`` of rows of chunks straddling the
  window) before and after the run; signals also carry ``model_version = 'bench-trained'``. Only the
  ``feature_sets`` row of the feature set (removed again when the bench created it) and the feature
  columns of ``features`` (added as the live pipeline adds them) outlive the run. ``db=False``
  (``--no-db``): in-memory sinks; latency ends at the signal handed to the signal sink.
* **Model.** A LightGBM model pair of production shape (long/short boosters, :func:`fit_booster`:
  every calculator feature, the default ``num_boost_round`` of 200 trees per side, the training
  defaults' tree parameters) trained on the real feature set and real triple-barrier labels
  (``core.labels.label_both_sides``) of the warm-up candles of a few instruments (``"model":
  "bench-trained"``; ``model_trees`` reports its tree count): the prediction cost per bar is that of
  a production model, not of the champion of a database.

Frames are replayed one frame (one simulated second) per consumer batch, so a bar's latency includes
the processing of the ticks and bars ahead of it in its second, as in the live consumer when it keeps
up; ``max_second_ms`` (the slowest simulated second) shows whether it would (it must stay below
1000 ms to keep up in real time). After each frame the consumer would be idle until the next second:
the writer gets that idle time (``1 s - processing``) to write everything pending (as at real pace
with its 0.1 s flush interval); the idle time left once it is drained is skipped, not slept.

Latency per closed bar (``latency_ms_*``): from the batch whose tick closed the bar (the consumer's
``closed_at``, as in the session) to the signal committed in the database (``db``) or handed to the
signal sink (no db) after the writer's flush; ``ready_ms_*``: to the signal object produced by the
engine (before the writer).

**Minute end -> signal** (``minute_end_ms_*``, what a trader feels): from the end of the bar's minute
on the exchange clock to its signal committed, candle-close rule included. Real time runs on a virtual
wall clock (the process's time plus the idle time the replay skips), on which the frame of exchange
second ``s`` starts being processed at ``s`` (network delay not modelled: add your feed's delay). Bars
close as in the session: on the instrument's next tick, once the feed has moved to a later minute and
``feed_close_margin_s`` has passed (the session's clock task would act then; the replay acts at that
instant of the idle time), else on the clock after the grace. ``late_after_feed_close`` counts the ticks
that early close made late (repaired from REST in the session).

``shards`` > 1 (:func:`run_sharded_live_bench`): the instruments are split as ``tickwise live --shards``
splits them and each share is replayed in its own process at the same time (as the shard processes
run); latency percentiles are over the bars of all shards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import hashlib
import math
import resource
import sys
import time
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tickwise.adapters.kite.codec import DecodeStats, decode_frame, encode_frame
from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.feature_repository import TimescaleFeatureRepository
from tickwise.adapters.timescale.pool import open_pool
from tickwise.adapters.timescale.signal_repository import TimescaleSignalRepository
from tickwise.adapters.timescale.tick_repository import TimescaleTickRepository
from tickwise.bench.live_market import FrameFile, MarketFiles, prepare_market
from tickwise.bench.minute_parts import MinuteParts
from tickwise.bench.resident import ResidentMemory, resident_now
from tickwise.bootstrap.live_imports import leave_out_pyarrow, pyarrow_imported
from tickwise.core.candles import CandleBuilder, ClosedBars
from tickwise.core.features.bank import block_cpu_s
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.model import ModelArtifact, fit_booster, lgb_params
from tickwise.core.predictor import Predictor
from tickwise.core.signals import model_signal_generator
from tickwise.core.text_booster import TextBooster, lightgbm_probe_digest
from tickwise.core.tick_validator import TickValidator
from tickwise.core.tree_eval import pool_cpu_s
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE
from tickwise.domain.signal import Signal
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST
from tickwise.observability.hooks import NullHooks
from tickwise.pipelines.live.consumer import TickConsumer
from tickwise.pipelines.live.engine import FeatureRow, LiveEngine, PendingSignal, SignalStep
from tickwise.pipelines.live.feed_watch import FeedWatch
from tickwise.pipelines.live.latency import LatencyLog, percentiles
from tickwise.pipelines.live.repair import RepairQueue
from tickwise.pipelines.live.shards import predict_threads as live_predict_threads
from tickwise.pipelines.live.sinks import LiveRepositories, signal_sink, table_sinks
from tickwise.pipelines.live.writer import BufferedWriter, WriteFn

if TYPE_CHECKING:  # the simulated market is built in its own process (bench/live_market.py)
    from tickwise.adapters.kite.simulator.market import Market

SESSION_BARS = 375
# The default model_training.num_boost_round (TrainConfig().num_boost_round, asserted equal by
# tests/unit/live/test_bench_live_paths.py): a constant, so the replay process never imports the training code.
PRODUCTION_ROUNDS = 200
# The simulated market's Monday whose session is measured (the history is the days before it) ...
MARKET_DAY = date(2026, 1, 5)
# ... replayed as this Monday, far in the past so that, with ``db``, the bench's rows can never collide
# with real data (see DB_WINDOW). Every timestamp is moved back by SHIFT, a whole number of weeks (same
# weekdays and IST times; no NSE holiday is listed for 1989, so every weekday is a session).
BENCH_DAY = date(1989, 7, 10)
SHIFT = MARKET_DAY - BENCH_DAY
DB_WINDOW = (datetime(1989, 6, 1, tzinfo=UTC), datetime(1989, 9, 1, tzinfo=UTC))
DB_TABLES = ("ticks", "candles", "features", "signals")


def _cpu_now() -> float:
    """This thread's CPU clock plus what the scoring threads spent on its row blocks (the predict's and
    the feature bank's): a threaded step's CPU still counts in the step that asked for it (one replay
    thread runs the engine)."""
    return time.thread_time() + pool_cpu_s() + block_cpu_s()


class _ReplayClock:
    """The market clock of the replay: the simulated exchange time of the frame being replayed."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return time.monotonic()


class _KeptLatencies(LatencyLog):
    """The signal sink's latency log, keeping the values (pooled across shards)."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: array[float] = array("d")

    def add(self, ms: float) -> None:
        super().add(ms)
        self.kept.append(ms)

    def add_many(self, values_ms: Sequence[float]) -> None:
        super().add_many(values_ms)
        self.kept.extend(values_ms)


class _VirtualWall:
    """Real seconds of the replay: ``time.time()`` plus the idle time skipped between frames."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance_to(self, instant: float) -> None:
        self.offset += max(0.0, instant - self())


class _CountingSignals:
    """An in-memory signals repository (``add_many`` counts; no database)."""

    def __init__(self) -> None:
        self.rows = 0

    async def add_many(self, signals: Sequence[Signal], latency_ms: Sequence[float] | None = None) -> int:
        self.rows += len(signals)
        return len(signals)


async def _count(rows: list[object]) -> int:
    return len(rows)


def _current_rss_mb() -> float | None:
    """Resident set size now (Linux ``/proc``), or None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * resource.getpagesize() / (1024 * 1024), 1)


def _release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc keeps them otherwise), so the
    resident figure shows what is held, not what was once allocated."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: the figure includes freed pages
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class _MemoryLog:
    """Resident memory at the bench's checkpoints (MB), to tell the pipeline's memory from the bench's;
    ``parts`` splits each into the process's own pages and the libraries' file pages (bench/resident.py)."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.parts: dict[str, ResidentMemory] = {}

    def mark(self, name: str, *, release: bool = True) -> None:
        if release:
            _release_freed_memory()
        now = _current_rss_mb()
        if now is not None:
            self.marks[name] = now
        parts = resident_now()
        if parts is not None:
            self.parts[name] = parts

    def parts_report(self, count: int) -> dict[str, Any]:
        """The split of every checkpoint and of what is held at the last one (per 1,000 of ``count``
        instruments too): ``anon`` is the process's own memory, ``file`` the libraries' resident file
        pages (shared, clean, and more of them in a freshly installed virtualenv), ``pss`` the shares."""
        if not self.parts:
            return {}
        last = list(self.parts.values())[-1]
        growth: dict[str, dict[str, float | None]] = {}
        earlier: ResidentMemory | None = None
        for name, parts in self.parts.items():
            growth[name] = parts.as_dict() if earlier is None else parts.minus(earlier)
            earlier = parts
        return {
            "rss_parts_mb": {name: parts.as_dict() for name, parts in self.parts.items()},
            "rss_parts_growth_mb": growth,
            "rss_anon_held_mb": last.anon,
            "rss_file_held_mb": last.file,
            "pss_held_mb": last.pss,
            "rss_anon_held_mb_per_1000": round(last.anon * 1000.0 / count, 1),
        }

    def breakdown(self) -> dict[str, float]:
        """Growth between consecutive checkpoints (the first is the process after its imports)."""
        out: dict[str, float] = {}
        last = None
        for name, value in self.marks.items():
            out[name] = round(value if last is None else value - last, 1)
            last = value
        return out


def _train_model_strings(
    instruments: int, seed: int, train_tokens: list[int], hist_days: list[date], rounds: int
) -> tuple[dict[int, tuple[str, str | None]], int]:
    """In a child process: the bench model trained as :func:`train_bench_model` trains it, returned as
    LightGBM model strings (training's memory stays in the child, as a live process loads a trained
    model and never trains one)."""
    from tickwise.adapters.kite.simulator.market import Market
    from tickwise.adapters.kite.simulator.universe import Universe

    universe = Universe(instruments, today=MARKET_DAY)
    market = Market(universe, seed=seed, cache_size=64)
    calc = FeatureCalculator()
    artifact, rows = train_bench_model(
        calc, [history_frame(market, t, hist_days, SHIFT) for t in train_tokens], rounds=rounds
    )
    return {
        side: (b.model_to_string(), lightgbm_probe_digest(b)) for side, b in artifact.boosters.items()
    }, rows


def _loaded_artifact(calc: FeatureCalculator, files: MarketFiles) -> ModelArtifact:
    """The bench model as a live process loads a bundle: the text and LightGBM's probe digest (trained
    in the market's process: :func:`_train_model_strings`), no LightGBM import."""
    return ModelArtifact(
        version="bench-trained",
        boosters={side: TextBooster(text, probe) for side, (text, probe) in files.model_strings.items()},
        feature_names=tuple(calc.names),
        feature_set=calc.feature_set,
        label_spec=files.label_spec,
    )


def history_frame(
    market: Market, token: int, days: list[date], shift: timedelta = timedelta(0)
) -> pd.DataFrame:
    """The 1m candles of ``token`` on ``days`` (oldest first) as the candle repository returns them.

    Times are moved back by ``shift`` (a whole number of days).
    """
    opens, highs, lows, closes, volumes, times = [], [], [], [], [], []
    minute_ns = 60_000_000_000
    for day in days:
        c = market.minute_candles(token, day)
        start = pd.Timestamp(
            datetime.combine(day, datetime.min.time(), tzinfo=IST).replace(hour=9, minute=15) - shift
        )
        times.append(start.value + np.arange(SESSION_BARS, dtype=np.int64) * minute_ns)
        opens.append(c.open)
        highs.append(c.high)
        lows.append(c.low)
        closes.append(c.close)
        volumes.append(c.volume)
    return pd.DataFrame(
        {
            "time": pd.to_datetime(np.concatenate(times), utc=True),
            "open": np.concatenate(opens).astype(np.float64),
            "high": np.concatenate(highs).astype(np.float64),
            "low": np.concatenate(lows).astype(np.float64),
            "close": np.concatenate(closes).astype(np.float64),
            "volume": np.concatenate(volumes).astype(np.float64),
            "oi": None,
            "obi_5": np.nan,  # candles backfilled through REST carry no book
        }
    )


def repository_shaped(frame: pd.DataFrame, token: int) -> pd.DataFrame:
    """``frame`` as ``TimescaleCandleRepository.read_frame`` returns it to a live process: every column
    of the table, ``oi`` nullable, and the ``timeframe``/``source`` text as one new string per row (as
    asyncpg decodes them), so what the engine keeps of it is measured as in a real session."""
    n = len(frame)
    out = frame.copy()
    out.insert(0, "instrument_token", np.full(n, token, dtype=np.int64))
    out.insert(1, "timeframe", ["".join(("1", "m")) for _ in range(n)])
    out["volume"] = out["volume"].astype(np.int64)
    out["oi"] = pd.array([None] * n, dtype="Int64")
    out.insert(len(out.columns) - 1, "source", ["".join(("histor", "ical")) for _ in range(n)])
    return out


def train_bench_model(
    calc: FeatureCalculator,
    histories: list[pd.DataFrame],
    rounds: int = PRODUCTION_ROUNDS,
    seed: int = 7,
) -> tuple[ModelArtifact, int]:
    """A long/short LightGBM pair of production shape on the real features and triple-barrier labels.

    Production shape: every feature of the calculator (as ``tickwise train`` feeds them; the order
    book's ``obi_5`` is NaN on REST-backfilled history and LightGBM treats it as missing), the
    default ``num_boost_round`` (``model_training.num_boost_round``, 200) trained in full without
    early stopping, the training defaults' tree parameters (``TUNED_DEFAULTS``), both sides. The
    prediction cost per bar is then that of a production model, not of a toy. Returns the artifact
    and the number of training rows.
    """
    from tickwise.core.fitting import TUNED_DEFAULTS  # training: in the child process only
    from tickwise.core.labels.events import label_both_sides
    from tickwise.core.labels.spec import LabelSpec

    spec = LabelSpec()
    feats, labs = [], []
    for h in histories:
        f = calc.compute(h)
        f["time"] = pd.to_datetime(f["time"], utc=True)
        lab, _ = label_both_sides(h, spec)
        lab["time"] = pd.to_datetime(lab["time"], utc=True)
        feats.append(f)
        labs.append(lab[["time", "side", "label"]])
    names = list(calc.names)
    boosters = {}
    n_rows = 0
    for side in (1, -1):
        rows = []
        for f, lab in zip(feats, labs, strict=True):
            part = f.merge(lab[lab["side"] == side], on="time", how="inner")
            rows.append(part)
        data = pd.concat(rows, ignore_index=True)
        x = data[names].to_numpy(dtype=np.float64)
        # Warm rows only (as training drops the warm-up); NaN of the order book stays missing.
        keep = np.isfinite(np.delete(x, names.index("obi_5"), axis=1)).all(axis=1)
        x, y = x[keep], (data["label"].to_numpy()[keep] == 1).astype(np.int8)
        n_rows += len(y)
        params = lgb_params(TUNED_DEFAULTS, seed)  # production's tree parameters, unchanged
        boosters[side] = fit_booster(x, y, params=params, num_boost_round=rounds, feature_names=names)
    artifact = ModelArtifact(
        version="bench-trained",
        boosters=boosters,
        feature_names=tuple(names),
        feature_set=calc.feature_set,
        label_spec=spec.to_dict(),
    )
    return artifact, n_rows


def _frames(
    market: Market, tokens: list[int], after: datetime, until: datetime, shift: timedelta
) -> tuple[list[tuple[datetime, bytes]], int]:
    """One encoded full-mode frame per exchange second (all instruments' snapshots of that second).

    The market's snapshots between ``after`` and ``until`` with their timestamps moved back by ``shift``.
    """
    per_second: dict[datetime, list[Tick]] = defaultdict(list)
    for token in tokens:
        for tick in market.snapshots_between(token, after, until, spikes=False):
            ts = (tick.exchange_timestamp or after) - shift
            ltt = tick.last_trade_time - shift if tick.last_trade_time else None
            per_second[ts].append(dataclasses.replace(tick, exchange_timestamp=ts, last_trade_time=ltt))
    frames = []
    n = 0
    for second in sorted(per_second):
        ticks = per_second[second]
        for i in range(0, len(ticks), 0xFFFF):
            frames.append((second, encode_frame(ticks[i : i + 0xFFFF], "full")))
        n += len(ticks)
    return frames, n


async def _drain(
    writer: BufferedWriter, flushing: asyncio.Task[bool] | None, budget_s: float
) -> asyncio.Task[bool] | None:
    """Let the writer write what is pending for at most ``budget_s`` (the consumer's idle time).

    Returns the flush still running when the budget ran out (it goes on in the background, as the
    writer would while the consumer handles the next frame), else None.
    """
    await asyncio.sleep(0)  # the urgent signals' own flush starts first
    if flushing is None and (writer.pending_rows() or writer.spilled_files()):
        flushing = asyncio.create_task(writer.flush())
    if flushing is not None:
        await asyncio.wait({flushing}, timeout=max(budget_s, 0.0))
        if flushing.done():
            flushing = None
    return flushing


@dataclass
class _Bench:
    """The live pipeline parts the replay drives: the consumer step, the engine and the writer."""

    consumer: TickConsumer
    engine: LiveEngine
    writer: BufferedWriter
    clock: _ReplayClock
    close_at: datetime  # when the clock has closed every measured bar (until + grace)
    warm_s: float
    wall: _VirtualWall
    # The first frame's exchange second and the virtual instant its processing started: the virtual
    # instant of any exchange instant (one frame per second at live pace).
    origin: tuple[datetime, float] | None = None
    # Per-bar figures as float64 arrays (8 B a bar, not a list's 32): the bench's own memory counts in
    # the engine process's RSS, which a longer replay must not inflate.
    minute_end_ms: array[float] = dataclasses.field(default_factory=lambda: array("d"))
    # This thread's CPU clock at the start of the consumer step running now (the step that closes a
    # bar starts at or before its close), and each signal's CPU time from there to the sink.
    step_cpu0: float = 0.0
    cpu_latency_ms: array[float] = dataclasses.field(default_factory=lambda: array("d"))
    # The same from this thread's clock alone: without the scoring threads' share of a threaded
    # predict (what the path costs the engine's thread when those threads have a core of their own).
    step_thread0: float = 0.0
    thread_latency_ms: array[float] = dataclasses.field(default_factory=lambda: array("d"))
    parts: MinuteParts | None = None  # the per-minute parts (bench/minute_parts.py)

    def step(self) -> None:
        """A consumer step (a tick batch, a feed or clock close) starts now."""
        if self.parts is not None:
            self.parts.step_began()
        self.step_thread0 = time.thread_time()
        self.step_cpu0 = self.step_thread0 + pool_cpu_s() + block_cpu_s()

    def record_commits(self, rows: Sequence[Any]) -> None:
        """Signals just committed: minute end (exchange clock, mapped to the wall) -> now."""
        spent = (_cpu_now() - self.step_cpu0) * 1000.0
        self.cpu_latency_ms.extend([spent] * len(rows))
        thread_ms = (time.thread_time() - self.step_thread0) * 1000.0
        self.thread_latency_ms.extend([thread_ms] * len(rows))
        if self.parts is not None:
            for minute in {p.signal.time for p in rows}:
                self.parts.latency(minute, thread_ms)
        if self.origin is None:
            return
        now = self.wall()
        second0, v0 = self.origin
        for p in rows:
            minute_end = p.signal.time + timedelta(minutes=1)
            self.minute_end_ms.append((now - (v0 + (minute_end - second0).total_seconds())) * 1000.0)


async def _replay(bench: _Bench, frames: Iterable[tuple[datetime, bytes]]) -> dict[str, Any]:
    stats = DecodeStats()
    decode_s = consume_s = 0.0
    max_second = 0.0
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    writer = bench.writer
    writer.start()
    flushing: asyncio.Task[bool] | None = None
    wall = bench.wall
    consumer = bench.consumer
    for second, frame in frames:
        if bench.origin is None:
            bench.origin = (second, wall())
        second0, v0 = bench.origin
        # Frames exist only for seconds with ticks: the frame of second s starts at s on the wall.
        # Meanwhile the session's clock task would have closed what was due (feed margin, grace).
        arrives = v0 + (second - second0).total_seconds()
        due = consumer.feed_close_due_at()
        if due is not None and due < arrives:
            flushing = await _drain(writer, flushing, due - wall())
            wall.advance_to(due)
            bench.step()
            consumer.close_on_feed(wall())
            await consumer.settle()
        flushing = await _drain(writer, flushing, arrives - wall())
        wall.advance_to(arrives)
        bench.clock.current = second
        bench.step()
        consumer.close_due(second)  # the clock's grace, at this frame's resolution
        await consumer.settle()
        t0 = time.perf_counter()
        v_start = wall()
        ticks = decode_frame(frame, stats)
        t1 = time.perf_counter()
        bench.step()
        consumer.consume_batch(ticks)  # the consumer's per-batch step (validator, builder, engine)
        # The rest of the minute the batch closed, after its signals' commit (as the session's
        # consumer does): part of this second's processing.
        await consumer.settle()
        t2 = time.perf_counter()
        decode_s += t1 - t0
        consume_s += t2 - t1
        max_second = max(max_second, t2 - t0)
        # The session's clock task closes the bars the feed moved past once the margin has passed:
        # within this second's idle time, at that instant.
        due = consumer.feed_close_due_at()
        if due is not None and due < v_start + 1.0:
            flushing = await _drain(writer, flushing, due - wall())
            wall.advance_to(due)
            bench.step()
            consumer.close_on_feed(wall())
            await consumer.settle()
        # The consumer is idle until the next frame when it keeps up (max_second_ms < 1000): the writer
        # writes meanwhile (not counted as processing time); the rest of the idle time is skipped.
        flushing = await _drain(writer, flushing, v_start + 1.0 - wall())
    if flushing is not None:
        await flushing
    # Bars whose instrument sent no later tick close on the clock (as the session's clock task would).
    bench.step()
    bench.consumer.close_due(bench.close_at)
    await bench.consumer.settle()
    ok = await writer.close(timeout_s=30.0)
    return {
        "decode_s": decode_s,
        "consume_s": consume_s,
        "max_second_s": max_second,
        "cpu_s": time.process_time() - cpu0,
        "wall_s": time.perf_counter() - wall0,
        "writer_ok": ok,
    }


async def _clear_window(pool: Any, tokens: Sequence[int] | None = None) -> None:
    """Remove every row of the bench window from the live tables (whole chunks, then straddlers);
    with ``tokens`` (one shard of a sharded run, the others writing meanwhile) only those rows."""
    lo, hi = DB_WINDOW
    async with pool.acquire() as conn:
        if tokens is not None:
            for table in DB_TABLES:
                await conn.execute(
                    f"DELETE FROM {table} WHERE time >= $1 AND time < $2 AND instrument_token = ANY($3::bigint[])",  # nosec B608: table names come from this module's fixed tuple; values are bound
                    lo,
                    hi,
                    list(tokens),
                )
            return
        for table in DB_TABLES:
            await conn.execute(
                f"SELECT drop_chunks('{table}', older_than => $1::timestamptz, newer_than => $2::timestamptz)",
                hi,
                lo,
            )
            await conn.execute(f"DELETE FROM {table} WHERE time >= $1 AND time < $2", lo, hi)  # nosec B608: table names come from this module's fixed tuple; times are bound


async def window_rows(pool: Any, tokens: Sequence[int] | None = None) -> dict[str, int]:
    """Rows per live table inside the bench window (of ``tokens`` only, when given)."""
    lo, hi = DB_WINDOW
    out = {}
    async with pool.acquire() as conn:
        for table in DB_TABLES:
            q = f"SELECT count(*) FROM {table} WHERE time >= $1 AND time < $2"  # nosec B608: table names come from this module's fixed tuple; times are bound
            if tokens is None:
                out[table] = int(await conn.fetchval(q, lo, hi))
            else:
                q += " AND instrument_token = ANY($3::bigint[])"
                out[table] = int(await conn.fetchval(q, lo, hi, list(tokens)))
    return out


async def _replay_db(
    build: Callable[[dict[str, WriteFn]], _Bench],
    frames: Iterable[tuple[datetime, bytes]],
    calc: FeatureCalculator,
    latencies: LatencyLog,
    url: str,
    pool_size: int,
    wall: _VirtualWall,
    tokens: Sequence[int] | None = None,
) -> tuple[_Bench, dict[str, Any]]:
    """:func:`_replay` with the Timescale repositories behind the writer; counts and removes the rows."""
    async with open_pool(url, min_size=1, max_size=pool_size) as pool:
        await _clear_window(pool, tokens)  # rows a crashed earlier run may have left
        async with pool.acquire() as conn:
            had_set = await conn.fetchval(
                "SELECT count(*) FROM feature_sets WHERE feature_set = $1", calc.feature_set
            )
        features = TimescaleFeatureRepository(pool)
        repos = LiveRepositories(
            ticks=TimescaleTickRepository(pool),
            candles=TimescaleCandleRepository(pool),
            features=features,
            signals=TimescaleSignalRepository(pool),
        )
        # Columns exist in a live deployment (the historical run adds them): not part of the timing.
        await features.ensure_columns(calc.names)
        sinks = table_sinks(
            repos,
            names=calc.names,
            feature_set=calc.feature_set,
            hooks=NullHooks(),
            latencies=latencies,
        )
        sinks["signals"] = signal_sink(repos.signals, NullHooks(), latencies, wall=wall)
        bench = build(sinks)
        try:
            run = await _replay(bench, frames)
            run["db_rows"] = await window_rows(pool, tokens)
        finally:
            await _clear_window(pool, tokens)
            if not had_set and tokens is None:  # a shard leaves it: the others may still write
                async with pool.acquire() as conn:
                    await conn.execute("DELETE FROM feature_sets WHERE feature_set = $1", calc.feature_set)
        run["db_rows_left"] = sum((await window_rows(pool, tokens)).values())
    return bench, run


class RowDigests:
    """SHA-256 of every row the in-memory sinks received, per table, in the order written: two runs of
    one replay (old and new code) queued the same candles, feature rows and signals, in the same order,
    exactly when their digests agree. A signal is hashed without its ``latency_ms`` (a measurement)."""

    TABLES = ("candles", "features", "signals")

    def __init__(self) -> None:
        self._hashes = {t: hashlib.sha256() for t in self.TABLES}

    def wrap(self, table: str, sink: WriteFn) -> WriteFn:
        async def write(rows: list[Any]) -> int:
            n = await sink(rows)
            self.add(table, rows)
            return n

        return write

    def add(self, table: str, rows: Sequence[object]) -> None:
        update = self._hashes[table].update
        for row in rows:
            update(_row_bytes(row))

    def hexdigests(self) -> dict[str, str]:
        return {t: h.hexdigest() for t, h in self._hashes.items()}


def _row_bytes(row: object) -> bytes:
    """One queued row as bytes: its fields' exact ``repr`` (floats round-trip), arrays by their bytes."""
    if isinstance(row, Bar):
        c = row.candle
        fields: tuple[object, ...] = (
            c.instrument_token, str(c.timeframe), c.time.isoformat(), c.open, c.high, c.low, c.close,
            c.volume, c.oi, c.source, row.obi_5,
        )  # fmt: skip
        return repr(fields).encode()
    if isinstance(row, FeatureRow):
        return repr((row.instrument_token, row.time.isoformat())).encode() + row.values.tobytes()
    if isinstance(row, PendingSignal):
        sig = dataclasses.replace(row.signal, latency_ms=None)
        return repr(dataclasses.astuple(sig)).encode()
    raise TypeError(f"no digest for a {type(row).__name__} row")


async def _replay_memory(
    build: Callable[[dict[str, WriteFn]], _Bench],
    frames: Iterable[tuple[datetime, bytes]],
    latencies: LatencyLog,
    wall: _VirtualWall,
    digests: RowDigests | None = None,
) -> tuple[_Bench, dict[str, Any], int]:
    """:func:`_replay` with in-memory sinks; also returns the number of signals the sink received.
    With ``digests``, every candle, feature row and signal written is hashed (after its sink)."""
    signals = _CountingSignals()
    sinks: dict[str, WriteFn] = {
        "ticks": _count,
        "candles": _count,
        "features": _count,
        "signals": signal_sink(signals, NullHooks(), latencies, wall=wall),
    }
    if digests is not None:  # the signals are hashed by the bench after their latency is taken
        sinks = {t: digests.wrap(t, w) if t in ("candles", "features") else w for t, w in sinks.items()}
    bench = build(sinks)
    run = await _replay(bench, frames)
    return bench, run, signals.rows


class PerBarEngine(LiveEngine):
    """The baseline for ``per_bar``: the minute's bars folded and scored one at a time (one stream
    update and one ``booster.predict`` per bar), as the engine did before ``process_many``."""

    def process_many(
        self, bars: Sequence[Bar], closed_at: float | None = None, *, defer: bool = False
    ) -> list[Signal | None]:
        return [self.process(bar, closed_at) for bar in bars]


def _cpu_summary(log: dict[datetime, float]) -> dict[str, float]:
    values = sorted(log.values())
    if not values:
        return {}
    return {
        "p50": round(1000.0 * values[len(values) // 2], 2),
        "max": round(1000.0 * values[-1], 2),
        "minutes": len(values),
    }


class _GcPauses:
    """The cyclic garbage collector's pauses (``gc.callbacks``): how long each took, which generation."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._began))

    def __enter__(self) -> _GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


class _MinuteCpu(LiveEngine):
    """Records the CPU time of the engine's minute step per bar minute (``minute_cpu_s``): the engine's
    own cost, which a loaded machine's wall clock hides, and the garbage collector's pauses inside it
    (``minute_gc_s``, ``minute_full_gc``: a full collection walks every tracked object of the process).
    Mixed in before the engine it times."""

    minute_cpu_s: defaultdict[datetime, float]
    minute_gc_s: defaultdict[datetime, float]
    minute_full_gc: defaultdict[datetime, int]
    gc_pauses: _GcPauses
    minute_parts: MinuteParts

    def process_many(
        self, bars: Sequence[Bar], closed_at: float | None = None, *, defer: bool = False
    ) -> list[Signal | None]:
        self.settle()  # an earlier minute's deferred rest is charged to that minute
        if bars:  # bars closed by their instruments' next ticks had no close call to open the window
            times = bars.times if isinstance(bars, ClosedBars) else [b.time for b in bars]
            self.minute_parts.open(max(times))
        cpu0 = _cpu_now()
        seen = len(self.gc_pauses.pauses)
        try:
            return super().process_many(bars, closed_at, defer=defer)
        finally:
            if bars:
                # Columns (a feed close) are read as columns: no Bar object before the signals.
                times = bars.times if isinstance(bars, ClosedBars) else [b.time for b in bars]
                self._unsettled_minute = max(times)
                self._charge(self._unsettled_minute, cpu0, seen)

    def settle(self) -> None:
        """The deferred rest of a minute (``defer=True``) is part of that minute's CPU."""
        minute = getattr(self, "_unsettled_minute", None)
        if minute is None or not self.deferred:
            super().settle()
            return
        cpu0 = _cpu_now()
        seen = len(self.gc_pauses.pauses)
        try:
            super().settle()
        finally:
            self._charge(minute, cpu0, seen)
            self.minute_parts.end_window()

    def _charge(self, minute: datetime, cpu0: float, seen: int) -> None:
        self.minute_cpu_s[minute] += _cpu_now() - cpu0
        for generation, spent in self.gc_pauses.pauses[seen:]:
            self.minute_gc_s[minute] += spent
            self.minute_full_gc[minute] += generation == 2


class _TimedEngine(_MinuteCpu):
    pass


class _TimedPerBarEngine(_MinuteCpu, PerBarEngine):
    pass


def _time_methods(parts: MinuteParts, obj: object, methods: dict[str, str]) -> None:
    """``obj``'s methods (name -> part) charged to ``parts``: ``obj`` becomes an instance of a subclass
    made for it whose methods time the originals (no slot added, so slotted classes take it too)."""
    cls = type(obj)
    timed = {name: parts.timed(part, getattr(cls, name)) for name, part in methods.items()}
    obj.__class__ = type(f"Timed{cls.__name__}", (cls,), {"__slots__": (), **timed})


def _closes_timed(parts: MinuteParts, builder: CandleBuilder) -> CandleBuilder:
    """``builder`` whose feed and clock closes open the minute windows of ``parts``."""

    def minute_of(closed: Sequence[Bar]) -> datetime | None:
        if not closed:
            return None
        if isinstance(closed, ClosedBars):
            return closed.instant if closed.instant is not None else max(closed.times)
        return max(bar.time for bar in closed)

    cls = type(builder)
    builder.__class__ = type(
        f"Timed{cls.__name__}",
        (cls,),
        {
            "__slots__": (),
            "close_through_columns": parts.timed_close(cls.close_through_columns, minute_of),
            "on_clock": parts.timed_close(cls.on_clock, minute_of),
        },
    )
    return builder


def _time_parts(parts: MinuteParts, engine: LiveEngine, step: SignalStep) -> None:
    """The engine's parts charged to ``parts``: the admission, the bank step, the signal step and in
    it the predict, the emit and the deferred rest of the minute (the engine's own code runs as is)."""
    _time_methods(parts, engine._gate, {"admit": "admit"})
    _time_methods(parts, engine.bank, {n: "bank" for n in ("update_rows", "update_columns", "update_many")})
    _time_methods(parts, step.model, {"score": "predict"})
    _time_methods(parts, step, {"many": "signal_step"})
    _time_methods(parts, engine, {"_emit_many": "emit", "_run_deferred": "rest"})


def run_live_bench(
    instruments: int = 500,
    minutes: int = 5,
    history_days: int = 4,
    seed: int = 7,
    *,
    db: bool = False,
    url: str | None = None,
    pool_size: int = 8,
    per_bar: bool = False,
    feed_close_margin_s: float | None = 0.3,
    shard: tuple[int, int] | None = None,
    freeze_gc: bool = True,
    market_in_process: bool = False,
    trace_memory: int = 0,
    predict_threads: int | None = None,
) -> dict[str, Any]:
    """Replay ``minutes`` simulated minutes of ``instruments`` full-mode instruments; figures as a dict.

    With ``db`` the rows go through the live table writers into the (migrated) database at ``url``
    and the latency ends at the signal's commit; the bench's rows are removed again (module doc).
    ``per_bar``: the baseline engine path (:class:`PerBarEngine`, one update and predict per bar).
    ``predict_threads``: the scoring threads (``live.predict_threads``; None: the shard's default,
    :func:`tickwise.pipelines.live.shards.predict_threads`).
    ``freeze_gc``: the engine's garbage-collector policy (:class:`LiveEngine`'s ``freeze_gc``, as
    ``tickwise live`` runs it); the figures then say how much cyclic garbage the freezes kept
    (``gc_frozen_garbage``: found unreachable once the frozen objects are handed back at the end).
    """
    if instruments < 1 or minutes < 1:
        raise ValueError("need at least one instrument and one minute")
    if db and not url:
        raise ValueError("the db mode needs the database url")
    setup0 = time.perf_counter()
    memory = _MemoryLog()
    memory.mark("imports")  # the interpreter and its libraries: the floor of any live process
    calc = FeatureCalculator()
    days_needed = max(history_days, math.ceil((calc.warmup + 50) / SESSION_BARS))
    day = BENCH_DAY
    hist_days: list[date] = []  # market days
    d = MARKET_DAY
    while len(hist_days) < days_needed:
        d = NSE.previous_trading_day(d)
        hist_days.insert(0, d)
    start = datetime.combine(day, datetime.min.time(), tzinfo=IST).replace(hour=9, minute=14, second=50)
    session_open = start.replace(minute=15, second=0)
    until = session_open + timedelta(minutes=minutes)
    grace = timedelta(seconds=2.0)

    # The simulated market, the model's training, the stored histories and the encoded frames: in a
    # child process (bench/live_market.py), so this process holds what a shard holds; with
    # market_in_process, here (the fifth session's layout, whose RSS figures include the market).
    import tempfile

    scratch = tempfile.TemporaryDirectory(prefix="tickwise-bench-live-")
    files, frames_in_memory = prepare_market(
        Path(scratch.name),
        instruments=instruments,
        seed=seed,
        shard=shard,
        hist_days=hist_days,
        # One more minute of ticks closes the last measured bar with its instrument's next tick.
        frames_after=start + SHIFT,
        frames_until=until + SHIFT + timedelta(seconds=59),
        in_child=not market_in_process,
    )
    tokens = list(files.tokens)
    frames: FrameFile | list[tuple[datetime, bytes]] = (
        files.frames if frames_in_memory is None else frames_in_memory
    )
    n_ticks, train_rows, model_s = files.n_ticks, files.train_rows, files.train_s
    if market_in_process:
        memory.mark("bench_market_and_frames")
    artifact = _loaded_artifact(calc, files)
    memory.mark("model_loaded")
    if trace_memory:  # from here: what the engine's opening and the replay allocate and still hold
        import tracemalloc

        tracemalloc.start()
    threads = live_predict_threads(predict_threads, shard[1] if shard is not None else 1)
    predictor = Predictor(artifact, threads=threads)
    generator = model_signal_generator(
        artifact.label_spec, threshold=0.55, kelly_fraction=0.25, max_position=0.1
    )
    step = SignalStep(predictor, generator, calc.names)

    ready_ms: array[float] = array("d")
    latencies = _KeptLatencies()

    wall = _VirtualWall()

    def on_signal(signal: Signal, closed_at: float) -> None:
        ready_ms.append((wall() - closed_at) * 1000.0)

    clock = _ReplayClock(start)

    minute_cpu_s: defaultdict[datetime, float] = defaultdict(float)
    minute_gc_s: defaultdict[datetime, float] = defaultdict(float)
    minute_full_gc: defaultdict[datetime, int] = defaultdict(int)
    gc_pauses = _GcPauses()
    parts = MinuteParts(_current_rss_mb)
    digests = None if db else RowDigests()

    def build(sinks: dict[str, WriteFn]) -> _Bench:
        """The live consumer step, engine and writer over ``sinks``; the streams opened on history."""
        benches: list[_Bench] = []
        # The commit itself (the sink), not the bench's digest of the rows after it.
        commit = parts.timed_async("commit", sinks["signals"])

        async def commit_and_record(rows: list[Any]) -> int:
            n = await commit(rows)
            benches[0].record_commits(rows)
            if digests is not None and not db:  # after the latency was taken
                digests.add("signals", rows)
            return n

        sinks = {**sinks, "signals": commit_and_record}
        writer = BufferedWriter(
            sinks, batch_size=5000, interval_s=0.1, max_memory_rows=1_000_000, urgent=("signals",)
        )
        engine = (_TimedPerBarEngine if per_bar else _TimedEngine)(
            calc, step, writer.put, on_signal=on_signal, freeze_gc=freeze_gc
        )
        engine.minute_cpu_s = minute_cpu_s
        engine.minute_gc_s = minute_gc_s
        engine.minute_full_gc = minute_full_gc
        engine.gc_pauses = gc_pauses
        engine.minute_parts = parts
        _time_parts(parts, engine, step)
        t_warm = time.perf_counter()
        for i, t in enumerate(tokens):  # one instrument's stored candles at a time, as a shard reads them
            engine.open_instrument(t, repository_shaped(files.history(i), t))
        warm_s = time.perf_counter() - t_warm
        memory.mark("engine_opened")
        consumer = TickConsumer(
            engine=engine,
            validator=TickValidator(NSE, 0.03, session_day=day),
            builder=_closes_timed(parts, CandleBuilder(calendar=NSE, grace_s=grace.total_seconds())),
            repairs=RepairQueue(NSE),
            watch=FeedWatch(silence_s=1.5, started=time.monotonic()),  # no feed attached: no checks
            put=writer.put,
            clock=clock,
            until=until,
            hooks=NullHooks(),
            wall=wall,
            feed_close_margin_s=feed_close_margin_s,
            # As the session: the rest of a minute runs once its signals are written (the per-bar
            # baseline engine finishes each bar at once).
            after_signals=None if per_bar else writer.urgent_written,
        )
        benches.append(_Bench(consumer, engine, writer, clock, until + grace, warm_s, wall, parts=parts))
        return benches[0]

    setup_s = time.perf_counter() - setup0
    with gc_pauses, parts:
        if db:
            assert url is not None
            bench, run = asyncio.run(
                _replay_db(build, frames, calc, latencies, url, pool_size, wall, tokens if shard else None)
            )
            signals_written = run["db_rows"]["signals"]
        else:
            bench, run, signals_written = asyncio.run(_replay_memory(build, frames, latencies, wall, digests))
    engine, warm_s = bench.engine, bench.warm_s
    # Cyclic garbage the engine's freezes kept from the collector: collect what is collectable first,
    # then hand the frozen objects back and count what is found unreachable among them.
    gc.collect()
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    frozen_garbage = gc.collect()
    setup_s += warm_s
    processing = run["decode_s"] + run["consume_s"]
    memory.mark("replay")
    traced = _traced_holders(trace_memory, len(tokens)) if trace_memory else None
    scratch.cleanup()
    # The frames the bench held in memory (market_in_process only; otherwise read one at a time).
    frames_mb = (
        round(sum(len(f) for _, f in frames_in_memory) / (1024 * 1024), 3) if frames_in_memory else 0.0
    )
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss_kb / (1024 * 1024) if sys.platform == "darwin" else rss_kb / 1024
    rss_now_mb = _current_rss_mb()
    end_parts = resident_now()
    lat = latencies.summary()
    ready = percentiles(ready_ms)
    minute_end = percentiles(bench.minute_end_ms)
    cpu_latency = percentiles(bench.cpu_latency_ms)
    thread_latency = percentiles(bench.thread_latency_ms)
    return {
        "instruments": instruments,
        "minutes": minutes,
        "mode": "full",
        "db": db,
        "latency_to": "committed" if db else "sink",
        "model": "bench-trained",
        "engine_path": "per-bar" if per_bar else "minute",
        "model_features": len(artifact.feature_names),
        "model_rounds": PRODUCTION_ROUNDS,
        "model_trees": sum(b.num_trees() for b in artifact.boosters.values()),
        # compiled: core.tree_eval scores the trees (checked bit-identical to LightGBM); else LightGBM
        "predictor": "compiled" if predictor.compiled else "lightgbm",
        "predictor_not_compiled_because": predictor.not_compiled_because,
        # CPU time of the engine's step per bar minute (features, prediction, signals, roll-ups, rows
        # queued): comparable across machine loads, unlike the wall-clock latencies
        "engine_cpu_ms_per_minute": _cpu_summary(minute_cpu_s),
        "gc_freeze": freeze_gc,
        "gc_frozen_objects": frozen,
        "gc_frozen_garbage": frozen_garbage,
        # per measured minute, in order: the engine's CPU, the collector's pauses inside the minute step
        # and how many of them were full (generation 2) collections; a slow minute says here why
        "engine_minutes": [
            {
                "minute": f"{m.astimezone(IST):%H:%M}",
                "cpu_ms": round(1000.0 * minute_cpu_s[m], 2),
                "gc_ms": round(1000.0 * minute_gc_s.get(m, 0.0), 2),
                "full_gc": minute_full_gc.get(m, 0),
            }
            for m in sorted(minute_cpu_s)
        ],
        # per measured minute, from its candle close to the end of its deferred rest: the engine thread's
        # CPU and page faults of each part of the path, the collector's runs, numba compiles, the RSS
        # after it (bench/minute_parts.py); compiles in the replay outside any minute's window
        "minute_parts": parts.report(),
        "compiled_outside_minutes": parts.compiled_outside,
        "model_trees_per_side": {
            ("long" if side == 1 else "short"): b.num_trees() for side, b in artifact.boosters.items()
        },
        "calculator_features": len(calc.names),
        "model_train_rows": train_rows,
        "model_train_s": round(model_s, 2),
        "history_bars_per_instrument": len(hist_days) * SESSION_BARS,
        "warmup_bars": calc.warmup,
        "warm_s": round(warm_s, 2),
        "setup_s": round(setup_s, 2),
        "frames": len(frames),
        "ticks": n_ticks,
        "ticks_accepted": bench.consumer.ticks_accepted,
        "bars": engine.bars,
        "signals": engine.signals,
        "signals_written": signals_written,
        # SHA-256 of the rows written per table, in order (no-db runs; signals without latency_ms):
        # equal digests, equal rows, between two runs of the same replay (e.g. old and new code).
        "row_digests": digests.hexdigests() if digests is not None else None,
        "engine_errors": engine.errors + bench.consumer.errors,
        "latency_ms_p50": lat.p50,
        "latency_ms_p99": lat.p99,
        "latency_ms_max": lat.max,
        # The same path in this thread's CPU time (from the start of the consumer step that closed the
        # bar to its signal at the sink): what the pipeline itself spends, unlike the wall-clock
        # figures it does not grow with the machine's load (an upper bound: the step may start before
        # the bar's close, e.g. a tick batch whose feed-close check closes it at its end).
        "latency_cpu_ms_p50": cpu_latency.p50,
        "latency_cpu_ms_p99": cpu_latency.p99,
        # ... the engine's thread alone (equal to the above with predict_threads 1)
        "latency_thread_cpu_ms_p50": thread_latency.p50,
        "latency_thread_cpu_ms_p99": thread_latency.p99,
        "ready_ms_p50": ready.p50,
        "ready_ms_p99": ready.p99,
        "ready_ms_max": ready.max,
        "minute_end_ms_p50": minute_end.p50,
        "minute_end_ms_p99": minute_end.p99,
        "minute_end_ms_max": minute_end.max,
        "feed_close_margin_s": feed_close_margin_s,
        "late_after_feed_close": bench.consumer.late_after_feed_close,
        "late_ticks": bench.consumer.builder.late_ticks,
        "shard": f"{shard[0]}/{shard[1]}" if shard is not None else None,
        "predict_threads": threads,
        "instruments_replayed": len(tokens),
        "_latencies_ms": list(latencies.kept),
        "_minute_end_ms": list(bench.minute_end_ms),
        "max_second_ms": round(run["max_second_s"] * 1000.0, 1),
        "ticks_per_s": round(n_ticks / processing) if processing > 0 else None,
        "ticks_per_cpu_s": round(n_ticks / run["cpu_s"]) if run["cpu_s"] > 0 else None,
        "decode_ticks_per_s": round(n_ticks / run["decode_s"]) if run["decode_s"] > 0 else None,
        "processing_s": round(processing, 3),
        "replay_wall_s": round(run["wall_s"], 3),
        "writer_ok": run["writer_ok"],
        **(
            {
                "db_window": f"{DB_WINDOW[0]:%Y-%m-%d}/{DB_WINDOW[1]:%Y-%m-%d}",
                "db_rows_committed": run["db_rows"],
                "db_rows_left": run["db_rows_left"],
                "db_pool_size": pool_size,
            }
            if db
            else {}
        ),
        # Which process the RSS figures are of: "engine" (default), the process that runs the engine with
        # the market built in a child, as a live shard; "engine+market" (market_in_process, the fifth
        # session's layout), the same process also holding the simulated market and all its frames.
        "rss_process": "engine+market" if market_in_process else "engine",
        # Whether this process holds pyarrow: a live process leaves it out (bootstrap/live_imports.py), as
        # does this bench run through the console script or as a shard; in another process it may be in.
        "pyarrow_imported": pyarrow_imported(),
        "rss_mb": round(rss_mb, 1),
        "rss_end_mb": rss_now_mb,
        # Held at the end (freed pages returned), split by checkpoint: the imports floor, (with
        # market_in_process: the bench's market and frames), the loaded model, the opened engine and what
        # the replay left (session bars, writer, counters).
        "rss_breakdown_mb": memory.breakdown(),
        "rss_held_mb_per_1000": (
            round(memory.marks["replay"] * 1000.0 / len(tokens), 1) if "replay" in memory.marks else None
        ),
        "rss_held_mb": memory.marks.get("replay"),
        # What the RSS is made of, at each checkpoint ("replay": held, freed pages returned) and at the
        # end (as rss_end_mb, nothing returned): RssAnon (this process's own pages), RssFile (the
        # libraries' resident file pages: shared, reclaimable, and depending on the page cache, so two
        # checkouts of the same code differ here) and PSS (shared pages split among their processes).
        **memory.parts_report(len(tokens)),
        "rss_end_parts_mb": end_parts.as_dict() if end_parts is not None else None,
        "rss_held_above_imports_mb_per_1000": (
            round((memory.marks["replay"] - memory.marks["imports"]) * 1000.0 / len(tokens), 1)
            if "replay" in memory.marks and "imports" in memory.marks
            else None
        ),
        # The encoded frames of the whole replay, which the bench holds until the end with
        # market_in_process (a live process holds one frame at a time; 0 otherwise): part of
        # rss_held_mb, but the bench's, not the pipeline's.
        "bench_frames_mb": frames_mb,
        "rss_held_live_mb": (
            round(memory.marks["replay"] - frames_mb, 1) if "replay" in memory.marks else None
        ),
        **({"traced_holders": traced} if traced is not None else {}),
        "target_p99_ms": 25.0,  # issue #14: 1,000 instruments, production-size model
        "target_rss_mb_per_1000": 400.0,
        "target_rss_mb": 1024.0,
    }


def _traced_holders(top: int, instruments: int) -> dict[str, Any]:
    """The ``top`` source lines holding the most of what was allocated since tracing began and is still
    alive (``tracemalloc``, grouped by line), in KB per instrument; tracing stops."""
    import tracemalloc

    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = snapshot.statistics("lineno")
    total = sum(s.size for s in stats)
    return {
        "total_mb": round(total / 2**20, 1),
        "total_kb_per_instrument": round(total / 1024 / instruments, 2),
        "lines": [
            {
                "line": f"{s.traceback[0].filename.split('/site-packages/')[-1].split('/src/')[-1]}:{s.traceback[0].lineno}",
                "kb_per_instrument": round(s.size / 1024 / instruments, 2),
                "blocks": s.count,
            }
            for s in stats[:top]
        ],
    }


def _shard_bench(kwargs: dict[str, Any]) -> dict[str, Any]:
    return run_live_bench(**kwargs)


def run_sharded_live_bench(shards: int, **kwargs: Any) -> dict[str, Any]:
    """:func:`run_live_bench` over ``shards`` processes at once, each replaying its share of the
    instruments (split as ``tickwise live --shards`` splits them); percentiles pooled over all bars.

    A shard whose process fails is reported in ``dead_shards`` (the run's figures then cover the rest).
    """
    if shards == 1:
        out = run_live_bench(**kwargs)
        out.pop("_latencies_ms", None)
        out.pop("_minute_end_ms", None)
        return out
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    jobs = [{**kwargs, "shard": (i, shards)} for i in range(shards)]
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    dead: list[str] = []
    # spawn: a fresh interpreter per shard, as the shard processes of the live mode are, which leaves
    # pyarrow out before the bench's imports, as `tickwise live --shard I/N` does.
    with ProcessPoolExecutor(
        max_workers=shards, mp_context=get_context("spawn"), initializer=leave_out_pyarrow
    ) as pool:
        futures = [pool.submit(_shard_bench, job) for job in jobs]
        for i, future in enumerate(futures):
            try:
                results.append(future.result())
            except Exception as exc:  # a dead shard is a figure of the run, not a crash of the bench
                dead.append(f"{i}/{shards}: {exc}")
    wall_s = time.perf_counter() - t0
    lat = percentiles([v for r in results for v in r.pop("_latencies_ms")])
    minute_end = percentiles([v for r in results for v in r.pop("_minute_end_ms")])
    total = {
        k: sum(int(r.get(k) or 0) for r in results)
        for k in (
            "ticks",
            "ticks_accepted",
            "bars",
            "signals",
            "signals_written",
            "engine_errors",
            "late_after_feed_close",
            "late_ticks",
        )
    }
    return {
        "instruments": kwargs.get("instruments"),
        "minutes": kwargs.get("minutes"),
        "shards": shards,
        "dead_shards": dead,
        **total,
        "latency_ms_p50": lat.p50,
        "latency_ms_p99": lat.p99,
        "latency_ms_max": lat.max,
        "minute_end_ms_p50": minute_end.p50,
        "minute_end_ms_p99": minute_end.p99,
        "minute_end_ms_max": minute_end.max,
        "max_second_ms": max((r["max_second_ms"] for r in results), default=None),
        "rss_mb_per_shard": [r["rss_mb"] for r in results],
        "pyarrow_imported_per_shard": [r["pyarrow_imported"] for r in results],
        # Each shard's process runs its engine only (its market is built in a child): what a live shard
        # holds at the end, and that per 1,000 of its instruments.
        "rss_held_mb_per_shard": [r["rss_held_mb"] for r in results],
        "rss_held_mb_per_1000_per_shard": [r["rss_held_mb_per_1000"] for r in results],
        # ... split: each shard's own pages, its libraries' resident file pages, its PSS (docs/benchmarks.md)
        "rss_anon_held_mb_per_shard": [r.get("rss_anon_held_mb") for r in results],
        "rss_file_held_mb_per_shard": [r.get("rss_file_held_mb") for r in results],
        "pss_held_mb_per_shard": [r.get("pss_held_mb") for r in results],
        "rss_anon_held_mb_per_1000_per_shard": [r.get("rss_anon_held_mb_per_1000") for r in results],
        "wall_s": round(wall_s, 1),
        "per_shard": results,
    }
