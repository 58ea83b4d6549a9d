"""The backtest run: pick the signals, rebuild their barriers, replay 1-minute bars through the engine,
record the run with its trades and equity curve.

Signals are the stored historical ones (``mode = 'historical'``, direction ≠ 0) of one model (default:
the champion) or the out-of-sample set (``signals.sample = 'oos'``). Each trade exits where the model's
label would have (its label spec: k_pt, k_sl, horizon, ATR period; the configured labeling as fallback).
Prices are the 1-minute candles from ``start`` to the end of the IST day holding ``end``, so a trade
opened just before ``end`` still meets its barriers or the square-off.

Paper parity (``signal_mode = "paper"``, docs/backtest.md): the signals are those paper session
``paper_run`` acted on, exactly as its engine was fed them (``paper_signals``: levels, size and meta size
as recorded), not the stored ``signals`` rows, which a bar re-scored after a repair may have revised
since; with ``prices = "ticks"`` the run replays the session's inputs through the same engine.

Meta-label sizing (``sizing``): ``meta`` scales each position by its signal's meta size, ``none`` ignores
it, ``both`` (the default) runs the same signals and prices twice, meta-sized and unsized, records both
runs and links them (``metrics.unsized_run``), so the report shows them side by side. Without any meta
size among the signals there is nothing to compare and ``both`` records one run.
"""

from __future__ import annotations

import time as stopwatch
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import pandas as pd

from tickwise.core.trading import (
    EngineConfig,
    EquityPoint,
    PriceEvent,
    Sizing,
    Trade,
    TradeEngine,
    TradeSignal,
)
from tickwise.core.trading.levels import signal_bar_levels
from tickwise.core.trading.metrics import summarize
from tickwise.domain.errors import ConfigError, ModelError
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.domain.trade_record import TRADE_RECORD_COLUMNS
from tickwise.pipelines.backtest.inputs import (
    BarrierSpec,
    price_events,
    recorded_signals,
    tick_events,
    trade_signals,
)
from tickwise.pipelines.backtest.report import sample_of
from tickwise.ports.backtests import BacktestRepository, BacktestRun, BacktestSignalSource
from tickwise.ports.clock import Clock
from tickwise.ports.paper import PaperSignalSource, TickPriceSource
from tickwise.ports.repositories import CandleRepository, ModelRepository

OOS = "oos"
SIZING_CHOICES = ("meta", "none", "both")
SIGNAL_MODES = ("historical", "live", "paper")
# The figures compared between the meta-sized and the unsized run (metrics.unsized).
COMPARED = (
    "net_pnl", "return_on_capital", "sharpe", "hit_rate", "trades", "profit_factor", "max_drawdown", "turnover",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BacktestRequest:
    start: datetime
    end: datetime  # exclusive
    model_version: str | None = None  # None: the champion (unless oos)
    oos: bool = False
    engine: EngineConfig = field(default_factory=EngineConfig)
    timeframe: Timeframe = Timeframe.M1  # the signals' timeframe (prices are always 1-minute bars)
    barriers: BarrierSpec = field(default_factory=BarrierSpec)  # when a model records no label spec
    # Paper/backtest parity (docs/backtest.md): trade the live signals on the stored ticks.
    signal_mode: str = "historical"  # or "live", or "paper": what paper session ``paper_run`` acted on
    prices: str = "bars"  # or "ticks"
    sizing: str = "both"  # meta, none, or both (meta-sized and unsized runs, linked)
    paper_run: str | None = None  # the paper session whose signals a ``paper`` backtest replays

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ConfigError("backtest --from/--to must be tz-aware instants")
        if self.end <= self.start:
            raise ConfigError(
                f"backtest --to {self.end:%Y-%m-%d %H:%M} is not after --from {self.start:%Y-%m-%d %H:%M}"
            )
        if self.prices not in ("bars", "ticks"):
            raise ConfigError(f"backtest --prices must be bars or ticks, not {self.prices!r}")
        if self.signal_mode not in SIGNAL_MODES:
            raise ConfigError(
                f"backtest --signals must be one of {', '.join(SIGNAL_MODES)}, not {self.signal_mode!r}"
            )
        if (self.signal_mode == "paper") != (self.paper_run is not None):
            raise ConfigError(
                "backtest --signals paper needs --paper-run RUN_ID (the paper session to replay), "
                "and --paper-run needs --signals paper"
            )
        if self.sizing not in SIZING_CHOICES:
            raise ConfigError(
                f"backtest --sizing must be one of {', '.join(SIZING_CHOICES)}, not {self.sizing!r}"
            )
        if self.oos and self.model_version is not None:
            raise ConfigError("--model and --oos exclude each other: the OOS set spans several fold models")


@dataclass(frozen=True)
class BacktestResult:
    run: BacktestRun
    trades: list[Trade]
    equity: list[EquityPoint]
    days: list[date]
    skipped: dict[str, int]
    signals: int
    bars: int
    seconds: float
    unsized: BacktestRun | None = None  # the unsized companion run of a ``both`` backtest

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.run.metrics)


