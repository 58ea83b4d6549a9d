"""``tickwise backtest``: stored historical signals and 1-minute candles through the trade engine."""

from tickwise.pipelines.backtest.run import BacktestPipeline, BacktestRequest, BacktestResult

__all__ = ["BacktestPipeline", "BacktestRequest", "BacktestResult"]
