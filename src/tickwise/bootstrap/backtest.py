"""Composition root of `tickwise backtest` and `tickwise report`: settings -> engine, repositories, pipeline."""

from __future__ import annotations

import time as stopwatch
from dataclasses import asdict
from datetime import UTC, datetime

from tickwise.adapters.timescale.backtest_repository import TimescaleBacktestRepository
from tickwise.bootstrap.historical import open_historical
from tickwise.config import Settings
from tickwise.core.trading import (
    EngineConfig,
    RiskLimits,
    SessionRules,
    Slippage,
    ZerodhaIntradayCharges,
)
from tickwise.domain.errors import ConfigError
from tickwise.pipelines.backtest import BacktestPipeline, BacktestRequest, BacktestResult
from tickwise.pipelines.backtest.inputs import BarrierSpec


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
) -> BacktestRequest:
    labeling = settings.trading.labeling
    return BacktestRequest(
        start=start,
        end=end,
        model_version=model_version,
        oos=oos,
        engine=engine_config(settings, capital=capital),
        timeframe=settings.trading.signal_timeframe,
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
            source=runs, candles=ctx.candles, models=ctx.models, runs=runs, clock=SystemClock()
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
    }