class BacktestPipeline:
    def __init__(
        self,
        *,
        source: BacktestSignalSource,
        candles: CandleRepository,
        models: ModelRepository,
        runs: BacktestRepository,
        clock: Clock,
        ticks: TickPriceSource | None = None,
        paper: PaperSignalSource | None = None,
    ) -> None:
        self._ticks = ticks
        self._paper = paper
        self._source = source
        self._candles = candles
        self._models = models
        self._runs = runs
        self._clock = clock

    async def run(self, request: BacktestRequest) -> BacktestResult:
        began = stopwatch.perf_counter()
        last_day = (request.end - timedelta(microseconds=1)).astimezone(IST).date()
        price_end = datetime.combine(last_day + timedelta(days=1), clock_time(0), tzinfo=IST)
        if request.signal_mode == "paper":
            label, signals, queued = await self._paper_signals(request)
            specs: dict[str, BarrierSpec] = {}
            tokens = sorted({s.instrument_token for s in queued})
            dropped = 0
            bar_frames = [
                (await self._candles.read_frame(token, Timeframe.M1, request.start, price_end))[
                    ["instrument_token", "time", "open", "high", "low", "close"]
                ]
                for token in (tokens if request.prices == "bars" else [])
            ]
        else:
            label = await self._model_label(request)
            signals = await self._source.signals(
                request.start,
                request.end,
                model_version=None if request.oos else label,
                oos=request.oos,
                mode=request.signal_mode,
            )
            signals = signals[signals["timeframe"] == str(request.timeframe)]
            specs = await self._barrier_specs(signals, request.barriers)
            tokens = sorted(int(t) for t in signals["instrument_token"].unique())
            queued, dropped, bar_frames = await self._stored_signals(
                request, signals, specs, tokens, price_end
            )
        if request.prices == "ticks":
            if self._ticks is None:
                raise ConfigError("a backtest on ticks needs the stored ticks (no tick source wired)")
            ticks = await self._ticks.tick_prices(tokens, request.start, price_end)

            def events() -> Iterator[PriceEvent]:
                return tick_events(ticks)
        else:
            all_bars = pd.concat(bar_frames, ignore_index=True) if bar_frames else pd.DataFrame()

            def events() -> Iterator[PriceEvent]:
                return price_events(all_bars)

        main_sizing: Sizing = "none" if request.sizing == "none" else "meta"
        has_meta = any(s.meta_size is not None for s in queued)
        unsized = None
        if request.sizing == "both" and has_meta:
            unsized = await self._record(
                request,
                replace(request.engine, sizing="none"),
                queued,
                events,
                label,
                specs,
                signals,
                dropped,
            )
        main = await self._record(
            request,
            replace(request.engine, sizing=main_sizing),
            queued,
            events,
            label,
            specs,
            signals,
            dropped,
            unsized=None if unsized is None else unsized[0],
        )
        run, engine, n_bars, skipped = main
        return BacktestResult(
            run=run,
            trades=list(engine.trades),
            equity=list(engine.equity),
            days=list(engine.days),
            skipped=skipped,
            signals=len(signals),
            bars=n_bars,
            seconds=stopwatch.perf_counter() - began,
            unsized=None if unsized is None else unsized[0],
        )

    async def _stored_signals(
        self,
        request: BacktestRequest,
        signals: pd.DataFrame,
        specs: dict[str, BarrierSpec],
        tokens: list[int],
        price_end: datetime,
    ) -> tuple[list[TradeSignal], int, list[pd.DataFrame]]:
        """Stored signals -> trade signals with the barriers rebuilt from the stored candles, the count
        dropped without a usable ATR, and each instrument's 1-minute bars from ``start``."""
        lots = await self._source.lot_sizes(tokens)
        queued: list[TradeSignal] = []
        dropped = 0
        bar_frames = []
        for token in tokens:
            mine = signals[signals["instrument_token"] == token].reset_index(drop=True)
            history = await self._candles.read_frame(token, request.timeframe, None, price_end)
            levels = signal_bar_levels(history, mine["time"], specs_atr(specs, mine))
            for version, group in mine.groupby("model_version", sort=False):
                idx = group.index
                made, lost = trade_signals(
                    group.reset_index(drop=True),
                    levels.loc[idx].reset_index(drop=True),
                    specs.get(str(version), request.barriers),
                    request.timeframe.delta,
                    lots.get(token, 1),
                    model_label=OOS if request.oos else None,
                )
                queued += made
                dropped += lost
            if request.timeframe == Timeframe.M1:
                bars = history[history["time"] >= request.start]
            else:
                bars = await self._candles.read_frame(token, Timeframe.M1, request.start, price_end)
            bar_frames.append(bars[["instrument_token", "time", "open", "high", "low", "close"]])
        return queued, dropped, bar_frames

    async def _paper_signals(self, request: BacktestRequest) -> tuple[str, pd.DataFrame, list[TradeSignal]]:
        """The signals paper session ``paper_run`` acted on, with bars in ``[start, end)``, as fed."""
        if self._paper is None:
            raise ConfigError("a backtest of a paper session needs its recorded signals (no source wired)")
        assert request.paper_run is not None  # BacktestRequest checks it
        recorded = await self._paper.paper_signals(request.paper_run)
        if recorded.empty:
            raise ConfigError(
                f"paper session {request.paper_run!r} recorded no signals (see paper_signals; sessions "
                "before migration 0014 did not record them: use --signals live)"
            )
        times = pd.to_datetime(recorded["time"], utc=True)
        recorded = recorded[(times >= request.start) & (times < request.end)].reset_index(drop=True)
        versions = sorted({str(v) for v in recorded["model_version"].unique()})
        label = request.model_version or (versions[0] if len(versions) == 1 else "paper")
        return label, recorded, recorded_signals(recorded)

    async def _record(
        self,
        request: BacktestRequest,
        config: EngineConfig,
        queued: list[TradeSignal],
        events: Callable[[], Iterator[PriceEvent]],
        label: str,
        specs: dict[str, BarrierSpec],
        signals: pd.DataFrame,
        dropped: int,
        *,
        unsized: BacktestRun | None = None,
    ) -> tuple[BacktestRun, TradeEngine, int, dict[str, int]]:
        """Replay the signals and prices through an engine of ``config`` and record the run."""
        engine = TradeEngine(config)
        n_bars = replay(engine, queued, events())
        skipped = dict(engine.skipped)
        if dropped:
            skipped["no_atr"] = dropped
        capital = config.limits.capital
        metrics = summarize(engine.trades, engine.equity, engine.days, capital)
        metrics["signals"] = len(signals)
        metrics["skipped"] = skipped
        metrics["session_days"] = [d.isoformat() for d in engine.days]
        metrics["sizing"] = config.sizing
        metrics["meta_sized_signals"] = sum(s.meta_size is not None for s in queued)
        if unsized is not None:
            metrics["unsized_run"] = unsized.run_id
            metrics["unsized"] = {k: unsized.metrics.get(k) for k in COMPARED}
        record = None if request.oos else await self._models.get(label)
        metrics["sample"], metrics["sample_note"] = sample_of(label, request.start, request.end, record)
        now = self._clock.now()
        if unsized is not None and unsized.created_at is not None and now <= unsized.created_at:
            now = unsized.created_at + timedelta(microseconds=1)  # the sized run is the latest one
        run = BacktestRun(
            run_id=f"bt-{now.astimezone(IST):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}",
            start=request.start,
            end=request.end,
            model_version=label,
            params=run_params(request, specs) | {"sizing": config.sizing},
            metrics=metrics,
            created_at=now,
        )
        await self._runs.save(run, trade_rows(engine.trades), equity_rows(engine.equity))
        return run, engine, n_bars, skipped

    async def _model_label(self, request: BacktestRequest) -> str:
        if request.oos:
            if not await self._source.has_sample_column():
                raise ConfigError(
                    "--oos needs the signals.sample column (out-of-sample history, issue 11 part B), "
                    "which this database does not have yet; use --model VERSION instead"
                )
            return OOS
        if request.model_version is not None:
            if await self._models.get(request.model_version) is None:
                raise ModelError(
                    f"model {request.model_version!r} is not in the models table (see tickwise status)"
                )
            return request.model_version
        champion = await self._models.champion()
        if champion is None:
            raise ModelError("no champion model: train one (tickwise train) or pass --model VERSION")
        return champion.model_version

    async def _barrier_specs(self, signals: pd.DataFrame, default: BarrierSpec) -> dict[str, BarrierSpec]:
        specs = {}
        for version in signals["model_version"].unique():
            record = await self._models.get(str(version))
            specs[str(version)] = BarrierSpec.of(None if record is None else record.label_spec, default)
        return specs


