"""`tickwise bench live`: candle-close -> signal latency and sustained ticks/s of the live pipeline.

Self-contained and reproducible (no broker account, no database):

* **Market.** The simulator's own market model (:class:`Universe` of N equities, :class:`Market` with
  a fixed seed) provides each instrument's 1m candles of the previous trading days (the stored history
  the streams are opened on, >= ``calculator.warmup`` bars) and the full-mode snapshots of the measured
  minutes of the next day.
* **Feed.** The snapshots are grouped per exchange second and encoded into one binary Kite frame per
  second with the real codec (as the WebSocket batches them); frames are encoded before timing.
* **Pipeline.** Each frame is decoded with :func:`decode_frame` and handed, as one batch, to the real
  :class:`LiveSession` consumer step (``TickValidator`` -> ``CandleBuilder`` -> :class:`LiveEngine`:
  feature stream update, roll-ups, :class:`SignalStep` prediction and signal rule) with the real
  :class:`BufferedWriter` (signals urgent) behind it. The sinks are in-memory (``"db": false``): the
  figures stop at the signal handed to the signal sink and do not include a database commit.
* **Model.** A small LightGBM model pair (long/short boosters, :func:`fit_booster`) trained on the
  real feature set and real triple-barrier labels (``core.labels.label_both_sides``) of the warm-up
  candles of a few instruments (``"model": "bench-trained"``): the prediction cost per bar is that of a
  real model of similar size, not of the champion of a database.

Frames are replayed back to back, one frame (one simulated second) per consumer batch, so a bar's
latency includes the processing of the ticks and bars ahead of it in its second, as in the live
consumer when it keeps up; ``max_second_ms`` (the slowest simulated second) shows whether it would
(it must stay below 1000 ms to keep up in real time).

Latency per closed bar (``latency_ms_*``): from the batch whose tick closed the bar (the consumer's
``closed_at``, as in the session) to the signal handed to the signal sink after the writer's flush;
``ready_ms_*``: to the signal object produced by the engine (before the writer).
"""

from __future__ import annotations

import asyncio
import math
import resource
import sys
import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from tickwise.adapters.kite.codec import DecodeStats, decode_frame, encode_frame
from tickwise.adapters.kite.simulator.market import Market
from tickwise.adapters.kite.simulator.universe import Universe
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.labels.events import label_both_sides
from tickwise.core.labels.spec import LabelSpec
from tickwise.core.model import ModelArtifact, fit_booster, lgb_params
from tickwise.core.predictor import Predictor
from tickwise.core.signals import model_signal_generator
from tickwise.domain.calendar import NSE
from tickwise.domain.signal import Signal
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST
from tickwise.pipelines.live.engine import LiveEngine, SignalStep
from tickwise.pipelines.live.session import LiveSession, signal_writer
from tickwise.pipelines.live.writer import BufferedWriter

SESSION_BARS = 375
BENCH_DAY = date(2026, 1, 5)  # a Monday; the measured session (the history is the days before it)


class _ReplayBroker:
    """The one broker method the consumer uses: the simulated exchange time of the frame being replayed."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


class _CountingSignals:
    """An in-memory signals repository (``add_many`` counts; no database)."""

    def __init__(self) -> None:
        self.rows = 0

    async def add_many(self, signals: list[Signal]) -> int:
        self.rows += len(signals)
        return len(signals)


async def _count(rows: list[Any]) -> int:
    return len(rows)


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(arr, 50)), 3),
        "p99": round(float(np.percentile(arr, 99)), 3),
        "max": round(float(arr.max()), 3),
    }


def _current_rss_mb() -> float | None:
    """Resident set size now (Linux ``/proc``), or None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * resource.getpagesize() / (1024 * 1024), 1)


