"""Composition root of `tickwise backtest` and `tickwise report`: settings -> engine, repositories, pipeline."""

from __future__ import annotations

import asyncio
import time as stopwatch
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from tickwise.adapters.local.model_store import LocalModelStore
from tickwise.adapters.report import HtmlReportRenderer
from tickwise.adapters.timescale.backtest_repository import TimescaleBacktestRepository, TimescaleParitySource
from tickwise.adapters.timescale.paper_repository import TimescalePaperRepository
from tickwise.bootstrap.historical import open_historical
from tickwise.config import Settings
from tickwise.core.model import ModelArtifact
from tickwise.core.trading import (
    EngineConfig,
    RiskLimits,
    SessionRules,
    Slippage,
    ZerodhaIntradayCharges,
)
from tickwise.domain.errors import ConfigError, ModelError
from tickwise.pipelines.backtest import BacktestPipeline, BacktestRequest
from tickwise.pipelines.backtest import BacktestResult as BacktestResult  # re-exported for the CLI
from tickwise.pipelines.backtest.inputs import BarrierSpec
from tickwise.pipelines.backtest.regimes import regime_at_entry
from tickwise.pipelines.backtest.report import collect_report, importance_shares
from tickwise.ports.reports import ReportData, ReportFiles
from tickwise.ports.repositories import ModelRecord


class SystemClock:
    """The wall clock (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return stopwatch.monotonic()


def engine_config(settings: Settings, *, capital: float | None = None) -> EngineConfig:
    """The trade engine's configuration from the ``backtest`` section (``capital`` overrides it)."""
    bt = settings.backtest
    try:
        return EngineConfig(
            limits=RiskLimits(
                capital=bt.capital if capital is None else capital,
                default_size=bt.default_size,
                max_open_positions=bt.max_open_positions,
                max_capital_per_instrument=bt.max_capital_per_instrument,
                leverage=bt.leverage,
                daily_loss_limit=bt.daily_loss_limit,
                max_drawdown=bt.max_drawdown,
            ),
            charges=ZerodhaIntradayCharges(**bt.costs.model_dump()),
            slippage=Slippage(bps=bt.slippage_bps, use_spread=bt.slippage_half_spread),
            session=SessionRules(entry_cutoff=bt.entry_cutoff, square_off=bt.square_off),
            sizing=bt.sizing,
        )
    except ValueError as exc:
        raise ConfigError(f"backtest configuration: {exc}") from None


def backtest_request(
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    model_version: str | None = None,
    oos: bool = False,
    capital: float | None = None,
    signal_mode: str = "historical",
    prices: str = "bars",
    sizing: str | None = None,
    paper_run: str | None = None,
) -> BacktestRequest:
    """``sizing`` None: both runs (meta-sized and unsized) when ``backtest.sizing`` is meta, else none."""
    labeling = settings.trading.labeling
    return BacktestRequest(
        start=start,
        end=end,
        model_version=model_version,
        oos=oos,
        engine=engine_config(settings, capital=capital),
        timeframe=settings.trading.signal_timeframe,
        signal_mode=signal_mode,
        prices=prices,
        sizing=sizing or ("both" if settings.backtest.sizing == "meta" else "none"),
        paper_run=paper_run,
        barriers=BarrierSpec(
            k_pt=labeling.k_pt, k_sl=labeling.k_sl, horizon=labeling.horizon, atr_period=labeling.atr_period
        ),
    )


async def run_backtest(
    settings: Settings, request: BacktestRequest, *, url: str | None = None
) -> BacktestResult:
    """Open the database (migrated), run the backtest, record it; return the result."""
    async with open_historical(settings, url=url) as ctx:
        runs = TimescaleBacktestRepository(ctx.pool)
        pipeline = BacktestPipeline(
            source=runs,
            candles=ctx.candles,
            models=ctx.models,
            runs=runs,
            clock=SystemClock(),
            ticks=TimescalePaperRepository(ctx.pool),
            paper=TimescalePaperRepository(ctx.pool),
        )
        return await pipeline.run(request)


def describe(config: EngineConfig) -> dict[str, object]:
    """The engine configuration as plain data (for --json output and docs)."""
    return {
        "limits": asdict(config.limits),
        "costs": asdict(config.charges),
        "slippage": asdict(config.slippage),
        "session": {
            "entry_cutoff": str(config.session.entry_cutoff),
            "square_off": str(config.session.square_off),
        },
        "sizing": config.sizing,
    }


async def model_importance(store: LocalModelStore, record: ModelRecord) -> list[tuple[str, float]] | None:
    """Gain importance of a model's bundle (both side boosters summed), or None without a bundle."""
    try:
        files = await store.load(record.model_version, record.artifact_path or None)
        artifact = ModelArtifact.from_files(files, where=record.artifact_path or record.model_version)
    except (ModelError, OSError, ValueError):
        return None
    gains = [
        [float(g) for g in booster.feature_importance(importance_type="gain")]
        for booster in artifact.boosters.values()
    ]
    return importance_shares(artifact.feature_names, gains) or None


async def make_report(
    settings: Settings, run_id: str | None, out_dir: Path | None, *, url: str | None = None
) -> tuple[ReportData, ReportFiles]:
    """Collect a recorded run (default: the latest) and render it to ``out_dir``
    (default: ``<data_dir>/reports/<run_id>``)."""
    async with open_historical(settings, url=url) as ctx:
        data = await collect_report(
            run_id,
            runs=TimescaleBacktestRepository(ctx.pool),
            models=ctx.models,
            parity=TimescaleParitySource(ctx.pool),
            importance=lambda record: model_importance(ctx.store, record),
            regimes=lambda trades: regime_at_entry(
                trades, source=ctx, features=ctx.features, timeframe=settings.trading.signal_timeframe
            ),
        )
    target = out_dir or Path(settings.system.data_dir) / "reports" / data.run_id
    files = await asyncio.to_thread(HtmlReportRenderer().render, data, target)
    return data, files