def replay(engine: TradeEngine, signals: list[TradeSignal], events: Iterable[PriceEvent]) -> int:
    """Feed ``signals`` (each once its ``available_at`` is reached) and ``events`` (in time order) to
    ``engine``, then finish it; return the number of price events. Paper trading feeds a live engine the
    same way, one signal and one tick at a time."""
    queued = sorted(signals, key=lambda s: (s.available_at, s.instrument_token))
    n = i = 0
    for event in events:
        while i < len(queued) and queued[i].available_at <= event.time:
            engine.on_signal(queued[i])
            i += 1
        engine.on_price(event)
        n += 1
    for signal in queued[i:]:
        engine.on_signal(signal)
    engine.finish()
    return n


def specs_atr(specs: dict[str, BarrierSpec], signals: pd.DataFrame) -> int:
    """The ATR period of one instrument's signals (all models of a run must agree on it)."""
    periods = {specs[str(v)].atr_period for v in signals["model_version"].unique() if str(v) in specs}
    if len(periods) > 1:
        raise ModelError(
            f"the signals' models use different ATR periods {sorted(periods)}; backtest one model"
        )
    return periods.pop() if periods else 14


def run_params(request: BacktestRequest, specs: dict[str, BarrierSpec]) -> dict[str, Any]:
    """What a run was computed with, for ``backtest_runs.params``."""
    cfg = request.engine
    return {
        "capital": cfg.limits.capital,
        "limits": asdict(cfg.limits),
        "costs": asdict(cfg.charges),
        "slippage": asdict(cfg.slippage),
        "session": {"entry_cutoff": str(cfg.session.entry_cutoff), "square_off": str(cfg.session.square_off)},
        "timeframe": str(request.timeframe),
        "barriers": {v: s.as_dict() for v, s in specs.items()} or {"default": request.barriers.as_dict()},
        "oos": request.oos,
        "signals": request.signal_mode,
        "prices": request.prices,
    } | ({"paper_run": request.paper_run} if request.paper_run is not None else {})


def trade_rows(trades: list[Trade]) -> pd.DataFrame:
    """Trades with the ``backtest_trades`` columns (money kept as exact Decimal rupees)."""
    columns = TRADE_RECORD_COLUMNS
    return pd.DataFrame({c: [getattr(t, c) for t in trades] for c in columns}, columns=list(columns))


def equity_rows(points: list[EquityPoint]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": [p.time for p in points],
            "equity": [p.equity for p in points],
            "drawdown": [p.drawdown for p in points],
        },
        columns=["time", "equity", "drawdown"],
    )
