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
import contextlib
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pandas as pd
from loguru import logger

from tickwise.bootstrap.alerts import make_alerts, notify_after_commit
from tickwise.bootstrap.login import alert_token_expiry, check_token
from tickwise.bootstrap.reload import SighupReloader, reload_live_settings
from tickwise.config import Settings
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.predictor import Predictor
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.errors import ConfigError, ModelError
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.batches import BatchTrail, TracedStep
from tickwise.pipelines.live.breaker import CircuitBreaker
from tickwise.pipelines.live.candle_checks import checked_candle_sink
from tickwise.pipelines.live.challengers import CHALLENGER_TABLE, ChallengerStep, challenger_sink
from tickwise.pipelines.live.contracts import ContractMap, MappedCandleSource, MappedFeed, adjust_for_roll
from tickwise.pipelines.live.engine import InstrumentState, LiveEngine, SignalStep, Step
from tickwise.pipelines.live.health import HealthMonitor
from tickwise.pipelines.live.latency import LatencyLog
from tickwise.pipelines.live.resume import day_cutoff, first_hole, resume_cutoff
from tickwise.pipelines.live.session import LiveSession
from tickwise.pipelines.live.session import SessionReport as SessionReport  # re-exported for the CLI
from tickwise.pipelines.live.shards import predict_threads
from tickwise.pipelines.live.sinks import (
    LiveRepositories,
    feature_sink,
    signal_member_sink,
    table_sinks,
)
from tickwise.pipelines.live.timeframes import stored_history
from tickwise.pipelines.live.until import parse_until
from tickwise.pipelines.live.writer import BufferedWriter
from tickwise.ports.hooks import PipelineHooks
from tickwise.ports.market_feed import FeedGap, MarketFeed

if TYPE_CHECKING:
    from tickwise.adapters.alerts.dispatcher import AlertDispatcher
    from tickwise.bootstrap.shards import ShardPlace
    from tickwise.bootstrap.timeframes import LiveTimeframes
    from tickwise.core.model import ModelArtifact
    from tickwise.core.signals import SignalGenerator
    from tickwise.domain.instrument import Instrument
    from tickwise.pipelines.models import ModelSource
    from tickwise.ports.historical_source import HistoricalSource
    from tickwise.ports.repositories import CandleRepository, InstrumentRepository


@dataclass
class LiveOptions:
    until: str | None = None
    speed: float | None = None  # simulator only (default: broker.simulator.speed)
    faults: str | None = None  # simulator fault script
    symbols: Sequence[str] = ()
    url: str | None = None
    metrics: bool = True
    simulator: bool | None = None
    # SIGHUP reloads the configuration through this (the CLI passes its loader); None: SIGHUP not handled
    reload: Callable[[], Settings] | None = None
    paper: bool = False  # also paper-trade the signals on the ticks (bootstrap/paper.py)
    shard: ShardPlace | None = None  # one shard of a sharded run (bootstrap/shards.py), else everything


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
    pool: asyncpg.Pool, tokens: Sequence[int], feature_set: str, model_version: str
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


async def challenger_steps(
    settings: Settings, ctx: ModelSource, calculator: FeatureCalculator, champion: str
) -> list[SignalStep]:
    """Signal steps of up to ``live.challengers`` challenger models (newest first) that use this build's
    feature set; a challenger that cannot be loaded is skipped with a warning, never fatal."""
    from tickwise.bootstrap.context import signal_generator
    from tickwise.pipelines.models import load_model

    limit = settings.live.challengers
    if limit <= 0:
        return []
    records = [r for r in await ctx.models.list(status="challenger") if r.model_version != champion]
    records.sort(key=lambda r: (r.created_at is not None, r.created_at), reverse=True)
    steps: list[SignalStep] = []
    for record in records:
        if len(steps) >= limit:
            break
        if record.feature_set != calculator.feature_set:
            logger.warning(
                "live: challenger {} uses feature set {}, not {}: not scored",
                record.model_version,
                record.feature_set,
                calculator.feature_set,
            )
            continue
        try:
            artifact = await load_model(ctx, record.model_version)
        except (ModelError, OSError, ValueError) as exc:
            logger.warning("live: challenger {} not scored: {}", record.model_version, exc)
            continue
        timeframe = settings.trading.signal_timeframe
        steps.append(
            SignalStep(Predictor(artifact), signal_generator(settings, artifact), calculator.names, timeframe)
        )
        logger.info("live: also scoring challenger {}", artifact.version)
    return steps