def history_frame(market: Market, token: int, days: list[date]) -> pd.DataFrame:
    """The 1m candles of ``token`` on ``days`` (oldest first) as the candle repository returns them."""
    opens, highs, lows, closes, volumes, times = [], [], [], [], [], []
    minute_ns = 60_000_000_000
    for day in days:
        c = market.minute_candles(token, day)
        start = pd.Timestamp(
            datetime.combine(day, datetime.min.time(), tzinfo=IST).replace(hour=9, minute=15)
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


def train_bench_model(
    calc: FeatureCalculator, histories: list[pd.DataFrame], rounds: int = 40, seed: int = 7
) -> tuple[ModelArtifact, int]:
    """A long/short LightGBM pair on the real features and triple-barrier labels of ``histories``.

    The model uses every feature that is finite on the training rows (features of the order book are
    NaN on REST-backfilled history). Returns the artifact and the number of training rows.
    """
    spec = LabelSpec()
    feats, labs = [], []
    for h in histories:
        f = calc.compute(h)
        f["time"] = pd.to_datetime(f["time"], utc=True)
        lab, _ = label_both_sides(h, spec)
        lab["time"] = pd.to_datetime(lab["time"], utc=True)
        feats.append(f)
        labs.append(lab[["time", "side", "label"]])
    warm = pd.concat([f.iloc[calc.warmup :] for f in feats], ignore_index=True)
    names = [n for n in calc.names if np.isfinite(warm[n].to_numpy()).mean() > 0.99]
    boosters = {}
    n_rows = 0
    for side in (1, -1):
        rows = []
        for f, lab in zip(feats, labs, strict=True):
            part = f.merge(lab[lab["side"] == side], on="time", how="inner")
            rows.append(part)
        data = pd.concat(rows, ignore_index=True)
        x = data[names].to_numpy(dtype=np.float64)
        keep = np.isfinite(x).all(axis=1)
        x, y = x[keep], (data["label"].to_numpy()[keep] == 1).astype(np.int8)
        n_rows += len(y)
        params = lgb_params({"learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 20}, seed)
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
    market: Market, tokens: list[int], after: datetime, until: datetime
) -> tuple[list[tuple[datetime, bytes]], int]:
    """One encoded full-mode frame per exchange second (all instruments' snapshots of that second)."""
    per_second: dict[datetime, list[Tick]] = defaultdict(list)
    for token in tokens:
        for tick in market.snapshots_between(token, after, until, spikes=False):
            per_second[tick.exchange_timestamp or after].append(tick)
    frames = []
    n = 0
    for second in sorted(per_second):
        ticks = per_second[second]
        for i in range(0, len(ticks), 0xFFFF):
            frames.append((second, encode_frame(ticks[i : i + 0xFFFF], "full")))
        n += len(ticks)
    return frames, n


async def _replay(
    session: LiveSession, broker: _ReplayBroker, frames: list[tuple[datetime, bytes]]
) -> dict[str, Any]:
    stats = DecodeStats()
    decode_s = consume_s = 0.0
    max_second = 0.0
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    session.writer.start()
    for second, frame in frames:
        t0 = time.perf_counter()
        ticks = decode_frame(frame, stats)
        t1 = time.perf_counter()
        broker.current = second
        session._consume_batch(ticks)  # the consumer's per-batch step (validator, builder, engine)
        t2 = time.perf_counter()
        decode_s += t1 - t0
        consume_s += t2 - t1
        max_second = max(max_second, t2 - t0)
        # The consumer is idle until the next second's frame when it keeps up (max_second_ms < 1000):
        # let the writer flush the signals meanwhile (not counted as processing time).
        for _ in range(50):
            if not session.writer.pending_rows("signals"):
                break
            await asyncio.sleep(0)
    # Bars whose instrument sent no later tick close on the clock (as LiveSession.clock would).
    for closed in session.builder.on_clock(session.until + session.grace):
        session.on_closed(closed, time.time())
    ok = await session.writer.close(timeout_s=30.0)
    return {
        "decode_s": decode_s,
        "consume_s": consume_s,
        "max_second_s": max_second,
        "cpu_s": time.process_time() - cpu0,
        "wall_s": time.perf_counter() - wall0,
        "writer_ok": ok,
    }


def run_live_bench(
    instruments: int = 500, minutes: int = 5, history_days: int = 4, seed: int = 7
) -> dict[str, Any]:
    """Replay ``minutes`` simulated minutes of ``instruments`` full-mode instruments; figures as a dict."""
    if instruments < 1 or minutes < 1:
        raise ValueError("need at least one instrument and one minute")
    setup0 = time.perf_counter()
    calc = FeatureCalculator()
    days_needed = max(history_days, math.ceil((calc.warmup + 50) / SESSION_BARS))
    day = BENCH_DAY
    hist_days: list[date] = []
    d = day
    while len(hist_days) < days_needed:
        d = NSE.previous_trading_day(d)
        hist_days.insert(0, d)
    universe = Universe(instruments, today=day)
    # A small path cache: the bench's own market data must not inflate the pipeline's memory figure.
    market = Market(universe, seed=seed, cache_size=64)
    tokens = [m.token for m in universe.equities][:instruments]

    t_model = time.perf_counter()
    train_tokens = tokens[: min(8, len(tokens))]
    artifact, train_rows = train_bench_model(
        calc, [history_frame(market, t, hist_days) for t in train_tokens]
    )
    model_s = time.perf_counter() - t_model
    predictor = Predictor(artifact)
    generator = model_signal_generator(
        artifact.label_spec, threshold=0.55, kelly_fraction=0.25, max_position=0.1
    )
    step = SignalStep(predictor, generator, calc.names)

    ready_ms: list[float] = []
    sink_ms: list[float] = []

    def on_signal(signal: Signal, closed_at: float) -> None:
        ready_ms.append((time.time() - closed_at) * 1000.0)

    signals_repo = _CountingSignals()
    writer = BufferedWriter(
        {
            "ticks": _count,
            "candles": _count,
            "features": _count,
            "signals": signal_writer(signals_repo, None, sink_ms),
        },
        batch_size=5000,
        interval_s=0.1,
        max_memory_rows=1_000_000,
        urgent=("signals",),
    )
    engine = LiveEngine(calc, step, writer.put, on_signal=on_signal)
    t_warm = time.perf_counter()
    for t in tokens:
        engine.open_instrument(t, history_frame(market, t, hist_days))
    warm_s = time.perf_counter() - t_warm

    start = datetime.combine(day, datetime.min.time(), tzinfo=IST).replace(hour=9, minute=14, second=50)
    session_open = start.replace(minute=15, second=0)
    until = session_open + timedelta(minutes=minutes)
    # One more minute of ticks closes the last measured bar with its instrument's next tick.
    frames, n_ticks = _frames(market, tokens, start, until + timedelta(seconds=59))
    broker = _ReplayBroker(start)
    session = LiveSession(
        broker=broker,
        engine=engine,
        writer=writer,
        tokens=tokens,
        day=day,
        until=until,
        calendar=NSE,
        hooks=None,
        grace_s=2.0,
        spike_band=0.03,
    )
    setup_s = time.perf_counter() - setup0
    run = asyncio.run(_replay(session, broker, frames))
    processing = run["decode_s"] + run["consume_s"]
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss_kb / (1024 * 1024) if sys.platform == "darwin" else rss_kb / 1024
    rss_now_mb = _current_rss_mb()
    lat = _percentiles(sink_ms)
    ready = _percentiles(ready_ms)
    return {
        "instruments": instruments,
        "minutes": minutes,
        "mode": "full",
        "db": False,
        "model": "bench-trained",
        "model_features": len(artifact.feature_names),
        "calculator_features": len(calc.names),
        "model_train_rows": train_rows,
        "model_train_s": round(model_s, 2),
        "history_bars_per_instrument": len(hist_days) * SESSION_BARS,
        "warmup_bars": calc.warmup,
        "warm_s": round(warm_s, 2),
        "setup_s": round(setup_s, 2),
        "frames": len(frames),
        "ticks": n_ticks,
        "ticks_accepted": session.report.ticks_accepted,
        "bars": engine.bars,
        "signals": engine.signals,
        "signals_written": signals_repo.rows,
        "engine_errors": engine.errors,
        "latency_ms_p50": lat["p50"],
        "latency_ms_p99": lat["p99"],
        "latency_ms_max": lat["max"],
        "ready_ms_p50": ready["p50"],
        "ready_ms_p99": ready["p99"],
        "ready_ms_max": ready["max"],
        "max_second_ms": round(run["max_second_s"] * 1000.0, 1),
        "ticks_per_s": round(n_ticks / processing) if processing > 0 else None,
        "ticks_per_cpu_s": round(n_ticks / run["cpu_s"]) if run["cpu_s"] > 0 else None,
        "decode_ticks_per_s": round(n_ticks / run["decode_s"]) if run["decode_s"] > 0 else None,
        "processing_s": round(processing, 3),
        "replay_wall_s": round(run["wall_s"], 3),
        "writer_ok": run["writer_ok"],
        "rss_mb": round(rss_mb, 1),
        "rss_end_mb": rss_now_mb,
        "target_p99_ms": 100.0,
        "target_rss_mb": 1024.0,
    }
