"""Composition root of the live mode: database, model, feature streams, broker, writer, alerts, metrics.

:func:`run_live` opens everything, runs one :class:`LiveSession` and closes everything cleanly. With the
simulator the session simulated is the trading day after the last stored 1m candle, from 09:14:50 IST;
if the last stored day is incomplete (a crash or stop mid-session), the simulator resumes that day right
after the last stored candle and the missing minutes are backfilled through REST before signals resume.
Bars of that day whose feature row or signal did not reach the database before the crash are recomputed
too (:func:`tickwise.pipelines.live.resume.resume_cutoff`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from loguru import logger

from tickwise.adapters.timescale.candle_repository import candles_to_frame
from tickwise.config import Settings
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.predictor import Predictor
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.errors import ConfigError, ModelError
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.engine import LiveEngine, SignalStep
from tickwise.pipelines.live.health import HealthMonitor
from tickwise.pipelines.live.resume import resume_cutoff
from tickwise.pipelines.live.session import LiveSession, SessionReport, signal_writer
from tickwise.pipelines.live.until import parse_until
from tickwise.pipelines.live.writer import BufferedWriter


@dataclass
class LiveOptions:
    until: str | None = None
    speed: float | None = None  # simulator only (default: 60)
    faults: str | None = None  # simulator fault script
    symbols: Sequence[str] = ()
    url: str | None = None
    metrics: bool = True
    simulator: bool | None = None


def simulated_start(last: datetime | None, calendar: SessionCalendar, today: date) -> datetime:
    """Where the simulator starts: the day after the last stored candle, or right after it mid-day."""
    if last is None:
        day = today if calendar.is_trading_day(today) else calendar.next_trading_day(today)
        return datetime.combine(day, time(9, 14, 50), tzinfo=IST)
    last = last.astimezone(IST)
    end = last + timedelta(minutes=1)
    if end < calendar.session_close(last.date()):
        return end
    return datetime.combine(calendar.next_trading_day(last.date()), time(9, 14, 50), tzinfo=IST)


async def stored_outputs(
    pool: Any, tokens: Sequence[int], feature_set: str, model_version: str
) -> dict[int, tuple[datetime | None, datetime | None]]:
    """Per instrument: the newest stored 1m feature row (this feature set) and signal (this model)."""
    out: dict[int, tuple[datetime | None, datetime | None]] = {}
    async with pool.acquire() as conn:
        features = await conn.fetch(
            "SELECT instrument_token, max(time) AS t FROM features WHERE timeframe = '1m' AND feature_set = $1 "
            "AND instrument_token = ANY($2::bigint[]) GROUP BY instrument_token",
            feature_set,
            list(tokens),
        )
        signals = await conn.fetch(
            "SELECT instrument_token, max(time) AS t FROM signals WHERE timeframe = '1m' AND model_version = $1 "
            "AND instrument_token = ANY($2::bigint[]) GROUP BY instrument_token",
            model_version,
            list(tokens),
        )
    f = {int(r["instrument_token"]): r["t"] for r in features}
    g = {int(r["instrument_token"]): r["t"] for r in signals}
    for token in tokens:
        out[token] = (f.get(token), g.get(token))
    return out


def table_writers(
    ctx: Any, calculator: FeatureCalculator, hooks: Any, latencies: list[float]
) -> dict[str, Any]:
    names = calculator.names
    feature_set = calculator.feature_set

    async def ticks(rows: list[Any]) -> int:
        return int(await ctx.ticks.add_many(rows))

    async def candles(rows: list[Any]) -> int:
        frame = candles_to_frame([c for c, _ in rows], obi_5=[None if math.isnan(o) else o for _, o in rows])
        return int(await ctx.candles.add_frame(frame, on_conflict="update"))

    async def features(rows: list[Any]) -> int:
        matrix = np.vstack([r for _, _, r in rows])
        frame = pd.DataFrame(matrix, columns=names)
        frame.insert(0, "time", pd.DatetimeIndex([t for _, t, _ in rows]))
        frame.insert(0, "timeframe", str(Timeframe.M1))
        frame.insert(0, "instrument_token", np.array([tok for tok, _, _ in rows], dtype=np.int64))
        return int(await ctx.features.add_frame(frame, feature_set))

    return {
        "ticks": ticks,
        "candles": candles,
        "features": features,
        "signals": signal_writer(ctx.signals, hooks, latencies),
    }


def make_alerts(settings: Settings, hooks: Any) -> Any:
    from tickwise.adapters.alerts import AlertDispatcher, TelegramSink, WebhookSink

    cfg = settings.monitoring.alerts
    sinks: list[Any] = []
    if cfg.enabled:
        if cfg.webhook_url:
            sinks.append(WebhookSink(cfg.webhook_url))
        token = cfg.telegram_bot_token.get_secret_value()
        if token and cfg.telegram_chat_id:
            sinks.append(TelegramSink(token, cfg.telegram_chat_id))
    return AlertDispatcher(sinks, min_priority=cfg.min_priority, throttle_s=cfg.throttle_s, hooks=hooks)


async def run_live(
    settings: Settings, options: LiveOptions, *, hooks: Any = None, stop: asyncio.Event | None = None
) -> SessionReport:
    """``tickwise live``: one session (see the module doc). Returns the session report."""
    from tickwise.bootstrap.broker import open_broker, open_simulated_broker, uses_simulator
    from tickwise.bootstrap.historical import open_historical, signal_generator
    from tickwise.observability.hooks import NullHooks, PrometheusHooks
    from tickwise.observability.metrics import TickwiseMetrics, start_metrics_server
    from tickwise.pipelines.models import load_model
    from tickwise.pipelines.universe import select_universe

    server = None
    if hooks is None:
        if options.metrics:
            metrics = TickwiseMetrics()
            hooks = PrometheusHooks(metrics, mode="live")
            try:
                server = start_metrics_server(
                    settings.monitoring.metrics_host, settings.monitoring.metrics_port, metrics.registry
                )
                logger.info("metrics on {}", server.url)
            except OSError as exc:
                logger.warning("metrics server not started ({}); continuing without /metrics", exc)
        else:
            hooks = NullHooks()
    simulated = uses_simulator(settings) if options.simulator is None else options.simulator
    try:
        async with open_historical(settings, url=options.url) as ctx:
            from tickwise.adapters.timescale.tick_repository import TimescaleTickRepository

            ctx.ticks = TimescaleTickRepository(ctx.pool)  # type: ignore[attr-defined]
            artifact = await load_model(ctx, None)
            timeframe = settings.trading.signal_timeframe
            if timeframe is not Timeframe.M1:
                raise ConfigError(
                    "the live mode computes signals on 1m bars: set trading.signal_timeframe: 1m"
                )
            calculator = FeatureCalculator()
            if artifact.feature_set != calculator.feature_set:
                raise ModelError(
                    f"the champion model {artifact.version} uses feature set {artifact.feature_set}, but this build "
                    f"computes {calculator.feature_set}: retrain (`tickwise train`)"
                )
            predictor = Predictor(artifact)
            step = SignalStep(predictor, signal_generator(settings, artifact), calculator.names, timeframe)
            hooks.on_model_loaded(artifact.version, 0.0, artifact.feature_set)
            universe = await select_universe(ctx.instruments, options.symbols or settings.trading.symbols)
            tokens = [i.instrument_token for i in universe]
            if not tokens:
                raise ConfigError(
                    "no instruments to stream: run `tickwise historical` (or `tickwise instruments sync`) first"
                )
            latencies: list[float] = []
            writer = BufferedWriter(
                table_writers(ctx, calculator, hooks, latencies),
                batch_size=settings.live.write_batch_size,
                interval_s=min(settings.live.write_interval_s, 0.1),
                max_memory_rows=max(settings.live.write_batch_size * 20, 100_000),
                spill_dir=Path(settings.live.spill_dir),
                hooks=hooks,
                urgent=("signals",),
            )
            writer.breaker._on_change = hooks.on_circuit_breaker
            engine = LiveEngine(calculator, step, writer.put, hooks=hooks, calendar=ctx.calendar)
            last_stored: datetime | None = None
            stored = await stored_outputs(ctx.pool, tokens, calculator.feature_set, artifact.version)
            for token in tokens:
                history = await ctx.candles.read_frame(token, Timeframe.M1, None, None)
                if len(history):
                    last_feature, last_signal = stored.get(token, (None, None))
                    last_candle = history["time"].iloc[-1].to_pydatetime()
                    cutoff = resume_cutoff(last_candle, last_feature, last_signal, ctx.calendar)
                    if cutoff is not None and cutoff < last_candle:
                        logger.info(
                            "live: instrument {}: outputs stored only up to {:%Y-%m-%d %H:%M}; recomputing the bars after it",
                            token,
                            cutoff.astimezone(IST),
                        )
                        history = history[history["time"] <= pd.Timestamp(cutoff)]
                state = engine.open_instrument(token, history)
                if state.last_time is not None and (last_stored is None or state.last_time > last_stored):
                    last_stored = state.last_time
            resume_from = min(
                (s.last_time for s in engine.states.values() if s.last_time is not None), default=None
            )
            if resume_from is not None:
                resume_from = resume_from + timedelta(minutes=1)
            alerts = make_alerts(settings, hooks)
            alerts.start()
            speed = options.speed if options.speed is not None else 60.0
            if simulated:
                start = simulated_start(last_stored, ctx.calendar, datetime.now(IST).date())
                # In a child process: the simulator must stream on time however busy the pipeline is.
                broker_cm = open_simulated_broker(
                    settings, process=True, start=start, speed=speed, faults=options.faults
                )
            else:
                speed = 1.0
                broker_cm = open_broker(settings, simulator=False)
            async with broker_cm as broker:
                now = broker.now()
                day = now.date()
                if not ctx.calendar.is_trading_day(day) or now >= ctx.calendar.session_close(day):
                    raise ConfigError(
                        f"no NSE session to run now ({now:%Y-%m-%d %H:%M} IST); the market is closed"
                    )
                until = parse_until(options.until, day, now, ctx.calendar)
                health = HealthMonitor(
                    model_version=artifact.version,
                    status_path=Path(settings.system.data_dir) / "live-status.json",
                    alerts=alerts,
                )
                session = LiveSession(
                    broker=broker,
                    engine=engine,
                    writer=writer,
                    tokens=tokens,
                    day=day,
                    until=until,
                    calendar=ctx.calendar,
                    hooks=hooks,
                    grace_s=settings.live.candle_grace_s,
                    speed=speed,
                    spike_band=0.03 if simulated else settings.live.spike_band,
                    alerts=alerts,
                    stop=stop,
                    health=health,
                )
                session.latencies = latencies
                logger.info(
                    "live session {} from {:%H:%M:%S} until {:%H:%M} IST: {} instruments, model {}{}",
                    day,
                    now,
                    until,
                    len(tokens),
                    artifact.version,
                    f", simulator at {speed:g}x" if simulated else "",
                )
                report = await session.run(resume_from)
            await alerts.close()
            return report
    finally:
        if server is not None:
            server.close()