async def continuous_instruments(
    settings: Settings,
    instruments: InstrumentRepository,
    calendar: SessionCalendar,
    today: date | None = None,
) -> list[Instrument]:
    """The synthetic instruments of ``trading.futures``' continuous series, to stream with the universe.

    Normally stored by ``tickwise historical``; one that is not yet (no history: it starts with this
    session) is created from the nearest listed contract, like historical mode creates it.
    """
    from tickwise.core.futures import NoLiveContract, continuous_symbol, front_contract, futures_of
    from tickwise.pipelines.historical.futures import continuous_instrument

    out: list[Instrument] = []
    listed: list[Instrument] | None = None
    for underlying in settings.trading.futures:
        name = underlying.upper()
        found = await instruments.by_symbols("NFO", [continuous_symbol(name)])
        if found:
            out.append(found[0])
            continue
        if listed is None:
            listed = await instruments.all(active_only=False)
        try:
            front = front_contract(
                futures_of(listed, name), today or datetime.now(IST).date(), calendar=calendar
            )
        except NoLiveContract:
            raise ConfigError(
                f"{name}: no futures contract in the instrument master (run `tickwise instruments sync`)"
            ) from None
        created = continuous_instrument(name, front)
        await instruments.upsert_many([created])
        out.append(created)
    return out


async def futures_session(
    settings: Settings,
    instruments: InstrumentRepository,
    candles: CandleRepository,
    rest: HistoricalSource,
    day: date,
    tokens: Sequence[int],
    calendar: SessionCalendar,
) -> tuple[ContractMap, list[int]]:
    """The session's :class:`ContractMap` and the continuous tokens whose history a roll shifted.

    For each configured underlying streamed in this run: the front contract of ``day`` by the
    configured rule (``core.futures.session_contracts``, i.e. ``front_contract`` with the previous
    session's volumes and front fetched through ``pipelines.contracts``, as historical mode asks it per
    day); when it differs from the previous session's front, the stored history is back-adjusted by the
    roll gap (:func:`~tickwise.pipelines.live.contracts.adjust_for_roll`). No eligible contract is a
    :class:`ConfigError` naming the fix.
    """
    from tickwise.core.futures import (
        NoLiveContract,
        RollRule,
        continuous_token,
        futures_of,
        session_contracts,
    )
    from tickwise.pipelines.contracts import front_on, previous_volumes

    rule = RollRule.of(settings.trading.futures_roll_sessions, settings.trading.futures_roll)
    wanted = [u.upper() for u in settings.trading.futures if continuous_token(u) in set(tokens)]
    if not wanted:
        return ContractMap(day), []

    async def fetch(token: int, d: date) -> pd.DataFrame:
        return await rest.historical_frame(token, Timeframe.M1, d, d)

    listed = await instruments.all(active_only=False)
    previous = calendar.previous_trading_day(day)
    held: dict[str, Instrument] = {}
    volumes: dict[int, int] = {}
    for name in wanted:
        contracts = futures_of(listed, name)
        # No contract known for the previous session: nothing to roll from.
        with contextlib.suppress(LookupError):
            held[name] = await front_on(contracts, previous, fetch, rule, calendar)
        volumes.update(await previous_volumes(contracts, day, rule, calendar, fetch) or {})
    try:  # the same rule, through the same core function, as historical mode's day-by-day choice
        chosen = session_contracts(listed, wanted, day, rule, calendar, volumes or None, held)
    except NoLiveContract as exc:
        raise ConfigError(str(exc)) from None
    mapping: dict[int, int] = {}
    symbols: dict[int, str] = {}
    reopen: list[int] = []
    for name, front in chosen.items():
        cont = continuous_token(name)
        mapping[front.instrument_token] = cont
        symbols[front.instrument_token] = front.tradingsymbol
        logger.info(
            "live: {} continuous series takes {} in the session of {}", name, front.tradingsymbol, day
        )
        old = held.get(name)
        if old is not None and old.instrument_token != front.instrument_token:
            adjustment = await adjust_for_roll(
                name, cont, old, front, day, candles, fetch, calendar, settings.trading.timeframes
            )
            level = "WARNING" if adjustment.outcome in ("mismatch", "no candles") else "INFO"
            logger.log(
                level,
                "live: {} rolled {} -> {} before this session: gap {:+.2f}, stored history {} ({} rows){}",
                name,
                old.tradingsymbol,
                front.tradingsymbol,
                adjustment.gap,
                adjustment.outcome,
                adjustment.rows,
                "; run `tickwise historical` to rebuild the series" if level == "WARNING" else "",
            )
            if adjustment.outcome == "shifted" and adjustment.rows:
                reopen.append(cont)
    return ContractMap(day, mapping, symbols), reopen


class MarketClock:
    """The broker's market clock (the simulator's when simulated) with the process's monotonic time."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now()

    def monotonic(self) -> float:
        return _time.monotonic()


def session_speed(settings: Settings, options: LiveOptions, *, simulated: bool) -> float:
    """Market seconds per real second: ``--speed``, else ``broker.simulator.speed``; 1 with a real broker."""
    if not simulated:
        return 1.0
    return options.speed if options.speed is not None else settings.broker.simulator.speed


def _sighup_reloader(
    settings: Settings,
    options: LiveOptions,
    step: SignalStep,
    artifact: ModelArtifact,
    alerts: AlertDispatcher,
    longer: LiveTimeframes | None = None,
) -> SighupReloader | None:
    """SIGHUP: re-read the configuration and apply its mid-session-safe part (bootstrap/reload.py); the
    5m/15m and ensemble thresholds change with the 1m ones."""
    from tickwise.bootstrap.context import signal_generator

    if options.reload is None:
        return None
    staged: list[list[SignalGenerator]] = []

    def make(s: Settings) -> SignalGenerator:
        staged[:] = [longer.generators(s)] if longer is not None else []  # invalid: raises, nothing set
        return signal_generator(s, artifact)

    def set_all(generator: SignalGenerator) -> None:
        step.set_generator(generator)
        if longer is not None and staged:
            longer.set_generators(staged.pop())

    def apply(old: Settings, new: Settings) -> list[str]:
        return reload_live_settings(old, new, set_generator=set_all, make_generator=make, alerts=alerts)

    return SighupReloader(settings, options.reload, apply)


async def run_live(
    settings: Settings,
    options: LiveOptions,
    *,
    hooks: PipelineHooks | None = None,
    stop: asyncio.Event | None = None,
) -> SessionReport:
    """``tickwise live``: one session (see the module doc). Returns the session report."""
    from tickwise.bootstrap.broker import open_broker, open_simulated_broker, uses_simulator
    from tickwise.bootstrap.context import live_candle_checks, open_historical, signal_generator
    from tickwise.bootstrap.timeframes import live_timeframes
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
                registry, port = metrics.registry, settings.monitoring.metrics_port
                if options.shard is not None:  # each shard its own port, its series labelled shard="I"
                    from tickwise.bootstrap.shards import shard_registry

                    registry, port = (
                        shard_registry(registry, options.shard.index),
                        options.shard.metrics_port(port),
                    )
                server = start_metrics_server(settings.monitoring.metrics_host, port, registry)
                logger.info("metrics on {}", server.url)
            except OSError as exc:
                logger.warning("metrics server not started ({}); continuing without /metrics", exc)
        else:
            hooks = NullHooks()
    simulated = uses_simulator(settings) if options.simulator is None else options.simulator
    try:
        async with open_historical(settings, url=options.url, migrate_in_child=True) as ctx:
            from tickwise.adapters.timescale.repair_window_repository import (
                TimescaleRepairWindowRepository,
            )
            from tickwise.adapters.timescale.tick_repository import TimescaleTickRepository

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
            shards = options.shard.count if options.shard is not None else 1
            predictor = Predictor(artifact, threads=predict_threads(settings.live.predict_threads, shards))
            step = SignalStep(predictor, signal_generator(settings, artifact), calculator.names, timeframe)
            hooks.on_model_loaded(artifact.version, 0.0, artifact.feature_set)
            universe = await select_universe(
                ctx.instruments, options.symbols or settings.trading.symbols, ctx.options.default_symbols
            )
            if not options.symbols:  # `--symbols` names instruments: the configured futures only otherwise
                universe += await continuous_instruments(settings, ctx.instruments, ctx.calendar)
            tokens = [i.instrument_token for i in universe]
            if options.shard is not None:
                tokens = options.shard.tokens(tokens)
            if not tokens:
                raise ConfigError(
                    "no instruments to stream: run `tickwise historical` (or `tickwise instruments sync`) first"
                )
            from tickwise.adapters.timescale.world_repository import TimescaleWorldRepository

            await TimescaleWorldRepository(ctx.pool).replace_universe(universe)  # Grafana's picker
            latencies = LatencyLog()
            repos = LiveRepositories(
                ticks=TimescaleTickRepository(ctx.pool),
                candles=ctx.candles,
                features=ctx.features,
                signals=ctx.signals,
            )
            sinks = table_sinks(
                repos,
                names=calculator.names,
                feature_set=calculator.feature_set,
                hooks=hooks,
                latencies=latencies,
            )
            # 5m/15m signals and the ensemble (bootstrap/timeframes.py); their rows get their own sinks
            longer = await live_timeframes(settings, ctx)
            for scorer in longer.scorers:
                sinks[f"features:{scorer.timeframe}"] = feature_sink(
                    ctx.features, scorer.calculator.names, scorer.calculator.feature_set, scorer.timeframe
                )
            if longer.ensemble is not None:
                sinks["signal_members"] = signal_member_sink(ctx.signal_members)
            if longer.versions:
                logger.info("live: also scoring {}", ", ".join(longer.versions))
            alerts = make_alerts(settings, hooks)
            alerts.symbols.update({i.instrument_token: i.tradingsymbol for i in universe})
            sinks["signals"] = notify_after_commit(sinks["signals"], alerts)
            sinks[CHALLENGER_TABLE] = challenger_sink(ctx.signals)
            checks = live_candle_checks(settings, ctx.pool, ctx.calendar, hooks)  # docs/data-quality.md
            if checks is not None:
                sinks["candles"] = checked_candle_sink(sinks["candles"], *checks)
            trail = BatchTrail()  # the writer's lines name the bar batches they stored
            writer = BufferedWriter(
                trail.traced_sinks(sinks),
                batch_size=settings.live.write_batch_size,
                interval_s=settings.live.write_interval_s,
                max_memory_rows=max(settings.live.write_batch_size * 20, 100_000),
                spill_dir=Path(settings.live.spill_dir),
                breaker=CircuitBreaker("database", on_change=hooks.on_circuit_breaker),
                hooks=hooks,
                urgent=("signals",),
                spill_max_bytes=settings.live.spill_max_bytes or None,
                alerts=alerts,
            )
            paper = None
            if options.paper:
                from tickwise.bootstrap.paper import make_paper_trader

                paper = await make_paper_trader(
                    settings,
                    pool=ctx.pool,
                    models=ctx.models,
                    model_version=artifact.version,
                    universe=universe,
                    feature_names=calculator.names,
                    calendar=ctx.calendar,
                    now=datetime.now(IST),
                )
            put = trail.tap(writer.put if paper is None else paper.tap(writer.put))
            challengers = await challenger_steps(settings, ctx, calculator, artifact.version)
            scoring: Step = TracedStep(ChallengerStep(step, challengers, put) if challengers else step)
            engine = LiveEngine(
                calculator,
                scoring,
                put,
                hooks=hooks,
                calendar=ctx.calendar,
                timeframes=longer.scorers,
                ensemble=longer.ensemble,
                freeze_gc=True,  # no full collection of the session's objects inside a minute
            )
            last_stored: datetime | None = None
            stored = await stored_outputs(ctx.pool, tokens, calculator.feature_set, artifact.version)
            window_store = TimescaleRepairWindowRepository(ctx.pool)
            open_windows: dict[date, list[tuple[datetime, datetime]]] = {}

            async def open_history(token: int) -> InstrumentState:
                """Open ``token`` in the engine on its stored 1m history, cut where a restart resumes."""
                history = await ctx.candles.read_frame(token, Timeframe.M1, None, None)
                if len(history):
                    last_feature, last_signal = stored.get(token, (None, None))
                    last_candle = history["time"].iloc[-1].to_pydatetime()
                    cutoff = resume_cutoff(last_candle, last_feature, last_signal, ctx.calendar)
                    # A dead session may have left holes or unrepaired windows on its day: resume before
                    # the first of them, so REST repairs them before the feed's bars are used.
                    last_day = last_candle.astimezone(IST).date()
                    if ctx.calendar.is_trading_day(last_day):
                        if last_day not in open_windows:
                            open_windows[last_day] = await window_store.open_windows(last_day)
                        opened = ctx.calendar.session_open(last_day)
                        hole = first_hole((t.to_pydatetime() for t in history["time"]), opened)
                        moved = day_cutoff(cutoff, [hole], open_windows[last_day])
                        if moved is not None and cutoff is not None and moved < cutoff:
                            logger.warning(
                                "live: instrument {}: stored 1m bars have a hole or an open repair window "
                                "from {:%H:%M}; recomputing from there through REST",
                                token,
                                (moved + timedelta(minutes=1)).astimezone(IST),
                            )
                            cutoff = moved
                    if cutoff is not None and cutoff < last_candle:
                        logger.info(
                            "live: instrument {}: outputs stored only up to {:%Y-%m-%d %H:%M}; recomputing the bars after it",
                            token,
                            cutoff.astimezone(IST),
                        )
                        history = history[history["time"] <= pd.Timestamp(cutoff)]
                if checks is not None:
                    checks[0].seed(token, history)
                state = engine.open_instrument(token, history)
                last_minute = history["time"].iloc[-1].to_pydatetime() if len(history) else None
                for scorer in longer.scorers:
                    stored_tf = await ctx.candles.read_frame(token, scorer.timeframe, None, None)
                    engine.open_timeframe(
                        scorer.timeframe,
                        token,
                        stored_history(stored_tf, last_minute, scorer.timeframe, ctx.calendar),
                    )
                return state

            for token in tokens:
                state = await open_history(token)
                if state.last_time is not None and (last_stored is None or state.last_time > last_stored):
                    last_stored = state.last_time
            resume_from = engine.resume_from()
            if resume_from is not None:
                resume_from = resume_from + timedelta(minutes=1)
            alerts.start()
            if not simulated:  # Kite tokens die at 06:00 IST: warn if this one will not last the session
                alert_token_expiry(check_token(settings, ctx.calendar), alerts)
            speed = session_speed(settings, options, simulated=simulated)
            if simulated:
                start = simulated_start(last_stored, ctx.calendar, datetime.now(IST).date())
                # In a child process: the simulator must stream on time however busy the pipeline is.
                broker_cm = open_simulated_broker(
                    settings, process=True, start=start, speed=speed, faults=options.faults
                )
            else:
                broker_cm = open_broker(settings, simulator=False)
            session_day = start.date() if simulated else datetime.now(IST).date()
            if checks is not None and ctx.calendar.is_trading_day(session_day):
                # The week's anomaly models, fitted before the feed opens (not at the first bar).
                await asyncio.to_thread(checks[0].prepare, session_day)
            async with broker_cm as broker:
                alerts.market_clock, alerts.time_scale = broker.now, speed
                now = broker.now()
                day = now.date()
                if not ctx.calendar.is_trading_day(day) or now >= ctx.calendar.session_close(day):
                    raise ConfigError(
                        f"no NSE session to run now ({now:%Y-%m-%d %H:%M} IST); the market is closed"
                    )
                # A simulated market's session starts when the simulator's clock does: `+20m` then
                # means the same 20 market minutes however long the broker took to open (at 150x a
                # busy machine's extra second was 2.5 simulated minutes, and a 21st bar).
                until = parse_until(options.until, day, start if simulated else now, ctx.calendar)
                # Index futures: this session's contract per continuous series, and on a roll day the
                # stored history shifted like historical mode would (docs/futures.md "Live").
                contracts, reopen = await futures_session(
                    settings, ctx.instruments, ctx.candles, broker.rest, day, tokens, ctx.calendar
                )
                for token in reopen:  # the engine must see the shifted history, as historical would
                    await open_history(token)
                if options.shard is not None:  # a restarted shard runs until the same instant
                    from tickwise.bootstrap.shards import write_until

                    write_until(options.shard.until_path(Path(settings.system.data_dir)), until)
                health = HealthMonitor(
                    model_version=artifact.version,
                    status_path=Path(settings.system.data_dir) / "live-status.json"
                    if options.shard is None
                    else options.shard.status_path(Path(settings.system.data_dir)),
                    alerts=alerts,
                )

                def open_feed(on_gap: Callable[[FeedGap], None]) -> MarketFeed:
                    # Backpressure instead of drops: the consumer never loses a tick silently.
                    feed = broker.ticker(overflow="block", on_gap=on_gap)
                    return MappedFeed(feed, contracts) if contracts else feed

                session = LiveSession(
                    open_feed=open_feed,
                    source=MappedCandleSource(broker.rest, contracts, ctx.calendar)
                    if contracts
                    else broker.rest,
                    clock=MarketClock(broker.now),
                    engine=engine,
                    writer=writer,
                    tokens=tokens,
                    day=day,
                    until=until,
                    calendar=ctx.calendar,
                    hooks=hooks,
                    grace_s=settings.live.candle_grace_s,
                    feed_close_margin_s=settings.live.feed_close_margin_s,
                    speed=speed,
                    spike_band=settings.live.spike_band,
                    alerts=alerts,
                    stop=stop,
                    health=health,
                    latencies=latencies,
                    windows=window_store,
                )
                session.consumer.token_map = contracts.to_continuous
                loop = asyncio.get_running_loop()
                hup = _sighup_reloader(settings, options, step, artifact, alerts, longer)
                hup_installed = hup is not None and hup.install(loop)
                # Announced only once SIGHUP is handled: an operator (or a test) may reload right away.
                logger.info(
                    "live session {} from {:%H:%M:%S} until {:%H:%M} IST: {} instruments, model {}{}",
                    day,
                    now,
                    until,
                    len(tokens),
                    artifact.version,
                    f", simulator at {speed:g}x" if simulated else "",
                )
                try:
                    if paper is None:
                        report = await session.run(resume_from)
                    else:
                        session.consumer.tick_observer = paper.observe_ticks
                        paper.start()
                        try:
                            report = await session.run(resume_from)
                        finally:
                            summary = await paper.close()
                        report.paper = paper.report()
                        logger.info(
                            "paper session {}: {} trades, net {} INR",
                            summary.run_id,
                            summary.trades,
                            summary.net_pnl,
                        )
                finally:
                    if hup_installed:
                        SighupReloader.uninstall(loop)
            await alerts.close()
            return report
    finally:
        if server is not None:
            server.close()
